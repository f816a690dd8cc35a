import { capturingLogger } from './helpers/log-capture';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, waitForJob, type TestService } from './helpers/service';
import { waitFor } from './helpers/wait';
import { fakeDns } from './helpers/fake-dns';

describe("the operator's blocked ranges (OMNISCRAPE_BLOCKED_TARGETS) apply even with private targets allowed", () => {
  let service: TestService;
  let allowed: TargetServer;
  let blocked: TargetServer;
  beforeAll(async () => {
    allowed = await startTargetServer();
    blocked = await startTargetServer({}, '127.0.0.2');
    service = await startTestService({
      env: { OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'true', OMNISCRAPE_BLOCKED_TARGETS: '127.0.0.2/32' },
    });
  });
  afterAll(async () => {
    await service?.stop();
    await allowed?.close();
    await blocked?.close();
  });

  test('an address in them answers 502 TARGET_BLOCKED and is never reached, while 127.0.0.1 is scraped', async () => {
    const refused = await service.call('POST', '/v1/scrape', { url: `${blocked.origin}/page` });
    expect(refused.status).toBe(502);
    expect(refused.body).toMatchObject({ success: false, code: 'TARGET_BLOCKED', billing: { charged: 0 } });

    const redirected = await service.call('POST', '/v1/scrape', {
      url: `${allowed.origin}/redirect?to=${encodeURIComponent(`${blocked.origin}/page`)}`,
    });
    expect(redirected.body).toMatchObject({ success: false, code: 'TARGET_BLOCKED' });
    expect(blocked.hits.size).toBe(0);

    const scraped = await service.call('POST', '/v1/scrape', { url: `${allowed.origin}/plain` });
    expect(scraped.body).toMatchObject({ success: true, data: { content: 'just text' } });
  });

  test('a webhook to an address in them is refused at submission', async () => {
    const res = await service.call('POST', '/v1/scrape/async', {
      url: `${allowed.origin}/plain`,
      webhook: { url: `${blocked.origin}/hook` },
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toContain('webhook.url:');
    expect(blocked.hits.size).toBe(0);
  });
});

describe('a name whose addresses are all blocked answers exactly as a name that does not resolve', () => {
  // Loopback is the blocked range here, so `localhost` is an internal name that exists;
  // `nonexistent.invalid` can never resolve (RFC 6761).
  let service: TestService;
  let target: TargetServer;
  const log = capturingLogger('info');
  let port: string;
  const existing = () => `http://localhost:${port}/page`;
  const missing = () => `http://nonexistent.invalid:${port}/page`;

  beforeAll(async () => {
    target = await startTargetServer();
    port = new URL(target.origin).port;
    service = await startTestService({
      env: { OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'true', OMNISCRAPE_BLOCKED_TARGETS: '127.0.0.0/8,::1' },
      logger: log.logger,
    });
  });
  afterAll(async () => {
    await service?.stop();
    await target?.close();
  });

  test('a sync scrape: the same status, code and error, and the target is never reached', async () => {
    const blocked = await service.call('POST', '/v1/scrape', { url: existing() });
    const unresolvable = await service.call('POST', '/v1/scrape', { url: missing() });
    expect(blocked.status).toBe(unresolvable.status);
    expect(blocked.status).toBe(502);
    expect(blocked.body.code).toBe('TARGET_UNREACHABLE');
    expect({ code: blocked.body.code, error: blocked.body.error }).toEqual({
      code: unresolvable.body.code,
      error: unresolvable.body.error,
    });
    expect(target.hits.size).toBe(0);
  });

  test('an async scrape: the same status, code and error in the job, and in its history row', async () => {
    const jobs = await Promise.all(
      [existing(), missing()].map(async (url) => {
        const submitted = await service.call('POST', '/v1/scrape/async', { url });
        return (await waitForJob(service, submitted.body.job_id)) as Record<string, unknown>;
      }),
    );
    const [blocked, unresolvable] = jobs.map(({ status, error, code }) => ({ status, error, code }));
    expect(blocked).toEqual(unresolvable);
    expect(blocked).toMatchObject({ status: 'failed', code: 'TARGET_UNREACHABLE' });
    const rows = await service.query(
      'select error_code, error_message from omniscrape.scrape_jobs where id = any($1) order by url',
      [jobs.map((job) => job.job_id)],
    );
    expect(rows).toHaveLength(2);
    expect(rows[0]).toEqual(rows[1]);
    expect(target.hits.size).toBe(0);
  });

  test('a webhook delivery: the same recorded error', async () => {
    const deliveries = await Promise.all(
      [`http://localhost:${port}/hook`, `http://nonexistent.invalid:${port}/hook`].map(async (hook) => {
        const submitted = await service.call('POST', '/v1/scrape/async', {
          url: missing(),
          webhook: { url: hook },
        });
        const path = `/v1/jobs/${submitted.body.job_id}/webhooks`;
        const answer = await waitFor(
          async () => {
            const res = await service.call('GET', path);
            return res.body.data?.length > 0 && res.body.data;
          },
          { what: `a delivery attempt at ${path}`, timeoutMs: 30_000 },
        );
        return { succeeded: answer[0].succeeded, status_code: answer[0].status_code, error: answer[0].error };
      }),
    );
    expect(deliveries[0]).toEqual(deliveries[1]);
    expect(deliveries[0]).toMatchObject({ succeeded: false, status_code: null });
    expect(target.hits.size).toBe(0);
  });

  test("the operator's log says which name the guard refused, and its addresses", () => {
    const refusals = log.lines.filter((line) => line.hostname === 'localhost');
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals[0].msg).toMatch(/refused: its name resolves only to blocked addresses/);
    expect(refusals[0].addresses).toContain('127.0.0.1');
  });
});

describe('with the built-in ranges in force, an internal name answers exactly as a name that does not resolve', () => {
  // A resolver that knows one internal name, as a company's DNS would: it resolves to a private
  // address, which the guard refuses before any connection.
  let service: TestService;
  beforeAll(async () => {
    fakeDns({ 'intranet.test': '10.1.2.3' });
    service = await startTestService({ env: { OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'false' } });
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await service?.stop();
  });

  test('sync and async scrapes: the same status, code and error', async () => {
    const urls = ['http://intranet.test/admin', 'http://nonexistent.invalid/admin'];
    const [internal, missing] = await Promise.all(
      urls.map((url) => service.call('POST', '/v1/scrape', { url })),
    );
    expect(internal!.status).toBe(502);
    expect(internal!.status).toBe(missing!.status);
    expect(internal!.body.code).toBe('TARGET_UNREACHABLE');
    expect({ code: internal!.body.code, error: internal!.body.error }).toEqual({
      code: missing!.body.code,
      error: missing!.body.error,
    });

    const jobs = await Promise.all(
      urls.map(async (url) => {
        const submitted = await service.call('POST', '/v1/scrape/async', { url });
        const { status, error, code } = await waitForJob(service, submitted.body.job_id);
        return { status, error, code };
      }),
    );
    expect(jobs[0]).toEqual(jobs[1]);
    expect(jobs[0]).toEqual({
      status: 'failed',
      error: internal!.body.error,
      code: 'TARGET_UNREACHABLE',
    });
  });
});
