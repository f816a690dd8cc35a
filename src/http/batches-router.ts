import { Router } from 'express';
import type { ServiceContext } from '../context';
import { presentJobState } from '../jobs/job-view';
import { batchStatusCounts, findBatchForKey, listBatchJobs } from '../store/batches';
import { apiKeyOf } from './auth';
import { batchNotFound, invalidRequest } from './errors';
import { idParam } from './ids';

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

/** The statuses every batch answer counts, zero or not. */
const COUNTED_STATUSES = ['queued', 'processing', 'completed', 'failed', 'timed_out'] as const;

export function batchesRouter(ctx: Pick<ServiceContext, 'store'>): Router {
  const router = Router();

  /** A batch's counts per status and a page of its jobs, in request order. */
  router.get('/batches/:batch_id', async (req, res) => {
    const id = idParam(req.params.batch_id);
    if (!id) throw batchNotFound();
    const limit = pageLimit(req.query.limit);
    const after = positionAfter(req.query.cursor);
    const batch = await findBatchForKey(ctx.store.db, id, apiKeyOf(req).id);
    if (!batch) throw batchNotFound();
    const [counts, jobs] = await Promise.all([
      batchStatusCounts(ctx.store.db, id),
      listBatchJobs(ctx.store.db, id, after, limit),
    ]);
    const last = jobs.at(-1);
    res.json({
      success: true,
      data: {
        batch_id: batch.id,
        created_at: batch.created_at.toISOString(),
        total: batch.job_count,
        counts: { ...Object.fromEntries(COUNTED_STATUSES.map((s) => [s, 0])), ...counts },
        jobs: jobs.map((job) => presentJobState(job, job.has_result)),
        next_cursor: jobs.length === limit && last ? cursorAfter(last.position) : null,
      },
    });
  });

  return router;
}

function pageLimit(value: unknown): number {
  if (value === undefined) return DEFAULT_PAGE;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= MAX_PAGE)) throw invalidRequest(`limit: must be a whole number from 1 to ${MAX_PAGE}`);
  return n;
}

/** Cursors are opaque to clients: the position of the last job of the page before. */
const cursorAfter = (position: number) => Buffer.from(`after:${position}`).toString('base64url');

function positionAfter(value: unknown): number {
  if (value === undefined) return -1;
  const decoded = typeof value === 'string' ? Buffer.from(value, 'base64url').toString() : '';
  const match = /^after:(\d{1,9})$/.exec(decoded);
  if (!match) throw invalidRequest('cursor: not a cursor this API gave out (pass next_cursor as it is)');
  return Number(match[1]);
}
