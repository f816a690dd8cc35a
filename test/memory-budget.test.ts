import { MemoryBudget } from '../src/scraper/memory-budget';

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
    await first.reserve(3 * MB);
    const second = budget.hold();
    const waiting = second.reserve(2 * MB);
    expect(await settled(waiting)).toBe(false);
    first.release();
    await waiting;
    expect(budget.usedBytes).toBe(2 * MB);
  });

  test('a body longer than it announced grows its reservation without waiting, past the budget', async () => {
    const budget = new MemoryBudget(1 * MB);
    const hold = budget.hold();
    await hold.reserve(512 * 1024);
    hold.growTo(3 * MB);
    expect(budget.usedBytes).toBe(3 * MB);
    hold.release();
    hold.release(); // twice is harmless
    expect(budget.usedBytes).toBe(0);
  });

  test('a body larger than the whole budget is let in alone, never starved', async () => {
    const budget = new MemoryBudget(1 * MB);
    const small = budget.hold();
    await small.reserve(100);
    const big = budget.hold().reserve(5 * MB);
    expect(await settled(big)).toBe(false);
    // Later small bodies queue behind the big one (first come, first served).
    const later = budget.hold().reserve(100);
    expect(await settled(later)).toBe(false);
    small.release();
    await big;
    expect(await settled(later)).toBe(false);
  });

  test('a body that has waited as long as it may is let in past the budget; the queue behind it keeps its order', async () => {
    const budget = new MemoryBudget(1 * MB);
    const holder = budget.hold();
    await holder.reserve(1 * MB);
    const impatient = budget.hold().reserve(1 * MB, undefined, 30);
    const patient = budget.hold().reserve(10);
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
    await holder.reserve(1 * MB);
    const firstHold = budget.hold();
    const first = firstHold.reserve(1 * MB, undefined, 10);
    const second = budget.hold().reserve(1 * MB, undefined, 10);
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
    await holder.reserve(1 * MB);
    const deadline = new AbortController();
    const blocked = budget.hold().reserve(1 * MB, deadline.signal);
    const next = budget.hold().reserve(10);
    deadline.abort(new Error('timed out'));
    await expect(blocked).rejects.toThrow('timed out');
    expect(await settled(next)).toBe(false); // still full
    holder.release();
    await next;
    expect(budget.usedBytes).toBe(10);
  });
});
