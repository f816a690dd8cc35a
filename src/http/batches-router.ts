import { Router, type Request } from 'express';
import type { ServiceContext } from '../context';
import { presentJobState } from '../jobs/job-view';
import { enqueueWebhooksOf } from '../jobs/webhook-trigger';
import {
  batchProgress,
  cancelBatchJobs,
  findBatchForKey,
  listBatchJobs,
  type BatchForOwner,
} from '../store/batches';
import { batchSummary, streamBatchEvents } from './batch-events';
import { apiKeyOf } from './auth';
import { batchNotFound, invalidRequest } from './errors';
import { idParam } from './ids';

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

export function batchesRouter(
  ctx: Pick<ServiceContext, 'store' | 'boss' | 'jobWatchers' | 'statusNotices' | 'logger'>,
): Router {
  const router = Router();

  /** The batch `:batch_id` names, if it is the requesting key's; else 404. */
  const ownedBatch = async (req: Request<{ batch_id: string }>): Promise<BatchForOwner> => {
    const id = idParam(req.params.batch_id);
    if (!id) throw batchNotFound();
    const batch = await findBatchForKey(ctx.store.db, id, apiKeyOf(req).id);
    if (!batch) throw batchNotFound();
    return batch;
  };

  /** A batch's counts per status and a page of its jobs, in request order. */
  router.get('/batches/:batch_id', async (req, res) => {
    const limit = pageLimit(req.query.limit);
    const after = positionAfter(req.query.cursor);
    const batch = await ownedBatch(req);
    const [progress, jobs] = await Promise.all([
      batchProgress(ctx.store.db, batch.id),
      listBatchJobs(ctx.store.db, batch.id, after, limit),
    ]);
    const last = jobs.at(-1);
    res.json({
      success: true,
      data: {
        ...batchSummary(batch, progress),
        jobs: jobs.map((job) => presentJobState(job, job.has_result)),
        next_cursor: jobs.length === limit && last ? cursorAfter(last.position) : null,
      },
    });
  });

  router.get('/batches/:batch_id/events', async (req, res) => {
    const batch = await ownedBatch(req);
    await streamBatchEvents(
      { db: ctx.store.db, jobWatchers: ctx.jobWatchers, logger: ctx.logger },
      req,
      res,
      batch,
    );
  });

  /** Cancels the batch's queued jobs; those already started or ended go on as they are. */
  router.delete('/batches/:batch_id', async (req, res) => {
    const batch = await ownedBatch(req);
    const cancelled = await cancelBatchJobs(ctx.store.db, batch.id, apiKeyOf(req).id);
    ctx.statusNotices.announce(cancelled);
    await enqueueWebhooksOf(ctx, cancelled);
    res.json({ success: true, batch_id: batch.id, cancelled: cancelled.length });
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
