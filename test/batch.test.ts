import { randomUUID } from 'node:crypto';
import { insertApiKey } from '../src/db/api-keys';
import { KEY_A, KEY_B, useServiceAndTarget } from './helpers/service';
import { openEventStream } from './helpers/event-stream';
import { waitFor } from './helpers/wait';

// A key may queue 300 jobs here, and a batch may carry 250: both limits are reached in a test.
const env = useServiceAndTarget({
  env: { OMNISCRAPE_DEFAULT_MAX_QUEUED: '300', OMNISCRAPE_MAX_BATCH: '250' },
});

const batchOf = (urls: string[]) => ({ requests: urls.map((url) => ({ url })) });
const distinctUrls = (n: number) => {
  const tag = randomUUID();
  return Array.from({ length: n }, (_, i) => `${env.target.origin}/page?batch=${tag}&i=${i}`);
};
const historyCount = async (prefix: string) =>
  Number(
    (
      await env.service.query('select count(*) as n from omniscrape.scrape_jobs where url like $1', [
        `${prefix}%`,
      ])
    )[0].n,
  );

describe('POST /v1/scrape/batch and GET /v1/batches/{batch_id}', () => {
  test('a batch answers 202 with its id and the job ids in request order, and every job completes', async () => {
    const urls = distinctUrls(60);
    const res = await env.service.call('POST', '/v1/scrape/batch', batchOf(urls));
    expect(res.status).toBe(202);
    expect(res.body).toEqual({
      success: true,
      batch_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      job_ids: expect.any(Array),
      poll: `/v1/batches/${res.body.batch_id}`,
    });
    expect(res.headers.get('location')).toBe(`/v1/batches/${res.body.batch_id}`);
    const ids: string[] = res.body.job_ids;
    expect(new Set(ids).size).toBe(60);
    // Request order: job i scrapes url i.
    const rows = await env.service.query('select id, url from omniscrape.scrape_jobs where id = any($1)', [
      ids,
    ]);
    const urlOf = new Map(rows.map((r: { id: string; url: string }) => [r.id, r.url]));
    expect(ids.map((id) => urlOf.get(id))).toEqual(urls);

    const done = await waitFor(
      async () => {
        const batch = await env.service.call('GET', `/v1/batches/${res.body.batch_id}`);
        return batch.body.data?.counts.completed === 60 ? batch : undefined;
      },
      { what: 'all 60 jobs of the batch to complete', timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(done.body.data).toMatchObject({
      batch_id: res.body.batch_id,
      total: 60,
      counts: { queued: 0, processing: 0, completed: 60, failed: 0, timed_out: 0 },
    });
    // A completed job reads back through the job route with its result.
    const job = await env.service.call('GET', `/v1/jobs/${ids[7]}`);
    expect(job.body.data.status).toBe('completed');
    expect(job.body.data.result.success).toBe(true);
  });

  test("a batch's jobs page in request order through next_cursor", async () => {
    const urls = distinctUrls(45);
    const res = await env.service.call('POST', '/v1/scrape/batch', batchOf(urls));
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor ? `?limit=20&cursor=${cursor}` : '?limit=20';
      const page = await env.service.call('GET', `/v1/batches/${res.body.batch_id}${query}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.data.jobs.map((j: { job_id: string; url: string }) => j.job_id));
      cursor = page.body.data.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(res.body.job_ids);
  });

  test('one bad item refuses the whole batch with 400 naming its index and field, and queues nothing', async () => {
    const urls = distinctUrls(5);
    const body = batchOf(urls);
    (body.requests[3] as Record<string, unknown>).url = 'ftp://example.com/';
    (body.requests[4] as Record<string, unknown>).format = 'pdf';
    const res = await env.service.call('POST', '/v1/scrape/batch', body);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_REQUEST');
    expect(res.body.error).toMatch(/requests\[3\]\.url: /);
    expect(res.body.error).toMatch(/requests\[4\]\.format: /);
    expect(await historyCount(urls[0]!.split('&')[0]!)).toBe(0);
  });

  test('a batch larger than OMNISCRAPE_MAX_BATCH, an empty one or a malformed body answers 400 naming the limit or field', async () => {
    const tooMany = await env.service.call('POST', '/v1/scrape/batch', batchOf(distinctUrls(251)));
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error).toMatch(/at most 250 per batch \(OMNISCRAPE_MAX_BATCH\)/);
    for (const body of [
      { requests: [] },
      { requests: 'x' },
      [],
      { requests: [{ url: 'http://a.example/' }], x: 1 },
    ]) {
      const res = await env.service.call('POST', '/v1/scrape/batch', body);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ success: false, error: expect.any(String), code: 'INVALID_REQUEST' });
    }
  });

  test('a batch that does not fit under the queued-jobs cap is refused whole with 429 TOO_MANY_QUEUED_JOBS', async () => {
    // Key B's jobs never run here: its only queue is this test's, so nothing is taken off it.
    await env.service.query(`update omniscrape.api_keys set concurrency_limit = 1 where name = 'bravo'`);
    const held = `${env.target.origin}/held?name=batch-cap`;
    const first = await env.service.call(
      'POST',
      '/v1/scrape/batch',
      { requests: Array.from({ length: 200 }, () => ({ url: held })) },
      KEY_B,
    );
    expect(first.status).toBe(202);
    const urls = distinctUrls(150);
    const refused = await env.service.call('POST', '/v1/scrape/batch', batchOf(urls), KEY_B);
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('TOO_MANY_QUEUED_JOBS');
    expect(await historyCount(urls[0]!.split('&')[0]!)).toBe(0);
    env.target.release('batch-cap');
  });

  test("a large batch of one key does not hold back another key's next job by more than a round", async () => {
    const bulk = await env.service.call('POST', '/v1/scrape/batch', batchOf(distinctUrls(250)));
    expect(bulk.status).toBe(202);
    // A key with nothing queued before: its first job starts in the round being served.
    const keyC = `test-key-charlie-${randomUUID()}`;
    await insertApiKey(env.service.running.context.store.db, `charlie-${randomUUID()}`, keyC);
    const other = await env.service.call(
      'POST',
      '/v1/scrape/async',
      { url: `${env.target.origin}/page?other` },
      keyC,
    );
    const priority = async (id: string) =>
      Number(
        (await env.service.query('select priority from pgboss.job where id = $1', [id]))[0]?.priority ?? NaN,
      );
    const bulkPriorities = await Promise.all(bulk.body.job_ids.map(priority));
    const otherPriority = await priority(other.body.job_id);
    // pg-boss runs higher priorities first: the other key's job is in the batch's first round or before it.
    const firstRound = Math.max(...bulkPriorities.filter((p) => !Number.isNaN(p)));
    expect(otherPriority).toBeGreaterThanOrEqual(firstRound);
    expect(new Set(bulkPriorities.filter((p) => !Number.isNaN(p))).size).toBeGreaterThan(1); // the batch spans rounds
  });

  test("another key's batch, an unknown id and a malformed id answer 404 BATCH_NOT_FOUND; bad cursor and limit 400", async () => {
    const res = await env.service.call('POST', '/v1/scrape/batch', batchOf(distinctUrls(1)));
    const asOther = await env.service.call('GET', `/v1/batches/${res.body.batch_id}`, undefined, KEY_B);
    const unknown = await env.service.call('GET', `/v1/batches/${randomUUID()}`);
    const malformed = await env.service.call('GET', '/v1/batches/not-an-id');
    for (const answer of [asOther, unknown, malformed]) {
      expect(answer.status).toBe(404);
      expect(answer.body).toEqual({ success: false, error: expect.any(String), code: 'BATCH_NOT_FOUND' });
    }
    for (const query of ['?limit=0', '?limit=1001', '?limit=abc', '?cursor=zzz', '?cursor=']) {
      const bad = await env.service.call('GET', `/v1/batches/${res.body.batch_id}${query}`);
      expect(bad.status).toBe(400);
      expect(bad.body.error).toMatch(/^(limit|cursor): /);
    }
  });

  test("DELETE /v1/batches/{id} cancels the batch's queued jobs, says how many, and leaves started ones alone", async () => {
    // A key with one slot: one job of the batch runs (held at the target), the rest wait queued.
    const key = `test-key-delta-${randomUUID()}`;
    await insertApiKey(env.service.running.context.store.db, `delta-${randomUUID()}`, key, {
      concurrency: 1,
    });
    const name = `cancel-${randomUUID()}`;
    const urls = Array.from({ length: 20 }, (_, i) => `${env.target.origin}/held?name=${name}&i=${i}`);
    const submitted = await env.service.call('POST', '/v1/scrape/batch', batchOf(urls), key);
    await waitFor(() => env.target.held(name) === 1, { what: 'one job of the batch to reach the target' });
    const cancel = await env.service.call('DELETE', `/v1/batches/${submitted.body.batch_id}`, undefined, key);
    expect(cancel.status).toBe(200);
    expect(cancel.body).toEqual({ success: true, batch_id: submitted.body.batch_id, cancelled: 19 });
    env.target.release(name);
    const done = await waitFor(
      async () => {
        const batch = await env.service.call('GET', `/v1/batches/${submitted.body.batch_id}`, undefined, key);
        return batch.body.data.counts.completed === 1 ? batch.body.data : undefined;
      },
      { what: 'the started job to complete' },
    );
    expect(done.counts).toMatchObject({ queued: 0, processing: 0, completed: 1, cancelled: 19 });
    expect(env.target.hits.get('/held')).toBeGreaterThanOrEqual(1);
    const again = await env.service.call('DELETE', `/v1/batches/${submitted.body.batch_id}`, undefined, key);
    expect(again.body.cancelled).toBe(0);
    const foreign = await env.service.call('DELETE', `/v1/batches/${submitted.body.batch_id}`);
    expect(foreign.status).toBe(404);
    expect(foreign.body.code).toBe('BATCH_NOT_FOUND');
  });

  test("GET /v1/batches/{id}/events streams the batch's counts until every job has ended, and resumes by Last-Event-ID", async () => {
    const name = `events-${randomUUID()}`;
    const urls = Array.from({ length: 5 }, (_, i) => `${env.target.origin}/held?name=${name}&i=${i}`);
    const submitted = await env.service.call('POST', '/v1/scrape/batch', batchOf(urls));
    const url = `${env.service.baseUrl}/v1/batches/${submitted.body.batch_id}/events`;
    const stream = await openEventStream(url);
    expect(stream.res.status).toBe(200);
    expect(stream.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await waitFor(() => stream.events.length >= 1, { what: 'the current counts first' });
    expect(stream.events[0]!.data).toMatchObject({ batch_id: submitted.body.batch_id, total: 5 });
    env.target.release(name);
    await stream.closed;
    const last = stream.events.at(-1)!;
    expect(last.data.counts).toMatchObject({ queued: 0, processing: 0, completed: 5 });
    const ids = stream.events.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    // Caught up: 204 tells an EventSource to stop reconnecting; an older id gets the final counts.
    const caughtUp = await fetch(url, { headers: { 'x-api-key': KEY_A, 'last-event-id': String(last.id) } });
    expect(caughtUp.status).toBe(204);
    const behind = await openEventStream(url, { 'last-event-id': String(stream.events[0]!.id) });
    await behind.closed;
    expect(behind.events.map((e) => e.data.counts.completed)).toEqual([5]);
  });
});
