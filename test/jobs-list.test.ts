import { randomUUID } from 'node:crypto';
import { isTerminal, JOB_STATUSES } from '../src/contract/errors';
import { KEY_B, startTestService, type TestService } from './helpers/service';

let service: TestService;
let keyA: string;

beforeAll(async () => {
  // No worker: submitted jobs stay queued, and rows inserted here keep the status they are given.
  service = await startTestService({ roles: { api: true, worker: false } });
  [{ id: keyA }] = await service.query(`select id from omniscrape.api_keys where name = 'alpha'`);
});
afterAll(async () => {
  await service?.stop();
});

/** Inserts history rows of key A (or `keyId`), one per entry, and returns their ids in that order. */
async function insertJobs(
  rows: { created_at: string; status?: string; error_code?: string; result_expires_at?: string }[],
  keyId = keyA,
): Promise<string[]> {
  const ids = rows.map(() => randomUUID());
  await service.query(
    `insert into omniscrape.scrape_jobs
       (id, api_key_id, kind, url, host, method, format, timeout_seconds, status, error_code, error_message,
        created_at, updated_at, result_expires_at)
     select id, $2, 'async', 'http://example.com/' || id, 'example.com', 'GET', 'raw', 30, status,
            nullif(error_code, ''), case when error_code <> '' then 'it went wrong' end,
            created_at, created_at, result_expires_at
       from unnest($1::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::timestamptz[])
            as r(id, status, created_at, error_code, result_expires_at)`,
    [
      ids,
      keyId,
      rows.map((r) => r.status ?? 'completed'),
      rows.map((r) => r.created_at),
      rows.map((r) => r.error_code ?? ''),
      rows.map((r) => r.result_expires_at ?? null),
    ],
  );
  return ids;
}

const list = async (query: string, key?: string) => service.call('GET', `/v1/jobs${query}`, undefined, key);

/** Every page of a listing, following next_cursor; `between` runs after each page. */
async function allPages(query: string, between: () => Promise<unknown> = async () => {}) {
  const seen: any[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 1000; pages++) {
    const res = await list(query + (cursor ? `&cursor=${cursor}` : ''));
    expect(res.status).toBe(200);
    seen.push(...res.body.data);
    cursor = res.body.next_cursor;
    if (cursor === null) return seen;
    await between();
  }
  throw new Error('too many pages');
}

/** A window of time no other test writes in: the year 2000 + n. */
const year = (n: number) => ({
  at: (second: number, micros = 0) =>
    `${2000 + n}-06-01T00:00:${String(second).padStart(2, '0')}.${String(micros).padStart(6, '0')}Z`,
  query: `?since=${2000 + n}-01-01T00:00:00Z&until=${2001 + n}-01-01T00:00:00Z`,
});

