import type { PgBoss } from 'pg-boss';
import type { Logger } from '../logger';

/** A background duty: what one run does, and when it runs. */
export interface Duty {
  /** What the logs call it. */
  name: string;
  /** Its pg-boss queue (created by ensureMaintenanceQueues); its schedule is named after it. */
  queue: string;
  /** When it runs: pg-boss cron, UTC. */
  cron: string;
  /** One run; `stopping` aborts when the worker stops, and the run then ends at its next step. */
  run(stopping: AbortSignal): Promise<void>;
}

export interface ScheduledDuty {
  stop(): Promise<void>;
}

/**
 * Runs a duty at each slot of its pg-boss cron schedule (no external cron): pg-boss creates one
 * job per slot however many workers run, and one of them runs it. A failed run is logged and
 * rethrown, so pg-boss records the slot as failed; the duty runs again at its next slot, whatever
 * became of the other duties (each has its own queue). `stop` aborts a run in progress and waits
 * for it at most `stopTimeoutMs`, so a run stuck on a lost connection cannot hold up a shutdown.
 */
export async function scheduleDuty(
  deps: { boss: PgBoss; logger: Logger },
  duty: Duty,
  { stopTimeoutMs, pollSeconds }: { stopTimeoutMs: number; pollSeconds: number },
): Promise<ScheduledDuty> {
  const { boss, logger } = deps;
  const stopping = new AbortController();
  await boss.schedule(duty.queue, duty.cron, null, { tz: 'UTC' });
  await boss.work(duty.queue, { pollingIntervalSeconds: pollSeconds }, async () => {
    try {
      await duty.run(stopping.signal);
    } catch (err) {
      logger.error({ err, duty: duty.name }, 'a maintenance duty failed; it runs again at its next slot');
      throw err;
    }
  });
  return {
    async stop() {
      stopping.abort();
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<'gave up'>((resolve) => {
        timer = setTimeout(() => resolve('gave up'), stopTimeoutMs);
      });
      const ended = await Promise.race([boss.offWork(duty.queue, { wait: true }), gaveUp]);
      clearTimeout(timer);
      if (ended === 'gave up')
        logger.warn(
          { duty: duty.name, stopTimeoutMs },
          'a maintenance duty did not stop in time; left running',
        );
    },
  };
}
