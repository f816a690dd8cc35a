import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { guardedAgent } from '../src/scraper/guarded-agent';
import { keyWebhookSecrets } from '../src/jobs/webhook-signing-secrets';
import { updateApiKeyLimits } from '../src/db/api-keys';
import { activeKeyIdByName } from '../src/db/key-webhook-secrets';
import { KEY_A, KEY_B, startTestService, waitForJob, type TestService } from './helpers/service';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { waitFor } from './helpers/wait';

interface Delivery {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver: records every POST per path, answering the statuses queued for it, then 200. */
async function startReceiver() {
  const deliveries = new Map<string, Delivery[]>();
  const answers = new Map<string, number[]>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      deliveries.set(path, [
        ...(deliveries.get(path) ?? []),
        { headers: req.headers, body: Buffer.concat(chunks).toString() },
      ]);
      res.writeHead(answers.get(path)?.shift() ?? 200).end('thanks');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    deliveries: (path: string) => deliveries.get(path) ?? [],
    total: () => [...deliveries.values()].reduce((n, list) => n + list.length, 0),
    answer: (path: string, statuses: number[]) => answers.set(path, statuses),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The documented check: HMAC-SHA256 of "<t>.<raw body>" with the secret, in hex. */
function signatureValid(delivery: Delivery, secret: string): boolean {
  const header = String(delivery.headers['x-omniscrape-signature']);
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=') as [string, string]));
  const expected = createHmac('sha256', secret).update(`${parts.t}.${delivery.body}`).digest('hex');
  return parts.v1 === expected && Math.abs(Date.now() / 1000 - Number(parts.t)) < 300;
}

/** The key's current webhook secret, as `omniscrape keys webhook-secret NAME` prints it. */
async function keySecret(name: string): Promise<string> {
  const { db } = service.running.context.store;
  return (await keyWebhookSecrets(db, service.config.secretsKey!, (await activeKeyIdByName(db, name))!))[0]!;
}

let service: TestService;
let target: TargetServer;
let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  target = await startTargetServer();
  receiver = await startReceiver();
  // A key runs two scrapes at once, so a third job stays queued (the cancel test); retries at once.
  service = await startTestService({
    env: { OMNISCRAPE_DEFAULT_CONCURRENCY: '2' },
    tuning: { webhookRetryDelaySeconds: 1, webhookRetryBackoff: false, webhookPollSeconds: 0.5 },
  });
});
afterAll(async () => {
  await service?.stop();
  await target?.close();
  await receiver?.close();
});

const submit = async (body: unknown, key = KEY_A) => {
  const res = await service.call('POST', '/v1/scrape/async', body, key);
  expect(res.status).toBe(202);
  return res.body.job_id as string;
};

const deliveriesOf = async (jobId: string, key = KEY_A) =>
  (await service.call('GET', `/v1/jobs/${jobId}/webhooks`, undefined, key)).body.data as any[];