describe('GET /v1/jobs', () => {
  test("answers the key's jobs newest first, without results, paged by next_cursor until it is null", async () => {
    const w = year(1);
    const ids = await insertJobs(Array.from({ length: 25 }, (_, i) => ({ created_at: w.at(i) })));
    const first = await list(`${w.query}&limit=10`);
    expect(first.status).toBe(200);
    expect(Object.keys(first.body)).toEqual(['success', 'data', 'next_cursor']);
    expect(first.body.success).toBe(true);
    expect(first.body.data).toHaveLength(10);
    expect(first.body.data[0]).toEqual({
      job_id: ids[24],
      status: 'completed',
      url: `http://example.com/${ids[24]}`,
      created_at: '2001-06-01T00:00:24.000Z',
      updated_at: '2001-06-01T00:00:24.000Z',
      code: 'RESULT_EXPIRED',
      error: 'The result of this job has expired and was purged; the job history is kept.',
    });
    expect(typeof first.body.next_cursor).toBe('string');
    const all = await allPages(`${w.query}&limit=10`);
    expect(all.map((j) => j.job_id)).toEqual([...ids].reverse());
  });

  test('the default page is 100 jobs and a page holds at most 1,000', async () => {
    const w = year(2);
    await insertJobs(Array.from({ length: 1005 }, (_, i) => ({ created_at: w.at(i % 60, i) })));
    expect((await list(w.query)).body.data).toHaveLength(100);
    const max = await list(`${w.query}&limit=1000`);
    expect(max.body.data).toHaveLength(1000);
    const rest = await list(`${w.query}&limit=1000&cursor=${max.body.next_cursor}`);
    expect(rest.body).toMatchObject({ next_cursor: null });
    expect(rest.body.data).toHaveLength(5);
  });

  test('jobs created in the same microsecond are each listed once, ordered by id', async () => {
    const w = year(3);
    const ids = await insertJobs(Array.from({ length: 9 }, () => ({ created_at: w.at(1, 7) })));
    const all = await allPages(`${w.query}&limit=2`);
    expect(all.map((j) => j.job_id)).toEqual([...ids].sort().reverse());
  });

  test('paging is stable under concurrent inserts: every job once, and newer jobs never shift a page', async () => {
    const since = new Date().toISOString();
    const submit = () =>
      service.call('POST', '/v1/scrape/async', { url: 'http://example.com/' }).then((r) => r.body.job_id);
    const before: string[] = [];
    for (let i = 0; i < 30; i++) before.push(await submit());
    const added: string[] = [];
    const listed = await allPages(`?since=${since}&status=queued&limit=7`, async () => {
      for (let i = 0; i < 5; i++) added.push(await submit());
    });
    expect(new Set(listed.map((j) => j.job_id))).toEqual(new Set(before));
    expect(listed).toHaveLength(before.length);
    const now = await allPages(`?since=${since}&status=queued&limit=1000`);
    expect(now.map((j) => j.job_id).sort()).toEqual([...before, ...added].sort());
  });

  test('status (one or a comma-separated list), since and until filter the list', async () => {
    const w = year(4);
    const statuses = JOB_STATUSES;
    const ids = await insertJobs(
      statuses.map((status, i) => ({
        created_at: w.at(i),
        status,
        ...(isTerminal(status) && status !== 'completed' ? { error_code: status.toUpperCase() } : {}),
        ...(status === 'completed' ? { result_expires_at: '2999-01-01T00:00:00Z' } : {}),
      })),
    );
    const failed = await list(`${w.query}&status=failed`);
    expect(failed.body.data).toEqual([
      expect.objectContaining({ job_id: ids[3], code: 'FAILED', error: 'it went wrong' }),
    ]);
    const done = await list(`${w.query}&status=completed,cancelled`);
    expect(done.body.data.map((j: any) => j.job_id)).toEqual([ids[5], ids[2]]);
    // A completed job whose result is kept lists without a code; GET gives its result.
    expect(done.body.data[1].code).toBeUndefined();
    expect(done.body.data[0]).toMatchObject({ status: 'cancelled', code: 'CANCELLED' });
    const window = await list(`?since=${w.at(1)}&until=${w.at(3)}`);
    expect(window.body.data.map((j: any) => j.job_id)).toEqual([ids[2], ids[1]]);
  });

  test("another key never sees the key's jobs, not even with its cursor", async () => {
    const w = year(5);
    await insertJobs(Array.from({ length: 5 }, (_, i) => ({ created_at: w.at(i) })));
    const [bJob] = await insertJobs(
      [{ created_at: w.at(0) }],
      (await service.query(`select id from omniscrape.api_keys where name = 'bravo'`))[0].id,
    );
    const a = await list(`${w.query}&limit=2`);
    const b = await list(`${w.query}&limit=2&cursor=${a.body.next_cursor}`, KEY_B);
    expect(b.body).toEqual({
      success: true,
      data: [expect.objectContaining({ job_id: bJob })],
      next_cursor: null,
    });
    expect((await list(w.query, KEY_B)).body.data.map((j: any) => j.job_id)).toEqual([bJob]);
  });

  test.each([
    ['status=done', 'status'],
    ['status=queued,', 'status'],
    ['status=', 'status'],
    ['since=yesterday', 'since'],
    ['since=2026-13-45T00:00:00Z', 'since'],
    ['until=1700000000', 'until'],
    ['until=2026-11-30T08:00:00', 'until'],
    ['cursor=abc', 'cursor'],
    ['cursor=' + Buffer.from('2026-11-30T08:00:00.000000Z|x').toString('base64url'), 'cursor'],
    ['cursor=%2F%2F', 'cursor'],
    ['cursor=' + Buffer.from(`2026-02-30T00:00:00.000000Z|${randomUUID()}`).toString('base64url'), 'cursor'],
    ['cursor=' + Buffer.from(`0000-01-01T00:00:00.000000Z|${randomUUID()}`).toString('base64url'), 'cursor'],
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['limit=ten', 'limit'],
    ['limit=1.5', 'limit'],
    ['limit=-1', 'limit'],
    ['limit=1&limit=2', 'limit'],
    ['page=2', 'page'],
  ])('a bad query (%s) answers 400 INVALID_REQUEST naming %s', async (query, name) => {
    const res = await list(`?${query}`);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      success: false,
      error: expect.stringContaining(name),
      code: 'INVALID_REQUEST',
    });
    expect(res.body.error.startsWith(name) || res.body.error.startsWith('unknown parameter')).toBe(true);
  });
});
