import { KeyRounds } from '../src/jobs/key-limits';
import { queueHeadRound } from '../src/db/key-limits-queries';
import { insertApiKey, type KeyLimitSettings } from '../src/db/api-keys';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, waitForJob, type TestService } from './helpers/service';
import { waitFor } from './helpers/wait';

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
      setTimeout(
        () => {
          inFlight.set(key, inFlight.get(key)! - 1);
          res.end('held');
        },
        Number(url.searchParams.get('ms') ?? 500),
      );
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

const hold = (tag: string, ms = 500) => ({
  url: `${target.origin}/hold?ms=${ms}`,
  headers: { 'X-Test-Key': tag },
});

describe('per-key concurrency', () => {
  test("a sync scrape beyond the key's concurrency answers 429 CONCURRENCY_LIMIT with Retry-After", async () => {
    const key = await keyWith({ concurrency: 2 });
    const held = { url: `${target.origin}/held?name=sync-limit` };
    const running = [
      service.call('POST', '/v1/scrape', held, key),
      service.call('POST', '/v1/scrape', held, key),
    ];
    await waitFor(() => target.held('sync-limit') === 2, { what: 'both sync scrapes at the target' });
    const refused = await service.call('POST', '/v1/scrape', hold('sync'), key);
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({
      success: false,
      error: expect.stringContaining('2'),
      code: 'CONCURRENCY_LIMIT',
    });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    target.release('sync-limit');
    for (const res of await Promise.all(running)) expect(res.status).toBe(200);
    // Slots are given back: the key can scrape again.
    expect((await service.call('POST', '/v1/scrape', hold('sync', 10), key)).status).toBe(200);
  });

  test('async jobs beyond the limit wait their turn: never more than the limit in flight, all complete', async () => {
    const key = await keyWith({ concurrency: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++)
      ids.push((await service.call('POST', '/v1/scrape/async', hold('async-2', 400), key)).body.job_id);
    for (const id of ids)
      expect((await waitForJob(service, id, undefined, 30_000, key)).status).toBe('completed');
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

  test("a job put back because sync scrapes fill its key keeps its place in the key's rounds", async () => {
    const key = await keyWith({ concurrency: 1 });
    const sync = service.call('POST', '/v1/scrape', { url: `${target.origin}/held?name=putback` }, key);
    await waitFor(() => target.held('putback') === 1, { what: "the sync scrape holding the key's one slot" });
    const first = await service.call('POST', '/v1/scrape/async', hold('putback', 10), key);
    const second = await service.call('POST', '/v1/scrape/async', hold('putback', 10), key);
    // Claimed, found busy, put back as a copy (while the sync scrape still holds the slot).
    const rows = await waitFor(
      async () => {
        const rows = await service.query(
          `select data->>'jobId' as job_id, id::text = data->>'jobId' as original, priority from pgboss.job
            where name = 'scrape' and data->>'jobId' = any($1::text[])`,
          [[first.body.job_id, second.body.job_id]],
        );
        return rows.some((r) => !r.original) && rows;
      },
      { what: 'a job put back as a copy' },
    );
    const copies = rows.filter((r) => !r.original);
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      const original = rows.find((r) => r.original && r.job_id === copy.job_id);
      expect(copy.priority).toBe(original.priority);
    }
    expect(new Set(rows.map((r) => r.priority)).size).toBe(2); // two rounds: the second job is one behind
    target.release('putback');
    expect((await sync).status).toBe(200);
    for (const job of [first, second])
      expect((await waitForJob(service, job.body.job_id, undefined, 15_000, key)).status).toBe('completed');
  }, 30_000);
});

describe('per-key queue cap and monthly quota', () => {
  test("a job whose worker died stops holding its key's slot once its heartbeat is stale", async () => {
    const key = await keyWith({ concurrency: 1 });
    const [{ id: keyId }] = await service.query(
      "select id from omniscrape.api_keys where key_hash = encode(sha256($1::bytea), 'hex')",
      [key],
    );
    // What a SIGKILLed worker leaves behind: its job still `processing`, its heartbeat a minute old.
    await service.query(
      `insert into omniscrape.scrape_jobs (id, api_key_id, kind, url, host, method, format, timeout_seconds, status, attempts, started_at, heartbeat_at)
       values (gen_random_uuid(), $1, 'async', 'http://127.0.0.1/dead', '127.0.0.1', 'GET', 'raw', 30, 'processing', 1, now() - interval '1 minute', now() - interval '1 minute')`,
      [keyId],
    );
    expect((await service.call('POST', '/v1/scrape', hold('after-crash-sync', 10), key)).status).toBe(200);
    const submitted = await service.call('POST', '/v1/scrape/async', hold('after-crash-async', 10), key);
    expect((await waitForJob(service, submitted.body.job_id, undefined, 10_000, key)).status).toBe(
      'completed',
    );
    // A live async job (fresh heartbeat) still holds the slot.
    await service.query(
      `update omniscrape.scrape_jobs set heartbeat_at = now() where api_key_id = $1 and url = 'http://127.0.0.1/dead'`,
      [keyId],
    );
    expect((await service.call('POST', '/v1/scrape', hold('after-crash-sync', 10), key)).status).toBe(429);
  });

  test("submitting beyond the key's queued-job cap answers 429 TOO_MANY_QUEUED_JOBS", async () => {
    const key = await keyWith({ concurrency: 1, maxQueued: 3 });
    const first = await service.call('POST', '/v1/scrape/async', hold('queued', 3000), key);
    await waitForJob(service, first.body.job_id, (d) => d.status === 'processing', 10_000, key);
    for (let i = 0; i < 3; i++)
      expect((await service.call('POST', '/v1/scrape/async', hold('queued', 10), key)).status).toBe(202);
    const refused = await service.call('POST', '/v1/scrape/async', hold('queued', 10), key);
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ success: false, error: expect.any(String), code: 'TOO_MANY_QUEUED_JOBS' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  test('after its monthly quota of successful scrapes a key gets 402 MONTHLY_QUOTA_EXCEEDED; failures do not count', async () => {
    const key = await keyWith({ monthlyQuota: 2 });
    expect((await service.call('POST', '/v1/scrape', { url: `${target.origin}/plain` }, key)).status).toBe(
      200,
    );
    expect((await service.call('POST', '/v1/scrape', { url: `${target.origin}/loop` }, key)).status).toBe(
      502,
    ); // failed: not counted
    const job = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/plain` }, key);
    expect((await waitForJob(service, job.body.job_id, undefined, 10_000, key)).status).toBe('completed');
    for (const path of ['/v1/scrape', '/v1/scrape/async']) {
      const refused = await service.call('POST', path, { url: `${target.origin}/plain` }, key);
      expect(refused.status).toBe(402);
      expect(refused.body).toEqual({
        success: false,
        error: expect.stringContaining('2'),
        code: 'MONTHLY_QUOTA_EXCEEDED',
      });
    }
  });
});

describe('queue order between keys', () => {
  /** Rounds over a queue whose head the test sets; read on every submission. */
  function roundsWithHead() {
    const queue = { head: 0 as number | null };
    const rounds = new KeyRounds(async () => queue.head, 0);
    const submit = (key: string, concurrency: number, n: number) =>
      Promise.all(Array.from({ length: n }, () => rounds.priorityOf(key, concurrency)));
    return { queue, submit };
  }

  test("a key's jobs are queued in rounds of its concurrency (pg-boss priority minus the round)", async () => {
    const { submit } = roundsWithHead();
    expect(await submit('a', 3, 7)).toEqual([0, 0, 0, -1, -1, -1, -2]);
  });

  test("a newcomer starts in the round being served: ahead of another key's backlog, never ahead of the head", async () => {
    const { queue, submit } = roundsWithHead();
    await submit('a', 1, 100); // rounds 0..99
    queue.head = 40; // 40 of them started
    expect(await submit('b', 2, 4)).toEqual([-40, -40, -41, -41]);
  });

  test("first in, first out within a key: as its backlog drains, a key's later jobs never sort ahead of its earlier ones", async () => {
    const { queue, submit } = roundsWithHead();
    const first = await submit('a', 2, 10); // rounds 0..4
    queue.head = 3; // two rounds of it still queued, with jobs at -3 and -4
    const later = await submit('a', 2, 2);
    expect(Math.max(...later)).toBeLessThanOrEqual(Math.min(...first));
    expect(later).toEqual([-5, -5]);
  });

  test('once the queue is empty, rounds start again from 0', async () => {
    const { queue, submit } = roundsWithHead();
    await submit('a', 1, 5);
    queue.head = null;
    expect(await submit('a', 1, 2)).toEqual([0, -1]);
  });

  test('the head only moves forward (a lower one comes from a job queued with an older head)', async () => {
    const { queue, submit } = roundsWithHead();
    queue.head = 10;
    expect(await submit('a', 5, 1)).toEqual([-10]);
    queue.head = 7;
    expect(await submit('b', 5, 1)).toEqual([-10]);
  });

  test("the queue's head round is read from pg-boss: minus the highest waiting priority, null when nothing waits", async () => {
    const { boss, store } = service.running.context;
    const queue = `rounds-head-${Date.now()}`;
    await boss.createQueue(queue);
    expect(await queueHeadRound(store.db, 'pgboss', queue)).toBeNull();
    await boss.insert(queue, [
      { data: {}, priority: -7 },
      { data: {}, priority: -3 },
      { data: {}, priority: -9 },
    ]);
    expect(await queueHeadRound(store.db, 'pgboss', queue)).toBe(3);
    await boss.deleteQueue(queue);
  });
});
