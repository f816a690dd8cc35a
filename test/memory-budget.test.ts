import { MemoryBudget } from '../src/scraper/memory-budget';
import { Scraper } from '../src/scraper/scraper';
import { startTargetServer, type TargetServer } from './helpers/target-server';

const MB = 1024 * 1024;
const settled = async (p: Promise<unknown>) => {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setImmediate(r));
  return done;
};

describe('memory budget for page bodies', () => {
  test('a body waits while the budget is spent and is let in once enough is released', async () => {
    const budget = new MemoryBudget(4 * MB);
    const first = budget.hold();
    await first.reserveTo(3 * MB);
    const second = budget.hold();
    const waiting = second.reserveTo(2 * MB);
    expect(await settled(waiting)).toBe(false);
    first.release();
    await waiting;
    expect(budget.usedBytes).toBe(2 * MB);
  });

  test('a body growing past its reservation waits for the budget like a new body', async () => {
    const budget = new MemoryBudget(1 * MB);
    const reading = budget.hold();
    await reading.reserveTo(512 * 1024);
    const growing = budget.hold();
    await growing.reserveTo(256 * 1024);
    const grown = growing.reserveTo(768 * 1024); // 512 + 768 KiB would pass the budget
    expect(await settled(grown)).toBe(false);
    reading.release();
    await grown;
    expect(budget.usedBytes).toBe(768 * 1024);
    growing.release();
    growing.release(); // twice is harmless
    expect(budget.usedBytes).toBe(0);
  });

  test('a growth goes ahead of new bodies waiting for the budget', async () => {
    const budget = new MemoryBudget(1 * MB);
    const first = budget.hold();
    await first.reserveTo(512 * 1024);
    const second = budget.hold();
    await second.reserveTo(256 * 1024);
    const newcomer = budget.hold().reserveTo(512 * 1024);
    const growth = second.reserveTo(768 * 1024);
    expect(await settled(growth)).toBe(false);
    first.release(); // room for one of them: the holder's growth
    await growth;
    expect(await settled(newcomer)).toBe(false);
  });

  test('when every holder waits to grow, the oldest grows past the budget until it lets go, so holders never wait on each other forever', async () => {
    const budget = new MemoryBudget(1 * MB);
    const oldest = budget.hold();
    const younger = budget.hold();
    await oldest.reserveTo(512 * 1024);
    await younger.reserveTo(512 * 1024);
    const youngerGrows = younger.reserveTo(1 * MB);
    expect(await settled(youngerGrows)).toBe(false); // the oldest is still reading: it may release
    await oldest.reserveTo(1 * MB); // now both wait: the oldest goes on, past the budget
    await oldest.reserveTo(2 * MB); // and keeps going while the younger one waits
    expect(budget.usedBytes).toBe(2.5 * MB);
    expect(await settled(youngerGrows)).toBe(false);
    oldest.release();
    await youngerGrows;
    expect(budget.usedBytes).toBe(1 * MB);
  });

  test('a holder whose deadline passes while it waits to grow leaves the line, and the next in line goes', async () => {
    const budget = new MemoryBudget(1 * MB);
    const reading = budget.hold();
    await reading.reserveTo(512 * 1024);
    const growing = budget.hold();
    await growing.reserveTo(256 * 1024);
    const deadline = new AbortController();
    const grown = growing.reserveTo(1 * MB, deadline.signal);
    const newcomer = budget.hold().reserveTo(128 * 1024);
    expect(await settled(newcomer)).toBe(false); // behind the growth
    deadline.abort(new Error('timed out'));
    await expect(grown).rejects.toThrow('timed out');
    await newcomer;
    growing.release();
    expect(budget.usedBytes).toBe(640 * 1024);
  });

  test('a body larger than the whole budget is let in alone, never starved', async () => {
    const budget = new MemoryBudget(1 * MB);
    const small = budget.hold();
    await small.reserveTo(100);
    const big = budget.hold().reserveTo(5 * MB);
    expect(await settled(big)).toBe(false);
    // Later small bodies queue behind the big one (first come, first served).
    const later = budget.hold().reserveTo(100);
    expect(await settled(later)).toBe(false);
    small.release();
    await big;
    expect(await settled(later)).toBe(false);
  });

  test('a body that has waited as long as it may is let in past the budget; the queue behind it keeps its order', async () => {
    const budget = new MemoryBudget(1 * MB);
    const holder = budget.hold();
    await holder.reserveTo(1 * MB);
    const impatient = budget.hold().reserveTo(1 * MB, undefined, 30);
    const patient = budget.hold().reserveTo(10);
    expect(await settled(impatient)).toBe(false);
    await impatient;
    expect(budget.usedBytes).toBe(2 * MB);
    expect(await settled(patient)).toBe(false); // still over budget: it waits for a release
    holder.release();
    expect(await settled(patient)).toBe(false); // 1 MB + 10 bytes would still pass the budget
  });

  test('bodies let in past the budget never hold more than twice the budget', async () => {
    const budget = new MemoryBudget(1 * MB);
    const holder = budget.hold();
    await holder.reserveTo(1 * MB);
    const firstHold = budget.hold();
    const first = firstHold.reserveTo(1 * MB, undefined, 10);
    const second = budget.hold().reserveTo(1 * MB, undefined, 10);
    await first;
    await new Promise((r) => setTimeout(r, 50));
    expect(await settled(second)).toBe(false); // 3 MB would pass twice the budget: it waits its turn
    expect(budget.usedBytes).toBe(2 * MB);
    holder.release();
    expect(await settled(second)).toBe(false); // its turn is a body that fits the budget
    firstHold.release();
    await second;
    expect(budget.usedBytes).toBe(1 * MB);
  });

  test('a scrape whose deadline passes while waiting leaves the queue, and the next in line goes', async () => {
    const budget = new MemoryBudget(1 * MB);
    const holder = budget.hold();
    await holder.reserveTo(1 * MB);
    const deadline = new AbortController();
    const blocked = budget.hold().reserveTo(1 * MB, deadline.signal);
    const next = budget.hold().reserveTo(10);
    deadline.abort(new Error('timed out'));
    await expect(blocked).rejects.toThrow('timed out');
    expect(await settled(next)).toBe(false); // still full
    holder.release();
    await next;
    expect(budget.usedBytes).toBe(10);
  });
});

