import { coalesced } from '../src/jobs/coalesced';

/** A run the test ends by hand, counting how many started. */
function gatedRun() {
  const ends: (() => void)[] = [];
  let started = 0;
  const run = () => {
    started++;
    return new Promise<void>((resolve) => ends.push(resolve));
  };
  /** Ends the run in flight and lets the helper start its follow-up, if any. */
  const finish = async () => {
    ends.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { run, finish, started: () => started };
}

describe('coalesced', () => {
  test('calls made while a run is in flight fold into one more run after it', async () => {
    const gate = gatedRun();
    const call = coalesced(gate.run);
    call();
    call();
    call();
    call();
    expect(gate.started()).toBe(1);
    await gate.finish();
    expect(gate.started()).toBe(2);
    await gate.finish();
    expect(gate.started()).toBe(2);
    call();
    expect(gate.started()).toBe(3);
    await gate.finish();
  });

  test("with whileRunning 'skip', calls made while a run is in flight are dropped", async () => {
    const gate = gatedRun();
    const call = coalesced(gate.run, { whileRunning: 'skip' });
    call();
    call();
    call();
    await gate.finish();
    expect(gate.started()).toBe(1);
    call();
    expect(gate.started()).toBe(2);
    await gate.finish();
  });

  test('an overlap is told once per run as the first, then as repeats', async () => {
    const gate = gatedRun();
    const overlaps: boolean[] = [];
    const call = coalesced(gate.run, { onOverlap: (first) => overlaps.push(first) });
    call();
    call();
    call();
    await gate.finish();
    call();
    await gate.finish();
    expect(overlaps).toEqual([true, false, true]);
  });

  test('stop drops the follow-up and waits for the run in flight', async () => {
    const gate = gatedRun();
    const call = coalesced(gate.run);
    call();
    call();
    let stopped = false;
    const stopping = call.stop().then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    await gate.finish();
    await stopping;
    expect(gate.started()).toBe(1);
  });

  test('a run that found nothing to do leaves the next call free to start one', async () => {
    let runs = 0;
    const call = coalesced(async () => {
      runs++;
    });
    call();
    await new Promise((resolve) => setImmediate(resolve));
    call();
    await call.stop();
    expect(runs).toBe(2);
  });
});
