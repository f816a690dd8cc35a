import { Router, type Request } from 'express';
import { z } from 'zod';
import type { batchAnswer, batchCancelled } from '../contract/responses';
import { batchPageQuery as batchPageQueryContract } from '../contract/requests';
import type { ServiceContext } from '../context';
import { cancelBatch } from '../jobs/cancel-job';
import { presentJobState } from '../jobs/job-view';
import { batchProgress, findBatchForKey, listBatchJobs, type BatchForOwner } from '../db/batches';
import { batchSummary, streamBatchEvents } from './batch-events';
import { apiKeyOf } from './auth';
import { batchNotFound } from './errors';
import { holdRequest } from './held-request';
import { idParam } from './ids';
import { parseQuery } from './query';

export function batchesRouter(
  ctx: Pick<
    ServiceContext,
    'store' | 'boss' | 'jobWatchers' | 'heldRequests' | 'batchProgress' | 'statusNotices' | 'metrics'
  >,
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
    const { limit, cursor: after } = parseQuery(batchPageQuery, req.query);
    const batch = await ownedBatch(req);
    const [progress, jobs] = await Promise.all([
      batchProgress(ctx.store.db, batch.id),
      listBatchJobs(ctx.store.db, batch.id, after, limit),
    ]);
    const last = jobs.at(-1);
    res.json({
      success: true as const,
      data: {
        ...batchSummary(batch, progress),
        jobs: jobs.map((job) => presentJobState(job, job.has_result)),
        next_cursor: jobs.length === limit && last ? cursorAfter(last.position) : null,
      },
    } satisfies z.input<typeof batchAnswer>);
  });

  router.get('/batches/:batch_id/events', async (req, res) => {
    const held = holdRequest(ctx.heldRequests, req, res);
    // A client gone while its key was looked up costs no read.
    if (held.signal.aborted) return;
    const batch = await ownedBatch(req);
    if (held.signal.aborted) return void held.stopAnswer();
    await streamBatchEvents(ctx, req, res, held, batch);
  });

  /** Cancels the batch's queued jobs; those already started or ended go on as they are. */
  router.delete('/batches/:batch_id', async (req, res) => {
    const batch = await ownedBatch(req);
    const cancelled = await cancelBatch(ctx, batch.id, apiKeyOf(req).id);
    const body: z.input<typeof batchCancelled> = {
      success: true,
      batch_id: batch.id,
      cancelled: cancelled.length,
    };
    res.json(body);
  });

  return router;
}

/** Cursors are opaque to clients: the position of the last job of the page before. */
const cursorAfter = (position: number) => Buffer.from(`after:${position}`).toString('base64url');

/** The query of GET /v1/batches/{id}: a page of its jobs. */
const batchPageQuery = batchPageQueryContract.extend({
  cursor: z
    .string()
    .transform((text, ctx) => {
      const match = /^after:(\d{1,9})$/.exec(Buffer.from(text, 'base64url').toString());
      if (!match) {
        ctx.addIssue({
          code: 'custom',
          message: 'not a cursor this API gave out (pass next_cursor as it is)',
        });
        return z.NEVER;
      }
      return Number(match[1]);
    })
    .default(-1),
});
