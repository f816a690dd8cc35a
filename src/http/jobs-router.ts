import { Router } from 'express';
import type { ServiceContext } from '../context';
import { cancelJob } from '../jobs/cancel-job';
import { jobBody } from '../jobs/job-view';
import { listJobs } from '../jobs/list-jobs';
import { findJobForKey } from '../store/statements/find-job-for-key';
import { apiKeyOf } from './auth';
import { jobNotFound } from './errors';
import { idParam } from './ids';
import { parseJobListQuery } from './job-list-query';

export function jobsRouter(ctx: Pick<ServiceContext, 'store'>): Router {
  const router = Router();

  router.get('/jobs', async (req, res) => {
    const page = await listJobs(ctx.store.db, parseJobListQuery(req.query, apiKeyOf(req).id));
    res.json({ success: true, ...page });
  });

  router.get('/jobs/:job_id', async (req, res) => {
    // A malformed id cannot name any job: same answer as an unknown one, and no query.
    const id = idParam(req.params.job_id);
    if (!id) throw jobNotFound();
    const job = await findJobForKey(ctx.store.db, id, apiKeyOf(req).id);
    if (!job) throw jobNotFound();
    res.type('application/json').send(jobBody(job));
  });

  router.delete('/jobs/:job_id', async (req, res) => {
    const id = idParam(req.params.job_id);
    if (!id) throw jobNotFound();
    const job = await cancelJob(ctx.store.db, id, apiKeyOf(req).id);
    if (!job) throw jobNotFound();
    res.type('application/json').send(jobBody(job));
  });

  return router;
}
