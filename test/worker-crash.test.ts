import { waitFor } from './helpers/wait';
import { once } from 'node:events';
import { spawnCli } from './helpers/cli';
import { startDisposablePostgres } from './helpers/postgres-server';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, waitForJob, type TestService } from './helpers/service';

// On a Postgres of its own with durable settings (fsync, synchronous_commit on), as in production.
let postgres: Awaited<ReturnType<typeof startDisposablePostgres>>;
let api: TestService;
let rescuer: TestService | undefined;
let target: TargetServer;

// The first request hangs (the worker holding it will be killed); later ones answer at once.
let hangingHits = 0;

beforeAll(async () => {
  target = await startTargetServer({
    '/hang-once': (_req, res) => {
      hangingHits++;
      if (hangingHits === 1) return; // never answered
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('answered on a later attempt');
    },
  });
  postgres = await startDisposablePostgres({ durable: true });
  api = await startTestService({ databaseUrl: postgres.url, roles: { api: true, worker: false } });
});
afterAll(async () => {
  await rescuer?.stop();
  await api?.stop();
  await postgres?.destroy();
  await target?.close();
});

describe('a worker killed mid-job', () => {
  test('its job is taken over by another worker within 30 s, finishes once, and never stays processing', async () => {
    const worker = spawnCli(['worker'], {
      DATABASE_URL: api.databaseUrl,
      OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'true',
      OMNISCRAPE_WORKER_CONCURRENCY: '2',
    });
    try {
      const submitted = await api.call('POST', '/v1/scrape/async', {
        url: `${target.origin}/hang-once`,
        timeout: 120,
      });
      await waitForJob(api, submitted.body.job_id, (d) => d.status === 'processing', 20_000);
      await waitFor(() => hangingHits > 0, { what: 'the worker to reach the hanging page' });
      expect(hangingHits).toBe(1);

      worker.kill('SIGKILL');
      await once(worker, 'exit');
      const killedAt = Date.now();

      rescuer = await startTestService({ databaseUrl: api.databaseUrl, roles: { api: false, worker: true } });
      const job = await waitForJob(api, submitted.body.job_id, undefined, 30_000);
      expect(Date.now() - killedAt).toBeLessThan(30_000);
      expect(job.status).toBe('completed');
      expect(job.result.data.content).toBe('answered on a later attempt');

      expect(
        await api.query('select status, attempts from omniscrape.scrape_jobs where id = $1', [job.job_id]),
      ).toEqual([{ status: 'completed', attempts: 2 }]);
      expect(
        await api.query('select count(*)::int as n from omniscrape.job_results where job_id = $1', [
          job.job_id,
        ]),
      ).toEqual([{ n: 1 }]);
    } finally {
      if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
    }
  });
});
