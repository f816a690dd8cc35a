import { priorityOf } from '../src/jobs/key-limits';
import { insertApiKey, type KeyLimitSettings } from '../src/store/api-keys';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, waitForJob, type TestService } from './helpers/service';

let service: TestService;
let target: TargetServer;
// Scrapes in flight at the target, per key (the key travels in a header the tests set).
const inFlight = new Map<string, number>();
const maxInFlight = new Map<string, number>();

beforeAll(async () => {
  target = await startTargetServer({
    '/hold': (req, res, url) => {
      const key = String(req.headers['x-test-key'] ?? '');
      inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
      maxInFlight.set(key, Math.max(maxInFlight.get(key) ?? 0, inFlight.get(key)!));
      setTimeout(() => {
        inFlight.set(key, inFlight.get(key)! - 1);
        res.end('held');
      }, Number(url.searchParams.get('ms') ?? 500));
    },
  });
  service = await startTestService({ env: { OMNISCRAPE_WORKER_CONCURRENCY: '20' } });
});
afterAll(async () => {
  await service?.stop();
  await target?.close();
});

let keyCount = 0;
/** A fresh key with the given limits; returns its plain-text secret. */
async function keyWith(limits: KeyLimitSettings): Promise<string> {
  const secret = `limits-test-key-${++keyCount}-${Date.now()}`;
  await insertApiKey(service.running.context.store.db, `limits-${keyCount}-${Date.now()}`, secret, limits);
  return secret;
}

const hold = (tag: string, ms = 500) => ({ url: `${target.origin}/hold?ms=${ms}`, headers: { 'X-Test-Key': tag } });

describe('per-key concurrency', () => {
  test('a sync scrape beyond the key\'s concurrency answers 429 CONCURRENCY_LIMIT with Retry-After', async () => {
    const key = await keyWith({ concurrency: 2 });
    const running = [service.call('POST', '/v1/scrape', hold('sync', 1500), key), service.call('POST', '/v1/scrape', hold('sync', 1500), key)];
    await new Promise((r) => setTimeout(r, 300));
    const refused = await service.call('POST', '/v1/scrape', hold('sync'), key);
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ success: false, error: expect.stringContaining('2'), code: 'CONCURRENCY_LIMIT' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    for (const res of await Promise.all(running)) expect(res.status).toBe(200);
    // Slots are given back: the key can scrape again.
    expect((await service.call('POST', '/v1/scrape', hold('sync', 10), key)).status).toBe(200);
  });

  test('async jobs beyond the limit wait their turn: never more than the limit in flight, all complete', async () => {
    const key = await keyWith({ concurrency: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await service.call('POST', '/v1/scrape/async', hold('async-2', 400), key)).body.job_id);
    for (const id of ids) expect((await waitForJob(service, id, undefined, 30_000, key)).status).toBe('completed');
    expect(maxInFlight.get('async-2')).toBe(2);
  });

  test('sync and async scrapes share one limit', async () => {
    const key = await keyWith({ concurrency: 2 });
    const a = await service.call('POST', '/v1/scrape/async', hold('shared', 2000), key);
    const b = await service.call('POST', '/v1/scrape/async', hold('shared', 2000), key);
    await waitForJob(service, a.body.job_id, (d) => d.status === 'processing', 10_000, key);
    await waitForJob(service, b.body.job_id, (d) => d.status === 'processing', 10_000, key);
    const sync = await service.call('POST', '/v1/scrape', hold('shared'), key);
    expect(sync.status).toBe(429);
    expect(sync.body.code).toBe('CONCURRENCY_LIMIT');
  });
});

describe('per-key queue cap and monthly quota', () => {
  test('a job whose worker died stops holding its key\'s slot once its heartbeat is stale', async () => {
    const key = await keyWith({ concurrency: 1 });
    const [{ id: keyId }] = await service.query('select id from omniscrape.api_keys where key_hash = encode(sha256($1::bytea), \'hex\')', [key]);
    // What a SIGKILLed worker leaves behind: its job still `processing`, its heartbeat a minute old.
    await service.query(
      `insert into omniscrape.scrape_jobs (id, api_key_id, kind, url, host, method, format, timeout_seconds, status, attempts, started_at, heartbeat_at)
       values (gen_random_uuid(), $1, 'async', 'http://127.0.0.1/dead', '127.0.0.1', 'GET', 'raw', 30, 'processing', 1, now() - interval '1 minute', now() - interval '1 minute')`,
      [keyId],
    );
    expect((await service.call('POST', '/v1/scrape', hold('after-crash-sync', 10), key)).status).toBe(200);
    const submitted = await service.call('POST', '/v1/scrape/async', hold('after-crash-async', 10), key);
    expect((await waitForJob(service, submitted.body.job_id, undefined, 10_000, key)).status).toBe('completed');
    // A live async job (fresh heartbeat) still holds the slot.
    await service.query(`update omniscrape.scrape_jobs set heartbeat_at = now() where api_key_id = $1 and url = 'http://127.0.0.1/dead'`, [keyId]);
    expect((await service.call('POST', '/v1/scrape', hold('after-crash-sync', 10), key)).status).toBe(429);
  });

  test('submitting beyond the key\'s queued-job cap answers 429 TOO_MANY_QUEUED_JOBS', async () => {
    const key = await keyWith({ concurrency: 1, maxQueued: 3 });
    const first = await service.call('POST', '/v1/scrape/async', hold('queued', 3000), key);
    await waitForJob(service, first.body.job_id, (d) => d.status === 'processing', 10_000, key);
    for (let i = 0; i < 3; i++) expect((await service.call('POST', '/v1/scrape/async', hold('queued', 10), key)).status).toBe(202);
    const refused = await service.call('POST', '/v1/scrape/async', hold('queued', 10), key);
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ success: false, error: expect.any(String), code: 'TOO_MANY_QUEUED_JOBS' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  test('after its monthly quota of successful scrapes a key gets 402 MONTHLY_QUOTA_EXCEEDED; failures do not count', async () => {
    const key = await keyWith({ monthlyQuota: 2 });
    expect((await service.call('POST', '/v1/scrape', { url: `${target.origin}/plain` }, key)).status).toBe(200);
    expect((await service.call('POST', '/v1/scrape', { url: `${target.origin}/loop` }, key)).status).toBe(502); // failed: not counted
    const job = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/plain` }, key);
    expect((await waitForJob(service, job.body.job_id, undefined, 10_000, key)).status).toBe('completed');
    for (const path of ['/v1/scrape', '/v1/scrape/async']) {
      const refused = await service.call('POST', path, { url: `${target.origin}/plain` }, key);
      expect(refused.status).toBe(402);
      expect(refused.body).toEqual({ success: false, error: expect.stringContaining('2'), code: 'MONTHLY_QUOTA_EXCEEDED' });
    }
  });
});

describe('queue order between keys', () => {
  test("a key's queued jobs are served in rounds of its concurrency: its backlog sorts behind other keys' first round", () => {
    const limits = { concurrency: 3, maxQueued: 100, monthlyQuota: undefined, customConcurrency: true };
    // pg-boss fetches higher priorities first, oldest first within one.
    expect([0, 1, 2, 3, 5, 6, 29].map((ahead) => priorityOf(ahead, limits))).toEqual([0, 0, 0, -1, -1, -2, -9]);
  });
});
