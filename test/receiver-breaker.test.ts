import { MAX_OPEN_MS, ReceiverBreaker } from '../src/jobs/receiver-breaker';

/** A breaker on a clock the test moves. */
function breakerAt(options: { failures: number; openMs: number; maxReceivers?: number }) {
  const clock = { now: 1_000_000 };
  const breaker = new ReceiverBreaker({ ...options, probeWaitMs: 10_000, now: () => clock.now });
  return { breaker, clock };
}

describe('ReceiverBreaker', () => {
  test('opens after the failures in a row, lets one probe through after the open period, and doubles it when the probe fails', () => {
    const { breaker, clock } = breakerAt({ failures: 3, openMs: 1000 });
    const r = 'http://receiver.example';
    for (let i = 0; i < 3; i++) {
      expect(breaker.admit(r)).toEqual({ send: true });
      breaker.record(r, false);
    }
    expect(breaker.admit(r)).toEqual({ send: false, retryAt: clock.now + 1000 });
    clock.now += 1000;
    expect(breaker.admit(r)).toEqual({ send: true }); // the probe
    expect(breaker.admit(r)).toEqual({ send: false, retryAt: clock.now + 10_000 }); // others wait for it
    breaker.record(r, false);
    expect(breaker.admit(r)).toEqual({ send: false, retryAt: clock.now + 2000 });
    clock.now += 2000;
    expect(breaker.admit(r)).toEqual({ send: true });
    breaker.record(r, true);
    expect(breaker.admit(r)).toEqual({ send: true });
    expect(breaker.admit(r)).toEqual({ send: true });
    expect(breaker.size).toBe(0);
  });

  test('a failure of a delivery sent before the circuit opened leaves the open period as it is; it never exceeds an hour', () => {
    const { breaker, clock } = breakerAt({ failures: 1, openMs: 1000 });
    const r = 'http://receiver.example';
    breaker.record(r, false);
    breaker.record(r, false);
    expect(breaker.admit(r)).toEqual({ send: false, retryAt: clock.now + 1000 });
    for (let i = 0; i < 40; i++) {
      clock.now += MAX_OPEN_MS;
      breaker.record(r, false);
    }
    expect(breaker.admit(r)).toEqual({ send: false, retryAt: clock.now + MAX_OPEN_MS });
  });

  test('remembers at most maxReceivers failing receivers, forgetting the one touched longest ago', () => {
    const { breaker } = breakerAt({ failures: 1, openMs: 1000, maxReceivers: 3 });
    for (const r of ['a', 'b', 'c', 'd']) breaker.record(`http://${r}.example`, false);
    expect(breaker.size).toBe(3);
    expect(breaker.admit('http://a.example')).toEqual({ send: true });
    expect(breaker.admit('http://d.example').send).toBe(false);
  });
});
