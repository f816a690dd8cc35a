import type { PgBoss } from 'pg-boss';
import { ClaimLoop } from '../src/jobs/claim-loop';
import { createLogger } from '../src/logger';
import { loadConfig } from '../src/config';
import { capturingLogger } from './helpers/log-capture';
import { waitFor } from './helpers/wait';

const logger = createLogger(loadConfig({ OMNISCRAPE_LOG_LEVEL: 'silent' }));
// The loop settles failures and heartbeats through pg-boss; these jobs never fail, and no heartbeat falls due.
const boss = { fail: async () => ({}), touch: async () => ({}) } as unknown as PgBoss;

/** Loops of queueLoop a test started; each is stopped after its test (a failed one leaves it running). */
const started: ClaimLoop<number>[] = [];

/** A loop over an in-memory queue whose jobs all belong to one key, running at most `keyLimit` at once. */
function queueLoop(concurrency: number, idlePollMs: number, keyLimit = Infinity, drainedPollMs?: number) {
  const queue: number[] = [];
  const done: number[] = [];
  let claims = 0;
  let running = 0;
  const loop = new ClaimLoop<number>(boss, logger, {
    queue: 'test',
    concurrency,
    idlePollMs,
    ...(drainedPollMs !== undefined && { drainedPollMs }),
    heartbeatSeconds: 600,
    claim: async (max) => {
      claims++;
      const claimed = queue.splice(0, Math.min(max, keyLimit - running));
      running += claimed.length;
      return { claimed, fetched: claimed.length, capped: running >= keyLimit };
    },
    attemptOf: (n) => ({ id: String(n), retryCount: 0 }),
    handle: async (n) => {
      await new Promise((r) => setTimeout(r, 5));
      done.push(n);
      running--;
    },
  });
  started.push(loop);
  return { loop, queue, done, claims: () => claims };
}

