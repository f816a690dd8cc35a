import { Router, type Request } from 'express';
import type { z } from 'zod';
import type { jobPage, redeliveryAccepted } from '../contract/responses';
import type { ServiceContext } from '../context';
import { cancelJob } from '../jobs/cancel-job';
import { jobBody } from '../jobs/job-view';
import { listJobs } from '../jobs/list-jobs';
import { redeliverWebhook } from '../jobs/webhook-trigger';
import { JobReads } from '../jobs/job-reads';
import { ownedBy, type JobForOwner } from '../db/statements/find-job-for-key';
import { listWebhookDeliveries } from '../db/webhooks';
import { apiKeyOf } from './auth';
import { jobNotFound } from './errors';
import { holdRequest, type HeldRequest } from './held-request';
import { idParam } from './ids';
import { streamJobEvents } from './job-events';
import { parseJobListQuery } from './job-list-query';
import { ownedJobAfterWait, waitParameter } from './poll-wait';
import { redeliveryThrottle } from './redelivery-throttle';

export function jobsRouter(
  ctx: Pick<
    ServiceContext,
    'config' | 'store' | 'boss' | 'jobWatchers' | 'heldRequests' | 'statusNotices' | 'metrics'
  >,
): Router {
  const router = Router();
  const throttleRedeliveries = redeliveryThrottle(ctx.config.redeliveriesPerMinute);
  const reads = new JobReads(ctx.store.db);

  /**
   * The job `:job_id` names, if it is the requesting key's; else 404. With `wait`, read as a
   * `?wait=` answers it (http/poll-wait.ts).
   */
  const ownedJob = async (
    req: Request<{ job_id: string }>,
    wait?: { ms: number; held: HeldRequest },
  ): Promise<JobForOwner> => {
    // A malformed id cannot name any job: same answer as an unknown one, and no query.
    const id = idParam(req.params.job_id);
    if (!id) throw jobNotFound();
    const apiKeyId = apiKeyOf(req).id;
    const read = () => reads.find(id).then((job) => ownedBy(job, apiKeyId));
    const job =
      wait === undefined
        ? await read()
        : await ownedJobAfterWait(ctx, id, apiKeyId, wait.ms, wait.held, read);
    if (!job) throw jobNotFound();
    return job;
  };

  router.get('/jobs', async (req, res) => {
    const page = await listJobs(ctx.store.db, parseJobListQuery(req.query, apiKeyOf(req).id));
    res.json({ success: true as const, ...page } satisfies z.input<typeof jobPage>);
  });

  router.get('/jobs/:job_id', async (req, res) => {
    const waitMs = waitParameter(req.query);
    if (waitMs === undefined) return void res.type('application/json').send(jobBody(await ownedJob(req)));
    const held = holdRequest(ctx.heldRequests, req, res);
    // A client gone while its key was looked up costs no read.
    if (held.signal.aborted) return;
    const job = await ownedJob(req, { ms: waitMs, held });
    if (held.signal.aborted) return void held.stopAnswer();
    res.type('application/json').send(jobBody(job));
  });

  router.get('/jobs/:job_id/events', async (req, res) => {
    const held = holdRequest(ctx.heldRequests, req, res);
    // A client gone while its key was looked up costs no read.
    if (held.signal.aborted) return;
    const job = await ownedJob(req);
    if (held.signal.aborted) return void held.stopAnswer();
    streamJobEvents(ctx.jobWatchers, req, res, held, job, apiKeyOf(req).id);
  });

  router.delete('/jobs/:job_id', async (req, res) => {
    const id = idParam(req.params.job_id);
    if (!id) throw jobNotFound();
    const job = await cancelJob(ctx, id, apiKeyOf(req).id);
    if (!job) throw jobNotFound();
    res.type('application/json').send(jobBody(job));
  });

  /** The job's webhook delivery attempts, oldest first. */
  router.get('/jobs/:job_id/webhooks', async (req, res) => {
    const job = await ownedJob(req);
    res.json({ success: true, data: await listWebhookDeliveries(ctx.store.db, job.id) });
  });

  router.post('/jobs/:job_id/webhooks/redeliver', async (req, res) => {
    await throttleRedeliveries(apiKeyOf(req).id);
    const job = await ownedJob(req);
    await redeliverWebhook(ctx, job);
    res
      .status(202)
      .json({ success: true as const, job_id: job.id } satisfies z.input<typeof redeliveryAccepted>);
  });

  return router;
}
