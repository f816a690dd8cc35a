import { GroupCommit } from '../src/jobs/group-commit';

/** A write that the test completes by hand, recording each batch. */
function manualWrites() {
  const batches: number[][] = [];
  const pending: { resolve(): void; reject(err: Error): void }[] = [];
  const write = (items: number[]) =>
    new Promise<number[]>((resolve, reject) => {
      batches.push(items);
      pending.push({ resolve: () => resolve(items.map((n) => n * 10)), reject });
    });
  const tick = () => new Promise((r) => setImmediate(r));
  return { batches, pending, write, tick };
}

describe('group commit', () => {
  test('a lone item is written at once; items arriving meanwhile go together in the next batch, each caller gets its own answer', async () => {
    const { batches, pending, write, tick } = manualWrites();
    const commits = new GroupCommit(write, 100);
    const first = commits.add(1);
    await tick();
    expect(batches).toEqual([[1]]);
    const later = [commits.add(2), commits.add(3), commits.add(4)];
    await tick();
    expect(batches).toEqual([[1]]); // they wait for the batch being written
    pending[0]!.resolve();
    expect(await first).toBe(10);
    await tick();
    expect(batches).toEqual([[1], [2, 3, 4]]);
    pending[1]!.resolve();
    expect(await Promise.all(later)).toEqual([20, 30, 40]);
  });

  test('a failed batch rejects its own items only, and later items are still written', async () => {
    const { batches, pending, write, tick } = manualWrites();
    const commits = new GroupCommit(write, 100);
    const failing = commits.add(1);
    await tick();
    const next = commits.add(2);
    pending[0]!.reject(new Error('connection lost'));
    await expect(failing).rejects.toThrow('connection lost');
    await tick();
    pending[1]!.resolve();
    expect(await next).toBe(20);
    expect(batches).toEqual([[1], [2]]);
  });

  test('batches are capped at maxBatch', async () => {
    const { batches, pending, write, tick } = manualWrites();
    const commits = new GroupCommit(write, 2);
    const all = [1, 2, 3, 4, 5].map((n) => commits.add(n));
    await tick();
    while (pending.length < 3) {
      pending[pending.length - 1]!.resolve();
      await tick();
    }
    pending[2]!.resolve();
    await Promise.all(all);
    expect(batches).toEqual([[1], [2, 3], [4, 5]]);
  });
});
