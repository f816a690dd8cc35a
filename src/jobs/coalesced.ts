/** What `coalesced()` does with a call that comes while a run is in flight. */
export type WhileRunning =
  /** Fold it into one more run after the one in flight (however many such calls came). */
  | 'again'
  /** Drop it: the run in flight stands for it. */
  | 'skip';

export interface CoalescedOptions {
  /** Default 'again'. */
  whileRunning?: WhileRunning;
  /**
   * Told of each call that came while a run was in flight; `first` is true for the first such call
   * since that run started (so an overrun is said once, not once per call).
   */
  onOverlap?(first: boolean): void;
}

/** Starts a run, or notes the call for the run in flight (see `coalesced`). */
export interface Coalesced {
  (): void;
  /** Drops a pending follow-up run and waits for the run in flight, if any. */
  stop(): Promise<void>;
}

/**
 * One call in flight, the rest merged: a call starts `run` unless a run is in flight; calls made
 * meanwhile fold into one more run as soon as it ends (or are dropped, with `whileRunning: 'skip'`).
 * So a burst of calls costs a handful of runs, and each run starts after the calls it covers.
 * `run` handles its own errors (it knows what to log): a rejection is not caught here.
 */
export function coalesced(run: () => Promise<void>, options: CoalescedOptions = {}): Coalesced {
  const whileRunning = options.whileRunning ?? 'again';
  let running: Promise<void> | undefined;
  let again = false;
  let overlapped = false;

  const call = (): void => {
    if (running) {
      options.onOverlap?.(!overlapped);
      overlapped = true;
      if (whileRunning === 'again') again = true;
      return;
    }
    overlapped = false;
    running = run().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        call();
      }
    });
  };

  return Object.assign(call, {
    async stop(): Promise<void> {
      again = false;
      await running;
    },
  });
}
