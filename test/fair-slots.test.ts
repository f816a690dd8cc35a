import { FairSlots } from '../src/scraper/fair-slots';

describe('browser slots shared between keys', () => {
  test("one key's many waiting renders delay another key's one by at most one turn", async () => {
    const slots = new FairSlots(1);
    const order: string[] = [];
    const first = await slots.acquire('a');
    const waits = [
      ...Array.from({ length: 10 }, (_, i) =>
        slots.acquire('a').then((release) => ({ who: `a${i}`, release })),
      ),
      slots.acquire('b').then((release) => ({ who: 'b', release })),
    ];
    // Each granted slot is given back at once, so the whole queue drains in grant order.
    for (const wait of waits) void wait.then(({ who, release }) => (order.push(who), release()));
    first();
    await Promise.all(waits);
    expect(order.indexOf('b')).toBeLessThanOrEqual(1);
    expect(order.filter((w) => w.startsWith('a'))).toEqual(Array.from({ length: 10 }, (_, i) => `a${i}`));
  });

  test('a waiter whose signal aborts leaves the queue and is never granted', async () => {
    const slots = new FairSlots(1);
    const held = await slots.acquire('a');
    const gone = new AbortController();
    const leaving = slots.acquire('b', gone.signal);
    const staying = slots.acquire('c');
    expect(slots.waiting).toBe(2);
    gone.abort();
    await expect(leaving).rejects.toThrow();
    expect(slots.waiting).toBe(1);
    held();
    const release = await staying;
    expect(slots.inUse).toBe(1);
    release();
    release(); // a second release gives back nothing more
    expect(slots.inUse).toBe(0);
  });

  test('slots are taken at once while some are free', async () => {
    const slots = new FairSlots(2);
    await slots.acquire('a');
    await slots.acquire('a');
    expect(slots.inUse).toBe(2);
    expect(slots.waiting).toBe(0);
  });
});
