import type { PgBoss } from 'pg-boss';
import { ClaimLoop } from '../src/jobs/claim-loop';
import { createLogger } from '../src/logger';
import { loadConfig } from '../src/config';
import { capturingLogger } from './helpers/log-capture';

const logger = createLogger(loadConfig({ OMNISCRAPE_LOG_LEVEL: 'silent' }));
// The loop settles failures and heartbeats through pg-boss; these jobs never fail, and no heartbeat falls due.
const boss = { fail: async () => ({}), touch: async () => ({}) } as unknown as PgBoss;

/** A loop over an in-memory queue whose jobs all belong to one key, running at most `keyLimit` at once. */
function queueLoop(concurrency: number, idlePollMs: number, keyLimit = Infinity) {
  const queue: number[] = [];
  const done: number[] = [];
  let claims = 0;
  let running = 0;
  const loop = new ClaimLoop<number>(boss, logger, {
    queue: 'test',
    concurrency,
    idlePollMs,
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
  return { loop, queue, done, claims: () => claims };
}

async function until(condition: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

describe('claim loop', () => {
  test('work found by the idle poll (not announced) is drained as slots free up, not one poll at a time', async () => {
    const { loop, queue, done } = queueLoop(2, 300);
    loop.start();
    await new Promise((r) => setTimeout(r, 20)); // first claim finds nothing: the queue looks drained
    queue.push(1, 2, 3, 4, 5, 6, 7, 8);
    const pushed = Date.now();
    await until(() => done.length === 8, 2_000);
    // 8 jobs, 2 at a time: the next idle poll finds the first 2, and freed slots claim the rest at
    // once. Waiting for a poll per pair would take four polls (1.2 s); before it finished, the loop
    // stopped claiming altogether after the first pair.
    expect(done).toHaveLength(8);
    expect(Date.now() - pushed).toBeLessThan(900);
    await loop.stop(1_000);
  });

  test('an announced job is claimed at once, and an idle worker with free slots makes no extra claims as jobs finish', async () => {
    const { loop, queue, done, claims } = queueLoop(4, 60_000);
    loop.start();
    await until(() => claims() === 1, 1_000);
    queue.push(1);
    loop.wake();
    await until(() => done.length === 1, 1_000);
    expect(done).toEqual([1]);
    await new Promise((r) => setTimeout(r, 50));
    // start, the announced job; its finish found the queue drained and did not claim again
    expect(claims()).toBe(2);
    await loop.stop(1_000);
  });

  test("a claim cut short by its key's limit is not taken for a drained queue: the key's backlog follows as its jobs finish", async () => {
    const { loop, queue, done } = queueLoop(4, 60_000, 2);
    loop.start();
    await new Promise((r) => setTimeout(r, 20));
    queue.push(1, 2, 3, 4, 5, 6, 7, 8);
    loop.wake();
    // Each claim gets 2 of 4 free slots (the key's limit); waiting for the idle poll (60 s) after
    // the first pair would leave 6 jobs queued.
    await until(() => done.length === 8, 2_000);
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
      heartbeatSeconds: 600,
      claim: async (max) => {
        claims++;
        const claimed = Array.from({ length: max }, (_, i) => claims * 100 + i);
        // The claim came back full, so the loop now waits to gather free slots; one slot frees
        // (not enough to claim yet), and the stop arrives during that wait.
        setImmediate(() => {
          release.get(100)!();
          setImmediate(() => (stopping = loop.stop(0)));
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
    await until(() => stopping !== undefined, 1_000);
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
    await until(() => lines.some((l) => l.msg === 'heartbeat overran its period; skipping this one'), 5_000);
    expect(
      lines.filter((l) => l.msg === 'heartbeat overran its period; skipping this one').length,
    ).toBeGreaterThan(0);
    expect(touches).toBe(1);
    release!();
    await until(() => touches > 1, 5_000); // the next period after it finished runs again
    expect(mostAtOnce).toBe(1);
    finish!();
    await loop.stop(1_000);
  });
});