describe('a scrape waiting for the budget', () => {
  let target: TargetServer;
  const scraper = new Scraper({ allowPrivateTargets: true, maxBodyBytes: 10 * MB });
  beforeAll(async () => {
    target = await startTargetServer({
      // 1 MiB, chunked: no length announced, so the scrape asks for more budget every 64 KiB.
      '/chunked-1mb': (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        const chunk = Buffer.alloc(16 * 1024, 'x');
        for (let i = 0; i < 64; i++) res.write(chunk);
        res.end();
      },
    });
  });
  afterAll(async () => {
    await scraper.close();
    await target?.close();
  });

  test('a growing body behind a spent budget completes: all its waits together end at half its timeout, not each at half of what is left', async () => {
    const budget = new MemoryBudget(1 * MB);
    const elsewhere = budget.hold();
    await elsewhere.reserveTo(1 * MB); // another page holds the whole budget throughout
    const hold = budget.hold();
    try {
      const request = {
        url: `${target.origin}/chunked-1mb`,
        method: 'GET',
        headers: {},
        timeout: 2,
        follow_redirects: true,
        format: 'raw',
        mode: 'auto',
      } as const;
      // 16 steps of 64 KiB, each waiting half of what was left, would add up to the 2 s deadline.
      const page = await scraper.scrape(request, undefined, hold);
      expect(page.content).toHaveLength(1 * MB);
      expect(budget.usedBytes).toBeLessThanOrEqual(2 * MB); // past the budget, within twice it
    } finally {
      hold.release();
      elsewhere.release();
    }
  });
});
