import { capturingLogger } from './helpers/log-capture';
import { useServiceAndTarget, waitForJob } from './helpers/service';
import { waitFor } from './helpers/wait';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const log = capturingLogger('info');
const env = useServiceAndTarget({ logger: log.logger });

/** An answer's X-Request-Id for a request that sent `requestId` (none: undefined). */
async function answeredId(
  method: string,
  path: string,
  { body, key, requestId }: { body?: unknown; key?: string | null; requestId?: string } = {},
): Promise<{ status: number; id: string | null }> {
  const headers: Record<string, string> = requestId === undefined ? {} : { 'x-request-id': requestId };
  const res = await env.service.call(method, path, body, key, headers);
  return { status: res.status, id: res.headers.get('x-request-id') };
}

describe('X-Request-Id', () => {
  test('a valid incoming id is echoed on every answer, successes and errors alike', async () => {
    const { target } = env;
    const answers = [
      await answeredId('POST', '/v1/scrape/async', {
        body: { url: `${target.origin}/plain` },
        requestId: 'a',
      }),
      await answeredId('POST', '/v1/scrape', {
        body: { url: `${target.origin}/plain` },
        requestId: 'b.c_d:e-F9',
      }),
      await answeredId('GET', '/v1/jobs/00000000-0000-4000-8000-000000000000', {
        requestId: 'x'.repeat(128),
      }),
      await answeredId('POST', '/v1/scrape/async', { body: '{"url":', requestId: 'bad-json' }),
      await answeredId('POST', '/v1/scrape/async', { body: { url: 'ftp://x' }, requestId: 'bad-url' }),
      await answeredId('GET', '/v1/jobs', { key: null, requestId: 'no-key' }),
      await answeredId('GET', '/no/such/route', { requestId: 'no-route' }),
      await answeredId('GET', '/healthz', { requestId: 'probe' }),
      await answeredId('GET', '/metrics', { requestId: 'prometheus' }),
    ];
    expect(answers).toEqual([
      { status: 202, id: 'a' },
      { status: 200, id: 'b.c_d:e-F9' },
      { status: 404, id: 'x'.repeat(128) },
      { status: 400, id: 'bad-json' },
      { status: 400, id: 'bad-url' },
      { status: 401, id: 'no-key' },
      { status: 404, id: 'no-route' },
      { status: 200, id: 'probe' },
      { status: 200, id: 'prometheus' },
    ]);
  });

  test('a missing or invalid id is replaced by a new UUID, on errors too', async () => {
    const sent = [undefined, '', 'x'.repeat(129), 'has space', 'semi;colon', 'a/b', 'quote"d', 'one, two'];
    const answers = [];
    for (const requestId of sent) {
      answers.push(await answeredId('GET', '/v1/jobs', { requestId }));
      answers.push(await answeredId('GET', '/v1/jobs', { requestId, key: null }));
    }
    expect(answers.map((a) => a.status)).toEqual(sent.flatMap(() => [200, 401]));
    for (const { id } of answers) expect(id).toMatch(UUID);
    expect(new Set(answers.map((a) => a.id)).size).toBe(answers.length);
  });

  test("the id is in each job's history row and in job_history: sync, async, and one for all of a batch's jobs", async () => {
    const { service, target } = env;
    const async = await service.call(
      'POST',
      '/v1/scrape/async',
      { url: `${target.origin}/page?r=1` },
      undefined,
      {
        'x-request-id': 'async-submit-1',
      },
    );
    const batch = await service.call(
      'POST',
      '/v1/scrape/batch',
      { requests: [{ url: `${target.origin}/page?r=2` }, { url: `${target.origin}/page?r=3` }] },
      undefined,
      { 'x-request-id': 'batch-submit-1' },
    );
    const sync = await service.call('POST', '/v1/scrape', { url: `${target.origin}/page?r=4` }, undefined, {
      'x-request-id': 'sync-scrape-1',
    });
    // None sent: the one generated is recorded.
    const unnamed = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/page?r=5` });
    expect([async.status, batch.status, sync.status, unnamed.status]).toEqual([202, 202, 200, 202]);
    const generated = unnamed.headers.get('x-request-id');
    expect(generated).toMatch(UUID);

    const history = await service.query(
      `select url, request_id from omniscrape_reporting.job_history where url like $1 order by url`,
      [`${target.origin}/page?r=%`],
    );
    expect(history.map((r) => [new URL(r.url).search, r.request_id])).toEqual([
      ['?r=1', 'async-submit-1'],
      ['?r=2', 'batch-submit-1'],
      ['?r=3', 'batch-submit-1'],
      ['?r=4', 'sync-scrape-1'],
      ['?r=5', generated],
    ]);
    const [row] = await service.query('select request_id from omniscrape.scrape_jobs where id = $1', [
      async.body.job_id,
    ]);
    expect(row.request_id).toBe('async-submit-1');
  });

  test("every log line about a request carries its id, and the worker's lines about its job carry it too", async () => {
    const { service, target } = env;
    const requestId = 'trace-me-0001';
    const submitted = await service.call(
      'POST',
      '/v1/scrape/async',
      { url: `${target.origin}/plain?log=1` },
      undefined,
      {
        'x-request-id': requestId,
      },
    );
    const jobId: string = submitted.body.job_id;
    await waitForJob(service, jobId);
    const refused = await service.call('GET', '/v1/jobs', undefined, null, {
      'x-request-id': 'refused-0001',
    });
    expect(refused.status).toBe(401);

    const ofJob = () => log.lines.filter((line) => line.jobId === jobId);
    await waitFor(() => ofJob().some((line) => line.msg === 'scrape job ended'), {
      what: "the worker's line about the job's end",
    });
    expect(ofJob()).toEqual([
      expect.objectContaining({ msg: 'scrape job ended', requestId, status: 'completed', attempt: 1 }),
    ]);
    const answered = (id: string) =>
      log.lines.filter((line) => line.requestId === id && line.msg === 'request answered');
    expect(answered(requestId)).toEqual([
      expect.objectContaining({
        method: 'POST',
        path: '/v1/scrape/async',
        status: 202,
        ms: expect.any(Number),
      }),
    ]);
    expect(answered('refused-0001')).toEqual([expect.objectContaining({ method: 'GET', status: 401 })]);
    // Each request has its own id: the polls' lines carry theirs, not the submission's.
    const polls = log.lines.filter(
      (line) => line.msg === 'request answered' && line.path === `/v1/jobs/${jobId}`,
    );
    expect(polls.length).toBeGreaterThan(0);
    for (const poll of polls) expect(poll.requestId).toMatch(UUID);
  });
});
