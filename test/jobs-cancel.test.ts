import { randomUUID } from 'node:crypto';
import { startTargetServer, type TargetHandler, type TargetServer } from './helpers/target-server';
import { KEY_B, startTestService, waitForJob, type TestService } from './helpers/service';
import { waitFor } from './helpers/wait';
import { createTestDatabase } from './helpers/database';
import * as m0006 from '../migrations/0006_cancelled_status';
import { migrateToLatest } from '../src/admin/migrate';
import { openStore } from '../src/db/pool';
import { cancelScrapeJob } from '../src/db/scrape-jobs';

const RACE_JOBS = 60;

let service: TestService;
let target: TargetServer;

beforeAll(async () => {
  // One path per job of the race, so the target's hit counts tell which jobs were fetched.
  const quick: TargetHandler = (_req, res) => void setTimeout(() => res.end('ok'), 10);
  const routes = Object.fromEntries(Array.from({ length: RACE_JOBS }, (_, i) => [`/race/${i}`, quick]));
  target = await startTargetServer(routes);
  // A key runs two scrapes at once: a backlog stays queued while the worker claims from it.
  service = await startTestService({ env: { OMNISCRAPE_DEFAULT_CONCURRENCY: '2' } });
});
afterAll(async () => {
  await service?.stop();
  await target?.close();
});

const submit = async (url: string, key?: string) =>
  (await service.call('POST', '/v1/scrape/async', { url }, key)).body.job_id as string;

async function historyRow(jobId: string) {
  const [row] = await service.query(
    `select status, charged::float8 as charged, error_code, started_at is not null as started,
            finished_at is not null as finished
       from omniscrape.scrape_jobs where id = $1`,
    [jobId],
  );
  return row;
}

/** Waits until pg-boss holds no unsettled entry (the job or a retry copy) for these jobs. */
async function queueSettled(jobIds: string[]) {
  await waitFor(
    async () =>
      Number(
        (
          await service.query(
            `select count(*) from pgboss.job
              where name = 'scrape' and data->>'jobId' = any($1) and state not in ('completed', 'cancelled', 'failed')`,
            [jobIds],
          )
        )[0].count,
      ) === 0,
    { what: "pg-boss to settle every job's entry", timeoutMs: 30_000 },
  );
}

