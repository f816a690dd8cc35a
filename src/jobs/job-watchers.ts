import type { Logger } from '../logger';
import type { Db } from '../db/schema';
import { STATUS_CHANGE_KINDS, type StatusChangeKind } from '../db/statements/announce-status-changes';
import type { OwnedJob } from '../db/statements/find-job-for-key';
import { findJobs } from '../db/statements/find-jobs';

/** Most jobs re-read by one statement (a reconnect re-reads every watched job). */
const REREAD_CHUNK = 1_000;

/** Called with a watched job as re-read from Postgres after a notice named it. */
export type JobChange = (job: OwnedJob) => void;

interface Watcher {
  onChange: JobChange;
  /** Wants only the job's end (a `?wait=`): notices of other changes do not re-read the job for it. */
  endOnly: boolean;
  /** Wants only to hear that a notice named the job (a batch's progress reader): no re-read for it. */
  onNamed?: () => void;
}

/**
 * The jobs this API process's waiting requests (`?wait=`) and event streams watch, fed by the one
 * LISTEN connection on the status channel (StatusNotices sends after each change commits). A
 * notice re-reads the watched jobs it names, in one statement, and hands each row to the job's
 * watchers; the re-read, not the notice, is what they see, so what they are told was committed.
 * The batches' progress readers (jobs/batch-progress.ts) watch their jobs by name only: a notice
 * tells them at once, with no re-read. A watcher costs a map entry and a closure: no timer,
 * connection or query of its own.
 */
export class JobWatchers {
  readonly #watching = new Map<string, Set<Watcher>>();
  /** What ends each wait and stream when the process stops (a Set: 10,000 of them come and go cheaply). */
  readonly #onStop = new Set<() => void>();
  #stopped = false;

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
  ) {}

  /**
   * Calls `end` when the process stops (at once if it has), so every wait answers and every stream
   * ends; returns the function that forgets it.
   */
  onStop(end: () => void): () => void {
    if (this.#stopped) {
      end();
      return () => undefined;
    }
    this.#onStop.add(end);
    return () => this.#onStop.delete(end);
  }

  /** Jobs watched right now. */
  get size(): number {
    return this.#watching.size;
  }

  /**
   * Calls `onChange` after each notice that names the job (with `endOnly`, only after those that
   * say it ended, and after a reconnect); returns the function that stops it.
   */
  watch(
    jobId: string,
    onChange: JobChange,
    { endOnly = false, onNamed }: { endOnly?: boolean; onNamed?: () => void } = {},
  ): () => void {
    let set = this.#watching.get(jobId);
    if (!set) this.#watching.set(jobId, (set = new Set()));
    const watcher: Watcher = { onChange, endOnly, onNamed };
    set.add(watcher);
    return () => {
      set.delete(watcher);
      if (set.size === 0 && this.#watching.get(jobId) === set) this.#watching.delete(jobId);
    };
  }

  /**
   * Calls `onNamed` at once whenever a notice names the job, and after a reconnect, without
   * re-reading the job: for a watcher that reads something else (a batch's counts) and only needs
   * to know when. Returns the function that stops it.
   */
  watchNamed(jobId: string, onNamed: () => void): () => void {
    return this.watch(jobId, () => undefined, { onNamed });
  }

  /**
   * A notice on the status channel: its payload is the kind of change and the jobs it names
   * (comma-separated, announce-status-changes.ts); none (the LISTEN connection was just opened)
   * stands for any change to every watched job, since notices sent while it was down are lost. A
   * payload that starts with no kind names no job. `watchNamed` watchers are told at once; the
   * others once their jobs were re-read. Resolves once the watchers were told (it never rejects).
   */
  notice(payload: string | undefined): Promise<void> {
    const [first, ...ids] = payload?.split(',') ?? [];
    const kind = STATUS_CHANGE_KINDS.find((k) => k === first);
    const named = payload === undefined ? [...this.#watching.keys()] : kind ? ids : [];
    for (const id of named) this.#tellNamed(id);
    return this.reread(named.filter((id) => this.#wantsReread(id, kind)));
  }

  /** Tells the job's `watchNamed` watchers that a notice named it. */
  #tellNamed(jobId: string): void {
    const set = this.#watching.get(jobId);
    if (set) for (const watcher of set) watcher.onNamed?.();
  }

  /** Whether a watcher of this job needs it re-read after a notice of this kind (undefined: any change). */
  #wantsReread(jobId: string, kind: StatusChangeKind | undefined): boolean {
    const set = this.#watching.get(jobId);
    if (!set) return false;
    for (const watcher of set) if (!watcher.onNamed && (kind !== 'changed' || !watcher.endOnly)) return true;
    return false;
  }

  /** Re-reads these jobs and hands each to its watchers. */
  async reread(jobIds: readonly string[]): Promise<void> {
    for (let i = 0; i < jobIds.length; i += REREAD_CHUNK) {
      let jobs: OwnedJob[];
      try {
        jobs = await findJobs(this.db, jobIds.slice(i, i + REREAD_CHUNK));
      } catch (err) {
        // Not rethrown: a wait still ends at its deadline, and the next reconnect re-reads everything.
        this.logger.warn({ err, jobs: jobIds.length }, 'could not re-read watched jobs');
        return;
      }
      for (const job of jobs)
        for (const watcher of [...(this.#watching.get(job.id) ?? [])])
          if (!watcher.onNamed) watcher.onChange(job);
    }
  }

  /** Ends every wait (each answers the job as it is) and every stream. */
  stop(): void {
    this.#stopped = true;
    for (const end of [...this.#onStop]) end();
    this.#onStop.clear();
  }
}
