import type { JobAttempt, PgBoss } from 'pg-boss';
import type { Logger } from '../logger';
import { coalesced } from './coalesced';

export interface ClaimLoopOptions<C> {
  queue: string;
  /** Jobs this process holds at once. */
  concurrency: number;
  /** How long a loop that may have work waiting (a key at its limit, jobs put back) waits before it looks again. */
  idlePollMs: number;
  /**
   * How long a loop whose last claim found the queue drained waits for a wake-up before it looks
   * again anyway (for work nobody announces: retries of lost or handed-back jobs). Default idlePollMs.
   */
  drainedPollMs?: number;
  /** The longest a loop with work waiting delays a claim to gather free slots (default CLAIM_GATHER_MS). */
  gatherMs?: number;
  /** The queue's heartbeatSeconds: claims are refreshed at half of it. */
  heartbeatSeconds: number;
  /**
   * Claims up to `max` jobs: pg-boss `fetch` (FOR UPDATE SKIP LOCKED) and whatever starting a job
   * means, in one transaction. Returns the jobs this process now holds, how many it fetched (some
   * may have been put back rather than started), and whether some key reached its concurrency limit
   * (then a claim that came back short does not mean the queue is drained: that key's backlog is
   * fetchable again as soon as one of its jobs finishes).
   */
  claim(max: number): Promise<{ claimed: C[]; fetched: number; capped?: boolean }>;
  /** The pg-boss attempt a claimed job is (heartbeats and failures are fenced to it). */
  attemptOf(claimed: C): JobAttempt;
  /** Runs with each heartbeat, for the jobs still held under their attempt. */
  heartbeat?(alive: C[]): Promise<void>;
  /**
   * Runs one claimed job and settles it with pg-boss (completes it) itself; a throw fails the
   * attempt, and pg-boss retries it. `claim` aborts when the job is no longer this worker's
   * (another worker took it over); `shutdown` aborts when the loop is stopping and the grace
   * period is over.
   */
  handle(claimed: C, signals: { claim: AbortSignal; shutdown: AbortSignal }): Promise<void>;
}

/** The longest a worker with work waiting delays a claim to gather free slots into one batch. */
const CLAIM_GATHER_MS = 10;

interface Held<C> {
  claimed: C;
  attempt: JobAttempt;
  claim: AbortController;
  done: Promise<void>;
}

/**
 * Claims jobs (through `claim`, in batches) and keeps up to `concurrency` of them running, each
 * settled on its own as it finishes. It claims again as slots free up while claims come back full,
 * and otherwise sleeps until `wake()` (new work announced) or the idle poll (which also finds
 * retries, which are not announced): `idlePollMs` while work may be waiting, `drainedPollMs` once a
 * claim found the queue drained — so a backlog drains at full speed and an idle worker costs one
 * claim per drained poll. Heartbeats (pg-boss `touch`) keep the claims alive; a claim that lapsed is aborted.
 */