describe('claim loop', () => {
  /**
   * The loop's timers (idle poll, gathering) and the jobs' work run on Jest's clock, which only
   * moves when the test moves it: "before the next idle poll" is then counted in the loop's own
   * time, however slow the machine. Promises and setImmediate stay real.
   */
  let loopClock = false;
  const useLoopClock = () => {
    loopClock = true;
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate'] });
  };
  afterEach(async () => {
    for (const loop of started.splice(0)) {
      const stopped = loop.stop(0);
      if (loopClock) await jest.advanceTimersByTimeAsync(1_000);
      await stopped;
    }
    loopClock = false;
    jest.useRealTimers();
  });

  test('a loop that found the queue drained looks again at the drained poll, and at the idle poll while a key is full', async () => {
    useLoopClock();
    const { loop, queue, claims } = queueLoop(4, 300, 1, 5_000);
    loop.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(claims()).toBe(1); // nothing queued: drained
    await jest.advanceTimersByTimeAsync(4_999);
    expect(claims()).toBe(1); // no look in between: an idle worker costs one claim per drained poll
    await jest.advanceTimersByTimeAsync(1);
    expect(claims()).toBe(2);
    // Work waits behind a full key: the loop looks at the short idle poll, not the drained one.
    queue.push(1, 2, 3);
    loop.wake();
    await jest.advanceTimersByTimeAsync(0);
    const afterWake = claims();
    await jest.advanceTimersByTimeAsync(300);
    expect(claims()).toBeGreaterThan(afterWake);
  });

  test('work found by the idle poll (not announced) is drained as slots free up, not one poll at a time', async () => {
    useLoopClock();
    const { loop, queue, done, claims } = queueLoop(2, 300);
    loop.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(claims()).toBe(1); // the first claim finds nothing: the queue looks drained
    queue.push(1, 2, 3, 4, 5, 6, 7, 8);
    await jest.advanceTimersByTimeAsync(300);
    expect(claims()).toBe(2); // the idle poll finds the first pair
    // 8 jobs of 5 ms, 2 at a time: freed slots claim the rest at once, all before the next idle
    // poll. Waiting for a poll per pair would take three more polls, and a loop that claimed only
    // when woken or polled would stop after the first pair.
    await jest.advanceTimersByTimeAsync(299);
    expect(done).toHaveLength(8);
    await loop.stop(1_000);
  });

  test('an announced job is claimed at once, and an idle worker with free slots makes no extra claims as jobs finish', async () => {
    useLoopClock();
    const { loop, queue, done, claims } = queueLoop(4, 60_000);
    loop.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(claims()).toBe(1);
    queue.push(1);
    loop.wake();
    await jest.advanceTimersByTimeAsync(0);
    expect(claims()).toBe(2); // at once: no time has passed
    await jest.advanceTimersByTimeAsync(5);
    expect(done).toEqual([1]);
    await jest.advanceTimersByTimeAsync(30_000); // half an idle poll
    // start, the announced job; its finish found the queue drained and did not claim again
    expect(claims()).toBe(2);
    await loop.stop(1_000);
  });

  test("a claim cut short by its key's limit is not taken for a drained queue: the key's backlog follows as its jobs finish", async () => {
    const { loop, queue, done, claims } = queueLoop(4, 60_000, 2);
    loop.start();
    await waitFor(() => claims() === 1, { what: 'the first claim (it finds nothing)' });
    queue.push(1, 2, 3, 4, 5, 6, 7, 8);
    loop.wake();
    // Each claim gets 2 of 4 free slots (the key's limit); waiting for the idle poll (60 s, longer
    // than this deadline) after the first pair would leave 6 jobs queued.
    await waitFor(() => done.length === 8, { what: 'all 8 jobs done' });
    expect(done).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    await loop.stop(1_000);
  });

  test('a stop that arrives while the loop gathers free slots claims nothing more', async () => {
    let claims = 0;
    const release = new Map<number, () => void>();
    let stopping: Promise<void> | undefined;
    const loop: ClaimLoop<number> = new ClaimLoop<number>(boss, logger, {
      queue: 'test',
      concurrency: 10,
      idlePollMs: 60_000,
      gatherMs: 60_000, // the stop, not the end of gathering, is what ends this wait
      heartbeatSeconds: 600,
      claim: async (max) => {
        claims++;
        const claimed = Array.from({ length: max }, (_, i) => claims * 100 + i);
        // The claim came back full, so the loop now waits to gather free slots; one slot frees
        // (not enough to claim yet), and the stop arrives during that wait.
        setImmediate(() => {
          release.get(100)!();
          setImmediate(() => {
            stopping = loop.stop(0);
          });
        });
        return { claimed, fetched: claimed.length };
      },
      attemptOf: (n) => ({ id: String(n), retryCount: 0 }),
      handle: (n, { shutdown }) =>
        new Promise<void>((resolve) => {
          release.set(n, resolve);
          shutdown.addEventListener('abort', () => resolve());
        }),
    });
    loop.start();
    await waitFor(() => stopping !== undefined, { what: 'the stop' });
    await stopping;
    expect(claims).toBe(1);
  });

  test('a heartbeat slower than its period is never run twice at once, and the overrun is logged', async () => {
    let touching = 0;
    let mostAtOnce = 0;
    let touches = 0;
    let release: (() => void) | undefined;
    // The first heartbeat hangs until the test lets it go; every later period finds it still running.
    const slowBoss = {
      fail: async () => ({}),
      touch: async () => {
        touches++;
        mostAtOnce = Math.max(mostAtOnce, ++touching);
        if (touches === 1) await new Promise<void>((resolve) => (release = resolve));
        touching--;
        return {};
      },
    } as unknown as PgBoss;
    const { logger: captured, lines } = capturingLogger();
    let finish: (() => void) | undefined;
    const loop = new ClaimLoop<number>(slowBoss, captured, {
      queue: 'test',
      concurrency: 1,
      idlePollMs: 60_000,
      heartbeatSeconds: 0.02, // a heartbeat every 10 ms
      claim: async () => ({ claimed: finish ? [] : [1], fetched: finish ? 0 : 1 }),
      attemptOf: (n) => ({ id: String(n), retryCount: 0 }),
      handle: () => new Promise<void>((resolve) => (finish = resolve)),
    });
    loop.start();
    await waitFor(() => lines.some((l) => l.msg === 'heartbeat overran its period; skipping this one'), {
      what: 'a heartbeat overrun logged',
    });
    expect(
      lines.filter((l) => l.msg === 'heartbeat overran its period; skipping this one').length,
    ).toBeGreaterThan(0);
    expect(touches).toBe(1);
    release!();
    await waitFor(() => touches > 1, { what: 'the next heartbeat' }); // the next period after it finished runs again
    expect(mostAtOnce).toBe(1);
    finish!();
    await loop.stop(1_000);
  });
});
