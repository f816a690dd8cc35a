import fc from 'fast-check';
import { KEY_A, KEY_B, startTestService, type TestService } from './helpers/service';
import { startTargetServer, type TargetServer } from './helpers/target-server';

// Thousands of arbitrary requests: never a 5xx, never a crash, always the documented error shape.
// The service runs the API only, so accepted async jobs are stored but never fetched, and the sync
// route only ever sees URLs of the local target (or invalid ones): nothing leaves the machine.
let service: TestService;
let target: TargetServer;

beforeAll(async () => {
  target = await startTargetServer();
  // Every arbitrary key is looked up and every redelivery asked reaches its route's checks
  // (test/sign-in-throttle.test.ts and test/webhook-fairness.test.ts show the throttles that would
  // otherwise answer most of them 429 before any lookup).
  service = await startTestService({
    roles: { api: true, worker: false },
    env: { OMNISCRAPE_SIGN_IN_FAILURES: '1000000', OMNISCRAPE_WEBHOOK_REDELIVERIES_PER_MINUTE: '100000' },
  });
});
afterAll(async () => {
  await service?.stop();
  await target?.close();
});

const CODE = /^[A-Z][A-Z0-9_]*$/;

function expectContractAnswer(res: { status: number; body: any }) {
  expect(res.status).toBeLessThan(500);
  expect(typeof res.body).toBe('object');
  if (res.body.success === false) {
    expect(typeof res.body.error).toBe('string');
    expect(res.body.code).toMatch(CODE);
  } else {
    expect(res.body.success).toBe(true);
  }
}

const knownField = fc.constantFrom(
  'url',
  'method',
  'headers',
  'body',
  'timeout',
  'follow_redirects',
  'format',
  'mode',
  'js_rendering',
);
const anyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
);
const scrapeLikeBody = fc.dictionary(fc.oneof(knownField, fc.string({ maxLength: 12 })), anyValue, {
  maxKeys: 8,
});

