import { boundWorkerHeapGrowth } from '../src/cli/worker-heap';

describe('a worker process at high concurrency bounds the growth of its heap', () => {
  test('from 1,000 scrapes at once, it applies its own heap growth when the process was started without one', () => {
    expect(boundWorkerHeapGrowth(1_000, [], '')).toBe(true);
    expect(boundWorkerHeapGrowth(5_000, ['--enable-source-maps'], '--max-old-space-size=4096')).toBe(true);
  });

  test("below 1,000 scrapes at once, V8's default growth stands", () => {
    expect(boundWorkerHeapGrowth(20, [], '')).toBe(false);
    expect(boundWorkerHeapGrowth(999, [], '')).toBe(false);
  });

  test("an operator's --heap-growing-percent, in node's flags or NODE_OPTIONS, stands", () => {
    expect(boundWorkerHeapGrowth(5_000, ['--heap-growing-percent=50'], '')).toBe(false);
    expect(boundWorkerHeapGrowth(5_000, [], '--heap_growing_percent=80')).toBe(false);
  });
});