describe('webhooks', () => {
  test('a receiver failing twice then answering 200 gets the job once as a success, three attempts recorded, signed', async () => {
    receiver.answer('/flaky', [500, 500]);
    const secret = 'flaky-receiver-secret';
    const jobId = await submit({
      url: `${target.origin}/page`,
      webhook: { url: receiver.url('/flaky'), secret },
    });
    const attempts = await waitFor(
      async () => {
        const rows = await deliveriesOf(jobId);
        return rows.length === 3 && rows[2].succeeded && rows;
      },
      { what: 'three recorded attempts, the last one succeeded', timeoutMs: 30_000 },
    );
    expect(attempts.map((a: any) => [a.attempt, a.succeeded, a.status_code, a.redelivery])).toEqual([
      [1, false, 500, false],
      [2, false, 500, false],
      [3, true, 200, false],
    ]);
    expect(attempts[0].error).toMatch(/500/);
    expect(attempts[2].duration_ms).toEqual(expect.any(Number));
    const seen = receiver.deliveries('/flaky');
    expect(seen).toHaveLength(3);
    const last = seen[2]!;
    expect(signatureValid(last, secret)).toBe(true);
    expect(signatureValid(last, 'another-secret')).toBe(false);
    expect(last.headers['content-type']).toBe('application/json');
    expect(last.headers['user-agent']).toBe('omniscrape-webhooks');
    expect(last.headers['x-omniscrape-job-id']).toBe(jobId);
    // The body is exactly what GET /v1/jobs/{id} answers.
    const polled = await service.call('GET', `/v1/jobs/${jobId}`);
    expect(JSON.parse(last.body)).toEqual(polled.body);
    expect(polled.body.data.status).toBe('completed');
    // Its delivery job ends done (the attempt is recorded just before pg-boss completes it): no
    // fourth POST will come.
    await waitFor(
      async () => {
        const [queued] = await service.query(
          `select count(*)::int as n from pgboss.job where name = 'deliver-webhook' and data->>'jobId' = $1 and state <> 'completed'`,
          [jobId],
        );
        return queued.n === 0;
      },
      { what: "the delivery's pg-boss job completed" },
    );
    expect(receiver.deliveries('/flaky')).toHaveLength(3);
  });

  test('redeliver sends the job again, recorded as a redelivery', async () => {
    const jobId = await submit({ url: `${target.origin}/page`, webhook: { url: receiver.url('/again') } });
    await waitFor(async () => (await deliveriesOf(jobId)).length === 1, { what: 'the first delivery' });
    const res = await service.call('POST', `/v1/jobs/${jobId}/webhooks/redeliver`);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ success: true, job_id: jobId });
    const rows = await waitFor(
      async () => {
        const list = await deliveriesOf(jobId);
        return list.length === 2 && list;
      },
      { what: 'the redelivery' },
    );
    expect(rows.map((r) => [r.redelivery, r.succeeded])).toEqual([
      [false, true],
      [true, true],
    ]);
    expect(receiver.deliveries('/again')).toHaveLength(2);
    // Without a secret, a request's webhook is signed with its key's webhook secret, never its hash.
    const keyHash = createHash('sha256').update(KEY_A).digest('hex');
    expect(signatureValid(receiver.deliveries('/again')[1]!, await keySecret('alpha'))).toBe(true);
    expect(signatureValid(receiver.deliveries('/again')[1]!, keyHash)).toBe(false);
  });

  test('redeliver refuses a job without a webhook and one not finished yet', async () => {
    const plain = await submit({ url: `${target.origin}/page` });
    await waitForJob(service, plain);
    const none = await service.call('POST', `/v1/jobs/${plain}/webhooks/redeliver`);
    expect(none.status).toBe(409);
    expect(none.body).toMatchObject({ success: false, code: 'WEBHOOK_NOT_CONFIGURED' });

    const running = await submit({
      url: `${target.origin}/held?name=unfinished`,
      webhook: { url: receiver.url('/unfinished') },
    });
    await waitFor(() => target.held('unfinished') === 1, { what: 'the job to reach the target' });
    const early = await service.call('POST', `/v1/jobs/${running}/webhooks/redeliver`);
    expect(early.status).toBe(409);
    expect(early.body).toMatchObject({ success: false, code: 'JOB_NOT_FINISHED', status: 'processing' });
    target.release('unfinished');
    await waitFor(() => receiver.deliveries('/unfinished').length === 1, { what: 'its delivery' });
  });

  test("a key's default webhook delivers its jobs, signed with the key's webhook secret", async () => {
    await updateApiKeyLimits(service.running.context.store.db, 'bravo', {
      webhookUrl: receiver.url('/key-default'),
    });
    const jobId = await waitFor(
      async () => {
        // The key change reaches the API's key cache by a notice: submit until it applies.
        const id = await submit({ url: `${target.origin}/page` }, KEY_B);
        const [row] = await service.query('select 1 from omniscrape.job_webhooks where job_id = $1', [id]);
        return row && id;
      },
      { what: "the key's default webhook to apply" },
    );
    const [delivery] = await waitFor(
      () => {
        const list = receiver
          .deliveries('/key-default')
          .filter((d) => d.headers['x-omniscrape-job-id'] === jobId);
        return list.length > 0 && list;
      },
      { what: "the key default's delivery" },
    );
    const keyHash = createHash('sha256').update(KEY_B).digest('hex');
    expect(signatureValid(delivery!, await keySecret('bravo'))).toBe(true);
    expect(signatureValid(delivery!, keyHash)).toBe(false);
    await updateApiKeyLimits(service.running.context.store.db, 'bravo', { webhookUrl: null });
  });

  test("a batch's webhook delivers each of its jobs; an item's own webhook wins", async () => {
    const res = await service.call('POST', '/v1/scrape/batch', {
      requests: [
        { url: `${target.origin}/page?i=0` },
        { url: `${target.origin}/page?i=1`, webhook: { url: receiver.url('/own') } },
        { url: `${target.origin}/page?i=2` },
      ],
      webhook: { url: receiver.url('/batch'), secret: 'batch-secret-1' },
    });
    expect(res.status).toBe(202);
    const [first, own, third] = res.body.job_ids as string[];
    await waitFor(
      () => receiver.deliveries('/batch').length === 2 && receiver.deliveries('/own').length === 1,
      { what: 'every job of the batch delivered' },
    );
    const batchJobs = receiver.deliveries('/batch').map((d) => d.headers['x-omniscrape-job-id']);
    expect(batchJobs.sort()).toEqual([first, third].sort());
    expect(receiver.deliveries('/own')[0]!.headers['x-omniscrape-job-id']).toBe(own);
    expect(receiver.deliveries('/batch').every((d) => signatureValid(d, 'batch-secret-1'))).toBe(true);
  });

  test('a cancelled job with a webhook gets its delivery', async () => {
    const name = 'cancel-webhook';
    await submit({ url: `${target.origin}/held?name=${name}` });
    await submit({ url: `${target.origin}/held?name=${name}` });
    await waitFor(() => target.held(name) === 2, { what: "both of key A's slots to be taken" });
    const jobId = await submit({
      url: `${target.origin}/page`,
      webhook: { url: receiver.url('/cancelled') },
    });
    const cancel = await service.call('DELETE', `/v1/jobs/${jobId}`);
    expect(cancel.status).toBe(200);
    target.release(name);
    await waitFor(() => receiver.deliveries('/cancelled').length === 1, {
      what: 'the cancelled job delivered',
    });
    expect(JSON.parse(receiver.deliveries('/cancelled')[0]!.body).data).toMatchObject({
      job_id: jobId,
      status: 'cancelled',
    });
  });

  test('bad webhook input answers 400 naming the field; the sync route refuses a webhook', async () => {
    const url = `${target.origin}/page`;
    const cases: [unknown, string][] = [
      [{ url, webhook: { url: 'ftp://example.com/hook' } }, 'webhook.url'],
      [{ url, webhook: { url: `https://example.com/${'a'.repeat(2048)}` } }, 'webhook.url'],
      [{ url, webhook: {} }, 'webhook.url'],
      [{ url, webhook: { url: 'https://example.com/hook', secret: 'short' } }, 'webhook.secret'],
      [{ url, webhook: { url: 'https://example.com/hook', secret: 12345678 } }, 'webhook.secret'],
      [{ url, webhook: 'https://example.com/hook' }, 'webhook'],
      [{ url, webhook: { url: 'https://example.com/hook', extra: 1 } }, 'webhook'],
    ];
    for (const [body, field] of cases) {
      const res = await service.call('POST', '/v1/scrape/async', body);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ success: false, code: 'INVALID_REQUEST' });
      expect(res.body.error).toContain(`${field}:`);
    }
    const item = await service.call('POST', '/v1/scrape/batch', {
      requests: [{ url }, { url, webhook: { url: 'nope' } }],
    });
    expect(item.status).toBe(400);
    expect(item.body.error).toContain('requests[1].webhook.url:');
    const top = await service.call('POST', '/v1/scrape/batch', {
      requests: [{ url }],
      webhook: { url: 'nope' },
    });
    expect(top.status).toBe(400);
    expect(top.body.error).toContain('webhook.url:');
    const sync = await service.call('POST', '/v1/scrape', { url, webhook: { url: receiver.url('/sync') } });
    expect(sync.status).toBe(400);
    expect(sync.body.error).toContain('webhook');
  });

  test('the same Idempotency-Key with another webhook is another request', async () => {
    const headers = { 'Idempotency-Key': 'webhook-idempotency-1' };
    const body = { url: `${target.origin}/page`, webhook: { url: receiver.url('/idem-1') } };
    expect((await service.call('POST', '/v1/scrape/async', body, KEY_A, headers)).status).toBe(202);
    expect((await service.call('POST', '/v1/scrape/async', body, KEY_A, headers)).status).toBe(200);
    const other = { ...body, webhook: { url: receiver.url('/idem-2') } };
    const res = await service.call('POST', '/v1/scrape/async', other, KEY_A, headers);
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });
});