describe('hostile input', () => {
  test('arbitrary JSON bodies to POST /v1/scrape/async never cause a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(scrapeLikeBody, fc.jsonValue()), async (body) => {
        expectContractAnswer(await service.call('POST', '/v1/scrape/async', body));
      }),
      { numRuns: 1500 },
    );
  });

  test('arbitrary raw bodies (not JSON) never cause a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 200 }), async (raw) => {
        expectContractAnswer(await service.call('POST', '/v1/scrape/async', raw));
      }),
      { numRuns: 500 },
    );
  });

  test('sync scrapes with arbitrary options against the local target never cause a 5xx', async () => {
    const url = fc.constantFrom(
      `${target.origin}/page`,
      `${target.origin}/status?code=500`,
      `${target.origin}/loop`,
      'not a url',
      'ftp://x',
      '',
    );
    await fc.assert(
      fc.asyncProperty(url, scrapeLikeBody, async (u, rest) => {
        const { url: _ignored, ...options } = rest;
        const res = await service.call('POST', '/v1/scrape', { ...options, url: u, timeout: 5 });
        expect(res.status === 502 || res.status < 500).toBe(true);
        expectContractAnswer({ ...res, status: res.status === 502 ? 400 : res.status });
      }),
      { numRuns: 300 },
    );
  });

  test('arbitrary paths and job ids never cause a 5xx', async () => {
    const segment = fc.string({ maxLength: 40 }).map(encodeURIComponent);
    await fc.assert(
      fc.asyncProperty(
        fc.array(segment, { minLength: 1, maxLength: 4 }),
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
        async (segments, method) => {
          for (const prefix of ['/v1/jobs/', '/v1/', '/']) {
            const res = await service.call(method, prefix + segments.join('/'));
            expectContractAnswer(res);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  test('arbitrary job-list queries answer a page or a 400, never a 5xx', async () => {
    const name = fc.oneof(
      fc.constantFrom('status', 'since', 'until', 'cursor', 'limit'),
      fc.string({ maxLength: 10 }),
    );
    const value = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.integer({ min: -5, max: 5000 }).map(String),
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc.constantFrom('queued,completed', 'cancelled', 'timed_out,', 'eyJ9', '2026-02-30T00:00:00Z'),
      // Well-formed cursors of impossible instants.
      fc
        .constantFrom(
          '2026-02-30T00:00:00.000000Z',
          '0000-01-01T00:00:00.000000Z',
          '9999-12-31T23:59:59.999999Z',
        )
        .map((at) => Buffer.from(`${at}|00000000-0000-0000-0000-000000000000`).toString('base64url')),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(name, value), { maxLength: 4 }), async (params) => {
        const query = params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
        const res = await service.call('GET', `/v1/jobs?${query}`);
        expectContractAnswer(res);
        expect([200, 400]).toContain(res.status);
        if (res.status === 200) expect(Array.isArray(res.body.data)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  test('arbitrary API keys and headers never cause a 5xx', async () => {
    const token = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,30}$/);
    const value = fc.stringMatching(/^[\x20-\x7e]{0,300}$/);
    await fc.assert(
      fc.asyncProperty(value, fc.dictionary(token, value, { maxKeys: 10 }), async (key, headers) => {
        const res = await fetch(`${service.baseUrl}/v1/scrape/async`, {
          method: 'POST',
          headers: {
            ...headers,
            'x-api-key': Math.random() < 0.5 ? KEY_A : key,
            'content-type': 'application/json',
          },
          body: JSON.stringify({ url: `${target.origin}/page` }),
        });
        const body = await res.json();
        expectContractAnswer({ status: res.status, body });
      }),
      { numRuns: 500 },
    );
  });

  test('arbitrary batches, Idempotency-Key values and batch queries never cause a 5xx', async () => {
    const batchBody = fc.oneof(
      fc.record({ requests: fc.array(fc.oneof(scrapeLikeBody, anyValue), { maxLength: 5 }) }),
      fc.dictionary(fc.oneof(fc.constant('requests'), fc.string({ maxLength: 8 })), anyValue, { maxKeys: 3 }),
      fc.jsonValue(),
    );
    const idempotencyKey = fc.option(fc.stringMatching(/^[\x20-\x7e]{0,300}$/), { nil: undefined });
    const query = fc.string({ maxLength: 30 }).map((q) => `?${q}`);
    await fc.assert(
      fc.asyncProperty(batchBody, idempotencyKey, query, async (body, key, q) => {
        const headers: Record<string, string> = key === undefined ? {} : { 'Idempotency-Key': key };
        for (const route of ['/v1/scrape/batch', '/v1/scrape/async']) {
          expectContractAnswer(await service.call('POST', route, body, undefined, headers));
        }
        expectContractAnswer(
          await service.call('GET', `/v1/batches/00000000-0000-0000-0000-000000000000${q}`),
        );
      }),
      { numRuns: 400 },
    );
  });

  test('arbitrary webhooks on submits, and the webhook routes of any job, never cause a 5xx', async () => {
    const hookUrl = fc.oneof(
      fc.webUrl(),
      fc.string({ maxLength: 40 }),
      fc.constantFrom('http://127.0.0.1:1/', 'ftp://example.com/', 'https://[::1]/', 'http://localhost./'),
      anyValue,
    );
    const webhook = fc.oneof(
      fc.record(
        { url: hookUrl, secret: fc.oneof(fc.string({ maxLength: 300 }), anyValue) },
        { requiredKeys: [] },
      ),
      fc.dictionary(fc.oneof(fc.constantFrom('url', 'secret'), fc.string({ maxLength: 8 })), anyValue, {
        maxKeys: 3,
      }),
      anyValue,
    );
    await fc.assert(
      fc.asyncProperty(webhook, webhook, async (own, shared) => {
        const request = { url: `${target.origin}/page`, webhook: own };
        const submitted = await service.call('POST', '/v1/scrape/async', request);
        expectContractAnswer(submitted);
        expectContractAnswer(
          await service.call('POST', '/v1/scrape/batch', { requests: [request], webhook: shared }),
        );
        const id = submitted.body.job_id ?? 'not-a-job';
        expectContractAnswer(await service.call('GET', `/v1/jobs/${id}/webhooks`));
        const redelivered = await service.call('POST', `/v1/jobs/${id}/webhooks/redeliver`);
        expectContractAnswer(redelivered);
        // No worker runs: an accepted job is still queued, so nothing is sent.
        expect([404, 409]).toContain(redelivered.status);
      }),
      { numRuns: 300 },
    );
  });

  test('arbitrary ?wait= values and Last-Event-ID headers on unknown and foreign jobs answer at once, never a 5xx', async () => {
    // Key B's queued job, never fetched (no worker runs): to key A it is unknown, so nothing waits.
    const foreign = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/page` }, KEY_B);
    const jobId = fc.constantFrom(foreign.body.job_id as string, '00000000-0000-4000-8000-000000000000', 'x');
    const wait = fc.oneof(fc.string({ maxLength: 12 }), fc.double().map(String), fc.integer().map(String));
    const lastEventId = fc.stringMatching(/^[\x20-\x7e]{0,30}$/);
    await fc.assert(
      fc.asyncProperty(jobId, wait, lastEventId, async (id, w, last) => {
        const polled = await service.call('GET', `/v1/jobs/${id}?wait=${encodeURIComponent(w)}`);
        expectContractAnswer(polled);
        expect([400, 404]).toContain(polled.status);
        const res = await fetch(`${service.baseUrl}/v1/jobs/${id}/events`, {
          headers: { 'x-api-key': KEY_A, 'last-event-id': last },
        });
        expectContractAnswer({ status: res.status, body: await res.json() });
        expect(res.status).toBe(404);
      }),
      { numRuns: 300 },
    );
  });
});
