import { once } from 'node:events';
import { spawnCli } from './helpers/cli';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, waitForJob, type TestService } from './helpers/service';

let api: TestService;
let target: TargetServer;
let hangs = 0;

beforeAll(async () => {
  target = await startTargetServer({
    // Answers after 2 s: finishes inside a generous grace period.
    '/two-seconds': (_req, res) => {
      setTimeout(() => res.end('done in two seconds'), 2000);
    },
    // Never answers the first time; answers at once after that.
    '/hang-first': (_req, res) => {
      if (++hangs === 1) return;
      res.end('answered after hand-back');
    },
  });
  api = await startTestService({ roles: { api: true, worker: false } });
});
afterAll(async () => {
  await api?.stop();
  await target?.close();
});

function startWorker(graceSeconds: number) {
  const child = spawnCli(['worker'], {
    DATABASE_URL: api.databaseUrl,
    OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'true',
    OMNISCRAPE_SHUTDOWN_GRACE_SECONDS: String(graceSeconds),
    OMNISCRAPE_LOG_LEVEL: 'info',
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  return { child, output: () => output };
}

async function untilProcessing(jobId: string) {
  return waitForJob(api, jobId, (d) => d.status === 'processing', 20_000);
}

describe('SIGTERM to a worker', () => {
  test('in-flight scrapes finish within the grace period, then the process exits 0', async () => {
    const { child, output } = startWorker(20);
    try {
      const submitted = await api.call('POST', '/v1/scrape/async', { url: `${target.origin}/two-seconds` });
      await untilProcessing(submitted.body.job_id);
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      expect({ code, output: output() }).toMatchObject({ code: 0 });
      // The job had finished before the process exited: nothing else ran it.
      const job = await api.call('GET', `/v1/jobs/${submitted.body.job_id}`);
      expect(job.body.data.status).toBe('completed');
      expect(job.body.data.result.data.content).toBe('done in two seconds');
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('a scrape still running when the grace period ends is handed back, never failed, and another worker finishes it', async () => {
    const { child, output } = startWorker(1);
    let rescuer: TestService | undefined;
    try {
      const submitted = await api.call('POST', '/v1/scrape/async', {
        url: `${target.origin}/hang-first`,
        timeout: 120,
      });
      const jobId = submitted.body.job_id;
      await untilProcessing(jobId);
      const stopAsked = Date.now();
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      expect({ code, output: output() }).toMatchObject({ code: 0 });
      expect(Date.now() - stopAsked).toBeLessThan(10_000);
      expect(output()).toContain('handed back an unfinished job');

      const handedBack = await api.call('GET', `/v1/jobs/${jobId}`);
      expect(handedBack.body.data.status).toBe('queued');

      rescuer = await startTestService({ databaseUrl: api.databaseUrl, roles: { api: false, worker: true } });
      const job = await waitForJob(api, jobId);
      expect(job.status).toBe('completed');
      expect(job.result.data.content).toBe('answered after hand-back');
      expect(await api.query('select attempts from omniscrape.scrape_jobs where id = $1', [jobId])).toEqual([
        { attempts: 1 },
      ]);
    } finally {
      child.kill('SIGKILL');
      await rescuer?.stop();
    }
  });
});
