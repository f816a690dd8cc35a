import { startDisposablePostgres } from './helpers/postgres-server';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, waitForJob, type TestService } from './helpers/service';

// This file stops and starts Postgres, so it runs on a server of its own (durable, as in
// production), never the shared one.
let postgres: Awaited<ReturnType<typeof startDisposablePostgres>>;
let service: TestService;
let target: TargetServer;

beforeAll(async () => {
  target = await startTargetServer();
  postgres = await startDisposablePostgres({ durable: true });
  service = await startTestService({ databaseUrl: postgres.url });
});
afterAll(async () => {
  await service?.stop().catch(() => undefined);
  await postgres?.destroy();
  await target?.close();
});

describe('Postgres outage', () => {
  test('while Postgres is down the API answers 503 QUEUE_UNAVAILABLE with Retry-After; when it is back the same process accepts again', async () => {
    const before = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/plain` });
    expect(before.status).toBe(202);
    expect((await waitForJob(service, before.body.job_id)).status).toBe('completed');

    await postgres.stop();

    for (const [method, path, body] of [
      ['POST', '/v1/scrape/async', { url: `${target.origin}/plain` }],
      ['POST', '/v1/scrape', { url: `${target.origin}/plain` }],
      ['GET', `/v1/jobs/${before.body.job_id}`, undefined],
    ] as const) {
      const res = await service.call(method, path, body);
      expect(res.status).toBe(503);
      expect(res.body).toEqual({ success: false, error: expect.any(String), code: 'QUEUE_UNAVAILABLE' });
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    const notReady = await service.call('GET', '/readyz', undefined, null);
    expect(notReady.status).toBe(503);
    expect((await service.call('GET', '/healthz', undefined, null)).status).toBe(200);

    await postgres.start();

    // The pools reconnect on their own; give them a moment, without restarting anything.
    let after = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/plain` });
    const deadline = Date.now() + 20_000;
    while (after.status !== 202 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      after = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/plain` });
    }
    expect(after.status).toBe(202);
    expect((await waitForJob(service, after.body.job_id)).status).toBe('completed');
    expect((await service.call('GET', '/readyz', undefined, null)).status).toBe(200);
  });
});
