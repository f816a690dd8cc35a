import { Router } from 'express';
import type { ServiceContext } from '../context';
import { jobBody } from '../jobs/job-view';
import { findJobForKey } from '../store/statements/find-job-for-key';
import { apiKeyOf } from './auth';
import { jobNotFound } from './errors';
import { jobAfterWait, waitParameter } from './job-wait';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function jobsRouter(ctx: Pick<ServiceContext, 'store' | 'jobWatchers'>): Router {
  const router = Router();

  router.get('/jobs/:job_id', async (req, res) => {
    const id = req.params.job_id;
    // A malformed id cannot name any job: same answer as an unknown one, and no query.
    const waitMs = waitParameter(req.query);
    if (!UUID.test(id)) throw jobNotFound();
    const apiKeyId = apiKeyOf(req).id;
    const job = await findJobForKey(ctx.store.db, id.toLowerCase(), apiKeyId);
    if (!job) throw jobNotFound();
    const answer = waitMs === undefined ? job : await jobAfterWait(ctx, job, apiKeyId, waitMs, res);
    res.type('application/json').send(jobBody(answer));
  });

  return router;
}