describe('webhooks to blocked addresses are never contacted', () => {
  test('a service that refuses private targets refuses such a webhook at submit', async () => {
    const strict = await startTestService({
      env: { OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'false' },
      roles: { api: true, worker: false },
    });
    try {
      const before = receiver.total();
      for (const hook of [receiver.url('/blocked'), `http://localhost:${receiver.port}/`, 'http://[::1]/']) {
        const res = await strict.call('POST', '/v1/scrape/async', {
          url: 'https://example.com/',
          webhook: { url: hook },
        });
        expect(res.status).toBe(400);
        expect(res.body.error).toContain('webhook.url:');
      }
      expect(receiver.total()).toBe(before);
    } finally {
      await strict.stop();
    }
  });

  test('the delivery agent refuses a name resolving to a blocked address at connect time', async () => {
    const before = receiver.total();
    const refusing = guardedAgent({ allowPrivateTargets: false });
    await expect(
      request(`http://localhost:${receiver.port}/connect-time`, {
        method: 'POST',
        body: '{}',
        dispatcher: refusing,
      }),
    ).rejects.toThrow(/not allowed/);
    await refusing.close();
    expect(receiver.total()).toBe(before);
    // The same agent under a policy that allows loopback reaches it: the guard was the reason.
    const allowing = guardedAgent({ allowPrivateTargets: false, isBlockedAddress: () => false });
    const res = await request(`http://localhost:${receiver.port}/connect-time`, {
      method: 'POST',
      body: '{}',
      dispatcher: allowing,
    });
    await res.body.dump();
    await allowing.close();
    expect(res.statusCode).toBe(200);
    expect(receiver.deliveries('/connect-time')).toHaveLength(1);
  });
});