describe('DELETE /v1/jobs/{job_id}', () => {
  test('a queued job ends cancelled, uncharged, and answers the job as GET shows it; it is never fetched', async () => {
    const name = `cancel-${randomUUID()}`;
    // Fill key B's two slots so its next job stays queued.
    const blockers = [
      await submit(`${target.origin}/held?name=${name}`, KEY_B),
      await submit(`${target.origin}/held?name=${name}`, KEY_B),
    ];
    await waitFor(() => target.held(name) === 2, { what: 'both blockers to reach the target' });
    const jobId = await submit(`${target.origin}/page?cancelled=1`, KEY_B);

    const res = await service.call('DELETE', `/v1/jobs/${jobId}`, undefined, KEY_B);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      success: true,
      data: {
        job_id: jobId,
        status: 'cancelled',
        url: `${target.origin}/page?cancelled=1`,
        created_at: expect.any(String),
        updated_at: expect.any(String),
        code: 'CANCELLED',
        error: 'The job was cancelled before it started.',
      },
    });
    const get = await service.call('GET', `/v1/jobs/${jobId}`, undefined, KEY_B);
    expect(get.body).toEqual(res.body);
    expect(await historyRow(jobId)).toEqual({
      status: 'cancelled',
      charged: 0,
      error_code: 'CANCELLED',
      started: false,
      finished: true,
    });

    const pageHits = target.hits.get('/page') ?? 0;
    target.release(name);
    for (const id of blockers) await waitForJob(service, id, undefined, undefined, KEY_B);
    await queueSettled([jobId, ...blockers]);
    expect(target.hits.get('/page') ?? 0).toBe(pageHits);
    expect((await service.call('GET', `/v1/jobs/${jobId}`, undefined, KEY_B)).body.data.status).toBe(
      'cancelled',
    );
  });

  test('a processing or finished job answers 409 JOB_NOT_CANCELLABLE with its status, and is left as it was', async () => {
    const name = `busy-${randomUUID()}`;
    const jobId = await submit(`${target.origin}/held?name=${name}`);
    await waitFor(() => target.held(name) === 1, { what: 'the job to reach the target' });

    const processing = await service.call('DELETE', `/v1/jobs/${jobId}`);
    expect(processing.status).toBe(409);
    expect(processing.body).toEqual({
      success: false,
      error: 'This job is processing; only a queued job can be cancelled.',
      code: 'JOB_NOT_CANCELLABLE',
      status: 'processing',
    });

    target.release(name);
    await waitForJob(service, jobId);
    const completed = await service.call('DELETE', `/v1/jobs/${jobId}`);
    expect(completed.status).toBe(409);
    expect(completed.body).toMatchObject({ code: 'JOB_NOT_CANCELLABLE', status: 'completed' });
    expect((await service.call('GET', `/v1/jobs/${jobId}`)).body.data.status).toBe('completed');
  });

  test('a cancelled job cannot be cancelled again', async () => {
    const name = `again-${randomUUID()}`;
    const blockers = [
      await submit(`${target.origin}/held?name=${name}`, KEY_B),
      await submit(`${target.origin}/held?name=${name}`, KEY_B),
    ];
    await waitFor(() => target.held(name) === 2, { what: 'both blockers to reach the target' });
    const jobId = await submit(`${target.origin}/page`, KEY_B);
    expect((await service.call('DELETE', `/v1/jobs/${jobId}`, undefined, KEY_B)).status).toBe(200);
    const again = await service.call('DELETE', `/v1/jobs/${jobId}`, undefined, KEY_B);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'JOB_NOT_CANCELLABLE', status: 'cancelled' });
    target.release(name);
    for (const id of blockers) await waitForJob(service, id, undefined, undefined, KEY_B);
  });

  test("an unknown id, another key's job and a malformed id answer 404 JOB_NOT_FOUND, as GET does", async () => {
    const name = `other-${randomUUID()}`;
    const jobId = await submit(`${target.origin}/held?name=${name}`, KEY_B);
    for (const id of [randomUUID(), jobId, 'not-a-uuid', "1' or '1'='1", 'a'.repeat(500)]) {
      const res = await service.call('DELETE', `/v1/jobs/${encodeURIComponent(id)}`);
      expect(res.status).toBe(404);
      expect(res.body).toEqual({
        success: false,
        error: 'No job with this id exists for this API key.',
        code: 'JOB_NOT_FOUND',
      });
    }
    target.release(name);
    expect((await waitForJob(service, jobId, undefined, undefined, KEY_B)).status).toBe('completed');
  });

  test('a worker racing a cancel: each job ends cancelled and never fetched, or was started and the cancel answered 409', async () => {
    const jobIds: string[] = [];
    for (let i = 0; i < RACE_JOBS; i++) jobIds.push(await submit(`${target.origin}/race/${i}`));
    // Cancel while the worker is claiming from the backlog: the first job has started.
    await waitForJob(service, jobIds[0]!, (d) => d.status !== 'queued');
    const cancels = await Promise.all(jobIds.map((id) => service.call('DELETE', `/v1/jobs/${id}`)));

    await queueSettled(jobIds);
    const outcomes = { cancelled: 0, started: 0 };
    for (const [i, id] of jobIds.entries()) {
      const job = await waitForJob(service, id, (d) => ['completed', 'cancelled'].includes(d.status));
      const hits = target.hits.get(`/race/${i}`) ?? 0;
      const cancel = cancels[i]!;
      if (cancel.status === 200) {
        outcomes.cancelled++;
        expect({ i, status: job.status, hits }).toEqual({ i, status: 'cancelled', hits: 0 });
      } else {
        outcomes.started++;
        expect({ i, code: cancel.status, said: cancel.body.status }).toEqual({
          i,
          code: 409,
          said: expect.stringMatching(/^(processing|completed)$/),
        });
        expect({ i, status: job.status, hits }).toEqual({ i, status: 'completed', hits: 1 });
      }
    }
    expect(outcomes.cancelled).toBeGreaterThan(0);
    expect(outcomes.started).toBeGreaterThan(0);
  });
});

describe('migration 0006', () => {
  test('down ends cancelled jobs failed (CANCELLED kept) and restores the old status check; up allows cancelled again', async () => {
    const database = await createTestDatabase();
    const store = openStore(database.url, { max: 2 });
    try {
      await migrateToLatest(store.db);
      const [{ id: keyId }] = (
        await store.pool.query(
          `insert into omniscrape.api_keys (name, key_hash, key_prefix) values ('k', 'h', 'p') returning id`,
        )
      ).rows;
      const insert = (id: string, status: string) =>
        store.pool.query(
          `insert into omniscrape.scrape_jobs (id, api_key_id, kind, url, host, method, format, timeout_seconds, status)
           values ($1, $2, 'async', 'http://example.com/', 'example.com', 'GET', 'raw', 30, $3)`,
          [id, keyId, status],
        );
      const id = randomUUID();
      await insert(id, 'queued');
      expect(await cancelScrapeJob(store.db, id, keyId)).toMatchObject({ status: 'cancelled' });

      await m0006.down(store.db);
      const [row] = (
        await store.pool.query(`select status, error_code from omniscrape.scrape_jobs where id = $1`, [id])
      ).rows;
      expect(row).toEqual({ status: 'failed', error_code: 'CANCELLED' });
      await expect(insert(randomUUID(), 'cancelled')).rejects.toThrow(/scrape_jobs_status_check/);

      await m0006.up(store.db);
      await insert(randomUUID(), 'cancelled');
    } finally {
      await store.close();
      await database.drop();
    }
  });
});
