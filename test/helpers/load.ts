import type { TestService } from './service';

export interface SubmissionTally {
  accepted: string[];
  unavailable: number;
  /** Any answer other than 202 or 503, by status: must stay empty. */
  unexpected: Record<number, number>;
}

/**
 * Submits `total` async jobs with `concurrency` submitters, retrying 503s after a short pause,
 * until `total` are accepted. `onAccepted` runs after each 202 (fault injection hooks in here).
 */
export async function submitJobs(
  service: TestService,
  total: number,
  urlFor: (i: number) => string,
  options: { concurrency?: number; onAccepted?: (count: number) => Promise<void> | void } = {},
): Promise<SubmissionTally> {
  const tally: SubmissionTally = { accepted: [], unavailable: 0, unexpected: {} };
  let next = 0;
  const submitter = async () => {
    while (next < total) {
      const i = next++;
      for (;;) {
        let status: number;
        let body: any;
        try {
          ({ status, body } = await service.call('POST', '/v1/scrape/async', { url: urlFor(i) }));
        } catch {
          status = 0; // the connection itself failed: counted as unexpected
        }
        if (status === 202) {
          tally.accepted.push(body.job_id);
          await options.onAccepted?.(tally.accepted.length);
          break;
        }
        if (status === 503) {
          tally.unavailable++;
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        tally.unexpected[status] = (tally.unexpected[status] ?? 0) + 1;
        break;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, submitter));
  return tally;
}

/** Waits until none of `ids` is queued or processing; returns the count of each final status. */
export async function waitUntilAllFinished(
  service: TestService,
  ids: string[],
  timeoutMs: number,
): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let rows: { status: string; n: number }[] = [];
    try {
      rows = await service.query(
        'select status, count(*)::int as n from omniscrape.scrape_jobs where id = any($1::uuid[]) group by status',
        [ids],
      );
    } catch {
      // Postgres may still be coming back
    }
    const byStatus = Object.fromEntries(rows.map((r) => [r.status, r.n]));
    const unfinished = (byStatus.queued ?? 0) + (byStatus.processing ?? 0);
    const known = rows.reduce((sum, r) => sum + r.n, 0);
    if (rows.length > 0 && unfinished === 0 && known === ids.length) return byStatus;
    if (Date.now() > deadline) {
      throw new Error(
        `not all jobs finished in ${timeoutMs} ms: ${JSON.stringify(byStatus)} of ${ids.length}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
