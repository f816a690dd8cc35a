import type { PgBoss, WorkOptions } from 'pg-boss';

export interface RelayPollers {
  stop(): void;
}

/**
 * `pollers` pg-boss pollers of one queue (one job at a time each) that share a single poll. A
 * queue with NOTIFY wakes them all when a job is sent; jobs nobody announces (retries coming due)
 * are found by one timer that wakes one poller every `pollSeconds`, and a poller that found a job
 * wakes the next one, so a burst of due jobs fans out to every poller while an idle process looks
 * once per `pollSeconds` instead of once per poller. Without a NOTIFY listener each poller polls
 * every `pollSeconds` itself (pg-boss's `pollingIntervalSeconds`). `stop` ends the timer; the
 * pollers stop with `boss.offWork(queue)`.
 */
export async function startRelayPollers<T>(
  boss: PgBoss,
  queue: string,
  { pollers, pollSeconds, options }: { pollers: number; pollSeconds: number; options: WorkOptions },
  handle: (job: T) => Promise<void>,
): Promise<RelayPollers> {
  let ids: string[] = [];
  let next = 0;
  const wakeNext = () => {
    if (ids.length === 0) return;
    boss.notifyWorker(ids[next % ids.length]!);
    next = (next + 1) % ids.length;
  };
  const workId = await boss.work(
    queue,
    { ...options, localConcurrency: pollers, batchSize: 1, pollingIntervalSeconds: pollSeconds },
    async (jobs) => {
      const job = jobs[0] as T | undefined;
      if (job === undefined) return;
      wakeNext(); // more may be due: let the next poller look too
      await handle(job);
    },
  );
  // pg-boss names each of the pollers one work() call starts by that call's id (workId).
  ids = boss
    .getWipData()
    .filter((worker) => worker.workId === workId)
    .map((worker) => worker.id);
  const timer = setInterval(wakeNext, pollSeconds * 1000);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
  };
}
