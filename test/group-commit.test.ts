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

  test('a batch that fails on one bad item is written again item by item: only the bad item fails', async () => {
    const batches: number[][] = [];
    const badItem = Object.assign(new Error('unsupported Unicode escape sequence'), { code: '22P05' });
    const write = async (items: number[]) => {
      batches.push(items);
      if (items.includes(13)) throw badItem;
      return items.map((n) => n * 10);
    };
    const commits = new GroupCommit(write, 100, (err) => err === badItem);
    const first = commits.add(1); // written alone at once
    const rest = [12, 13, 14].map((n) => commits.add(n));
    expect(await first).toBe(10);
    const settled = await Promise.allSettled(rest);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[0] as PromiseFulfilledResult<number>).value).toBe(120);
    expect((settled[1] as PromiseRejectedResult).reason).toBe(badItem);
    expect(batches).toEqual([[1], [12, 13, 14], [12], [13], [14]]);
  });

  test('a batch that fails for another reason is not retried item by item', async () => {
    const batches: number[][] = [];
    const write = async (items: number[]) => {
      batches.push(items);
      throw new Error('connection lost');
    };
    const commits = new GroupCommit(write, 100, () => false);
    const all = [1, 2, 3].map((n) => commits.add(n));
    const settled = await Promise.allSettled(all);
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    expect(batches).toEqual([[1], [2, 3]]);
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
