import type { Logger } from '../logger';
import { batchJobIds, batchProgress, type BatchProgress } from '../db/batches';
import type { Db } from '../db/schema';
import type { JobWatchers } from './job-watchers';

/** The shortest time between two reads of one batch's counts: notices meanwhile share the next read. */
export const BATCH_PROGRESS_INTERVAL_MS = 250;

/** Called with a batch's counts after each read of them. */
export type ProgressListener = (progress: BatchProgress) => void;

export interface ProgressFollow {
  /**
   * The batch's counts as read after its jobs were watched (its listener hears every read after);
   * rejects if the first read failed.
   */
  latest: Promise<BatchProgress>;
  /** Stops following (only the first call counts); the batch's reader ends with its last follower. */
  stop: () => void;
}

/**
 * The batches this process's event streams follow, one reader each however many streams follow
 * it: the reader watches the batch's jobs once (JobWatchers.watchNamed: no re-read of the jobs)
 * and, after notices that name any of them, reads the batch's counts, at most once every
 * BATCH_PROGRESS_INTERVAL_MS, notices meanwhile folded into the next read. A status notice so
 * costs each followed batch it touches at most one aggregate query per interval, whatever the
 * number of its streams; the reader and its watches go when its last stream leaves.
 */
export class BatchProgressReaders {
  readonly #readers = new Map<string, BatchProgressReader>();
  #reads = 0;

  constructor(
    private readonly db: Db,
    private readonly watchers: JobWatchers,
    private readonly logger: Logger,
    private readonly intervalMs = BATCH_PROGRESS_INTERVAL_MS,
  ) {}

  /** Batches followed right now. */
  get size(): number {
    return this.#readers.size;
  }

  /** Reads of batch counts made so far (tests count them). */
  get reads(): number {
    return this.#reads;
  }

  /** Follows a batch's counts: `onProgress` hears every read after the first (`latest`). */
  follow(batchId: string, onProgress: ProgressListener): ProgressFollow {
    let reader = this.#readers.get(batchId);
    if (!reader) {
      const created = new BatchProgressReader(batchId, {
        watchJobs: async () => {
          const ids = await batchJobIds(this.db, batchId);
          return ids.map((id) => this.watchers.watchNamed(id, () => created.noticed()));
        },
        read: () => {
          this.#reads++;
          return batchProgress(this.db, batchId);
        },
        logger: this.logger,
        intervalMs: this.intervalMs,
        onEmpty: () => {
          if (this.#readers.get(batchId) === created) this.#readers.delete(batchId);
        },
      });
      this.#readers.set(batchId, created);
      reader = created;
    }
    return reader.follow(onProgress);
  }
}

interface ReaderDeps {
  /** Watches the batch's jobs; resolves with the functions that forget each watch. */
  watchJobs(): Promise<(() => void)[]>;
  read(): Promise<BatchProgress>;
  logger: Logger;
  intervalMs: number;
  /** Called once, when the reader ends (its last follower left, or its start failed). */
  onEmpty(): void;
}

/** One batch's counts, read for all its followers. */
class BatchProgressReader {
  readonly #followers = new Set<ProgressListener>();
  #unwatch: (() => void)[] = [];
  #latest: BatchProgress | undefined;
  readonly #ready: Promise<BatchProgress>;
  #timer: NodeJS.Timeout | undefined;
  #reading = false;
  #again = false;
  #lastReadAt = 0;
  #ended = false;

  constructor(
    private readonly batchId: string,
    private readonly deps: ReaderDeps,
  ) {
    this.#ready = this.#start();
    // A failed start ends the reader: the next stream of the batch makes a new one.
    this.#ready.catch(() => this.#end());
  }

  /** Watches first, then reads: a change committed after the read is always followed by a notice. */
  async #start(): Promise<BatchProgress> {
    const unwatch = await this.deps.watchJobs();
    if (this.#ended) {
      unwatch.forEach((forget) => forget());
      throw new Error('the batch progress reader ended before it started');
    }
    this.#unwatch = unwatch;
    this.#lastReadAt = Date.now();
    this.#latest = await this.deps.read();
    return this.#latest;
  }

  follow(onProgress: ProgressListener): ProgressFollow {
    this.#followers.add(onProgress);
    let stopped = false;
    return {
      latest: this.#ready.then(() => this.#latest!),
      stop: () => {
        if (stopped) return;
        stopped = true;
        this.#followers.delete(onProgress);
        if (this.#followers.size === 0) this.#end();
      },
    };
  }

  /** A notice named one of the batch's jobs: read the counts again, once the interval allows. */
  noticed(): void {
    if (this.#ended || this.#timer) return;
    if (this.#reading) return void (this.#again = true);
    const wait = Math.max(0, this.#lastReadAt + this.deps.intervalMs - Date.now());
    this.#timer = setTimeout(() => void this.#readNow(), wait);
  }

  async #readNow(): Promise<void> {
    this.#timer = undefined;
    this.#reading = true;
    this.#again = false;
    this.#lastReadAt = Date.now();
    try {
      const progress = await this.deps.read();
      if (this.#ended) return;
      this.#latest = progress;
      for (const onProgress of [...this.#followers]) onProgress(progress);
    } catch (err) {
      // Not rethrown: the next notice reads the counts again.
      this.deps.logger.warn({ err, batchId: this.batchId }, "could not read a batch's progress");
    } finally {
      this.#reading = false;
      if (this.#again) this.noticed();
    }
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#unwatch.forEach((forget) => forget());
    this.#unwatch = [];
    this.deps.onEmpty();
  }
}
