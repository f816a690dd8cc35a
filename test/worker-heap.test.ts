import { boundWorkerHeapGrowth } from '../src/cli/worker-heap';

describe('a worker process bounds the growth of its heap', () => {
  test('it applies its own heap growth when the process was started without one', () => {
    expect(boundWorkerHeapGrowth([], '')).toBe(true);
    expect(boundWorkerHeapGrowth(['--enable-source-maps'], '--max-old-space-size=4096')).toBe(true);
  });

  test("an operator's --heap-growing-percent, in node's flags or NODE_OPTIONS, stands", () => {
    expect(boundWorkerHeapGrowth(['--heap-growing-percent=50'], '')).toBe(false);
    expect(boundWorkerHeapGrowth([], '--heap_growing_percent=80')).toBe(false);
  });
});