export class ClaimLoop<C> {
  readonly #held = new Map<string, Held<C>>();
  readonly #shutdown = new AbortController();
  #stopping = false;
  #wakeUp: (() => void) | undefined;
  #woken = false;
  /** wake() calls so far: tells whether one came in while a claim was running. */
  #announced = 0;
  /** Work may be waiting that no claim has seen yet (at start: look once). */
  #pending = true;
  #loop: Promise<void> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  /**
   * One heartbeat at a time, however slow Postgres is. On a slow database the previous one may still
   * be running when the next falls due: then that one is skipped (and said), not piled on top — the
   * claims were refreshed as lately as the running one got to.
   */
  readonly #heartbeatDue = coalesced(() => this.#touch(), {
    whileRunning: 'skip',
    onOverlap: () =>
      this.logger.warn(
        { queue: this.options.queue, periodMs: (this.options.heartbeatSeconds * 1000) / 2 },
        'heartbeat overran its period; skipping this one',
      ),
  });

  constructor(
    private readonly boss: PgBoss,
    private readonly logger: Logger,
    private readonly options: ClaimLoopOptions<C>,
  ) {}

  get inFlight(): number {
    return this.#held.size;
  }

  start(): void {
    this.#loop = this.#run();
    this.#heartbeat = setInterval(() => this.#heartbeatDue(), (this.options.heartbeatSeconds * 1000) / 2);
  }

  /** There may be new work: look now instead of at the next idle poll. */
  wake(): void {
    this.#announced++;
    this.#pending = true;
    this.#woken = true;
    this.#wakeUp?.();
  }

  /**
   * A held job finished. Its slot is worth a claim at once only while work may be waiting; once a
   * claim found the queue drained, the next job announces itself (wake), and a freed slot costs
   * nothing (an empty claim is a transaction, and at idle it would delay the next real one).
   */
  #slotFreed(): void {
    if (!this.#pending) return;
    this.#woken = true;
    this.#wakeUp?.();
  }

  /**
   * Stops claiming at once, lets held jobs finish for up to `graceMs`, then aborts the rest through
   * their `shutdown` signal and waits for their handlers to settle them.
   */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.wake();
    await this.#loop;
    const all = () => Promise.allSettled([...this.#held.values()].map((h) => h.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all(), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    this.#shutdown.abort(new Error('worker stopping'));
    await all();
    clearInterval(this.#heartbeat);
    await this.#heartbeatDue.stop();
  }

  async #run(): Promise<void> {
    let backlog = false; // the last claim came back full: more work is waiting
    while (!this.#stopping) {
      if (backlog) await this.#gatherSlots();
      if (this.#stopping) break;
      const free = this.options.concurrency - this.#held.size;
      let full = false;
      let putBack = false;
      if (free > 0) {
        this.#woken = false; // this fetch sees whatever the wake-up announced
        const announcedBefore = this.#announced;
        try {
          const { claimed, fetched, capped = false } = await this.options.claim(free);
          for (const c of claimed) this.#hold(c);
          full = fetched >= free;
          putBack = claimed.length < fetched;
          // A full claim, one that put jobs back, or one cut short by a key's limit means more may
          // be waiting; any other short one that the queue is drained, unless new work was
          // announced meanwhile (this fetch may not have seen it).
          if (full || putBack || capped) this.#pending = true;
          else if (this.#announced === announcedBefore) this.#pending = false;
        } catch (err) {
          // Not rethrown: the loop is the caller, and the next pass claims again (Postgres may be back).
          this.logger.warn({ err, queue: this.options.queue }, 'claiming jobs failed; retrying');
        }
      }
      backlog = full;
      // More may be waiting: go again at once while slots are free.
      if ((full || putBack) && this.#held.size < this.options.concurrency) continue;
      if (this.#stopping) break;
      await this.#sleep(
        this.#pending ? this.options.idlePollMs : (this.options.drainedPollMs ?? this.options.idlePollMs),
      );
    }
  }

  /**
   * With work waiting, claims come in batches: rather than one claim per slot as each frees up,
   * wait until a fifth of the slots are free, or `gatherMs` at most. Each claim is a
   * transaction (and a fetch that walks the queue), so fewer, larger claims leave more of the
   * machine to the scrapes themselves. An idle worker never waits here: a new job is claimed at once.
   */
  async #gatherSlots(): Promise<void> {
    const want = Math.max(1, Math.ceil(this.options.concurrency / 5));
    const until = performance.now() + (this.options.gatherMs ?? CLAIM_GATHER_MS);
    while (!this.#stopping && this.options.concurrency - this.#held.size < want) {
      const left = until - performance.now();
      if (left <= 0) return;
      this.#woken = false; // a claim follows anyway
      await this.#sleep(left);
    }
  }

  /** Sleeps until woken, or until `ms` pass. */
  #sleep(ms: number): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakeUp = undefined;
        this.#woken = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wakeUp = done;
    });
  }

  #hold(claimed: C): void {
    const attempt = this.options.attemptOf(claimed);
    // Keyed by attempt: after a lapsed claim the same job can come back to this process.
    const key = `${attempt.id}:${attempt.retryCount}`;
    const claim = new AbortController();
    const done = this.options
      .handle(claimed, { claim: claim.signal, shutdown: this.#shutdown.signal })
      .then(
        () => undefined,
        (err: Error) =>
          this.boss.fail(this.options.queue, attempt, { message: err.message }).then(() => undefined),
      )
      .catch(
        // Settling failed (Postgres away): the claim lapses and pg-boss hands the job out again.
        (err: Error) =>
          this.logger.warn(
            { err, queue: this.options.queue, jobId: attempt.id },
            'could not settle a job with pg-boss',
          ),
      )
      .finally(() => {
        this.#held.delete(key);
        this.#slotFreed();
      });
    this.#held.set(key, { claimed, attempt, claim, done });
  }

  async #touch(): Promise<void> {
    const held = [...this.#held.values()];
    if (held.length === 0) return;
    try {
      const result = (await this.boss.touch(
        this.options.queue,
        held.map((h) => h.attempt),
      )) as { settled?: string[] };
      const alive = result.settled ? new Set(result.settled) : undefined;
      for (const h of held) {
        // Not refreshed: no longer active under this attempt (taken over, or settled meanwhile).
        if (alive && !alive.has(h.attempt.id)) h.claim.abort(new Error('claim lost'));
      }
      await this.options.heartbeat?.(
        held.filter((h) => !alive || alive.has(h.attempt.id)).map((h) => h.claimed),
      );
    } catch (err) {
      // A heartbeat that could not run says nothing about the claims: abort nothing (not rethrown:
      // a timer has no caller; the next heartbeat tries again).
      this.logger.warn({ err, queue: this.options.queue }, 'heartbeat failed');
    }
  }
}
