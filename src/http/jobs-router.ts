import { Router, type Request } from 'express';
import type { ServiceContext } from '../context';
import { jobBody } from '../jobs/job-view';
import { findJobForKey, type JobForOwner } from '../store/statements/find-job-for-key';
import { apiKeyOf } from './auth';
import { jobNotFound } from './errors';
import { streamJobEvents } from './job-events';
import { jobAfterWait, waitParameter } from './job-wait';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function jobsRouter(ctx: Pick<ServiceContext, 'store' | 'jobWatchers'>): Router {
  const router = Router();

  /** The job `:job_id` names, if it is the requesting key's; else 404. */
  const ownedJob = async (req: Request<{ job_id: string }>): Promise<JobForOwner> => {
    const id = req.params.job_id;
    // A malformed id cannot name any job: same answer as an unknown one, and no query.
    if (!UUID.test(id)) throw jobNotFound();
    const job = await findJobForKey(ctx.store.db, id.toLowerCase(), apiKeyOf(req).id);
    if (!job) throw jobNotFound();
    return job;
  };

  router.get('/jobs/:job_id', async (req, res) => {
    const waitMs = waitParameter(req.query);
    const job = await ownedJob(req);
    const answer = waitMs === undefined ? job : await jobAfterWait(ctx, job, apiKeyOf(req).id, waitMs, res);
    res.type('application/json').send(jobBody(answer));
  });

  router.get('/jobs/:job_id/events', async (req, res) => {
    streamJobEvents(ctx.jobWatchers, req, res, await ownedJob(req), apiKeyOf(req).id);
  });

  return router;
}
