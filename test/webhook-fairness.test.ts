import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { KEY_A, KEY_B, startTestService, type TestService } from './helpers/service';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { waitFor } from './helpers/wait';

/** A receiver that accepts connections, reads what comes and never answers. */
async function startHangingReceiver() {
  const sockets = new Set<net.Socket>();
  let mostAtOnce = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    mostAtOnce = Math.max(mostAtOnce, sockets.size);
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    open: () => sockets.size,
    mostAtOnce: () => mostAtOnce,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A receiver answering `status()` to every POST, recording each body. */
async function startReceiver(status: () => number) {
  const bodies: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString());
      res.writeHead(status()).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    bodies: () => bodies,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A receiver whose connections never open: a listener (in a child process whose event loop is
 * blocked, so it accepts nothing) with a backlog of one, filled, so the kernel drops further SYNs.
 */
async function startUnacceptingReceiver() {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const s = require('net').createServer();
       s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
         console.log(s.address().port);
         Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
       });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve) =>
    child.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim()))),
  );
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    fillers.push(socket);
    await new Promise((resolve) => socket.once('connect', resolve));
  }
  return {
    url: `http://127.0.0.1:${port}/hook`,
    close: async () => {
      for (const socket of fillers) socket.destroy();
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A URL on 127.0.0.1 where nothing listens: connections are refused. */
async function refusingUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/hook`;
}

const BREAKER_FAILURES = 3;
const PER_KEY = 2;
const REDELIVERIES_PER_MINUTE = 5;
/** Above the 256 KiB default bound. */
const BIG_PAGE_BYTES = 300 * 1024;

let service: TestService;
let target: TargetServer;
let hanging: Awaited<ReturnType<typeof startHangingReceiver>>;
let healthy: Awaited<ReturnType<typeof startReceiver>>;
let failing: Awaited<ReturnType<typeof startReceiver>>;
let failingStatus = 500;

beforeAll(async () => {
  target = await startTargetServer({
    '/big': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('x'.repeat(BIG_PAGE_BYTES));
    },
  });
  hanging = await startHangingReceiver();
  healthy = await startReceiver(() => 200);
  failing = await startReceiver(() => failingStatus);
  service = await startTestService({
    env: {
      OMNISCRAPE_WEBHOOK_CONCURRENCY: '8',
      OMNISCRAPE_WEBHOOK_CONCURRENCY_PER_KEY: String(PER_KEY),
      OMNISCRAPE_WEBHOOK_BREAKER_FAILURES: String(BREAKER_FAILURES),
      OMNISCRAPE_WEBHOOK_REDELIVERIES_PER_MINUTE: String(REDELIVERIES_PER_MINUTE),
    },
    // Retries come at once, so a receiver that is not left alone would be sent to again and again.
    tuning: {
      webhookRetryDelaySeconds: 1,
      webhookRetryBackoff: false,
      webhookPollSeconds: 0.5,
      webhookBreakerOpenSeconds: 8,
    },
  });
});
afterAll(async () => {
  // The hanging receiver's sockets first: the deliveries held on them end at once, not after 10 s.
  await hanging?.close();
  await service?.stop();
  await Promise.all([target?.close(), healthy?.close(), failing?.close()]);
});

/** Submits a batch whose every job reports to `webhookUrl`; resolves with the job ids once all have ended. */
async function endedBatch(key: string, count: number, path: string, webhookUrl: string): Promise<string[]> {
  const requests = Array.from({ length: count }, (_, i) => ({ url: `${target.origin}${path}?i=${i}` }));
  const res = await service.call('POST', '/v1/scrape/batch', { requests, webhook: { url: webhookUrl } }, key);
  expect(res.status).toBe(202);
  const ids = res.body.job_ids as string[];
  await waitFor(
    async () => {
      const [row] = await service.query(
        `select count(*)::int as n from omniscrape.scrape_jobs where id = any($1::uuid[]) and status = 'completed'`,
        [ids],
      );
      return row.n === count;
    },
    { what: `${count} jobs of the batch to complete`, timeoutMs: 60_000 },
  );
  return ids;
}

/** The delivery attempts recorded for these jobs, sent ones only (deferrals record none). */
const recordedAttempts = async (jobIds: string[]) =>
  service.query(
    `select job_id::text, attempt, redelivery, succeeded from omniscrape.webhook_deliveries
      where job_id = any($1::uuid[]) order by id`,
    [jobIds],
  );

describe('webhooks are delivered fairly between keys', () => {
  let hangingJobs: string[] = [];

  test("a key whose receivers hang or refuse does not hold up another key's delivery", async () => {
    hangingJobs = await endedBatch(KEY_A, 40, '/page', hanging.url);
    await endedBatch(KEY_A, 20, '/page', await refusingUrl());
    await waitFor(() => hanging.open() > 0, { what: "key A's deliveries to reach the hanging receiver" });

    const submitted = Date.now();
    const res = await service.call(
      'POST',
      '/v1/scrape/async',
      { url: `${target.origin}/page`, webhook: { url: healthy.url('/bravo') } },
      KEY_B,
    );
    expect(res.status).toBe(202);
    const delivered = await waitFor(
      () => healthy.bodies().find((b) => b.includes(res.body.job_id as string)),
      { what: "key B's delivery", timeoutMs: 30_000 },
    );
    // With four shared slots and 10 s per hanging attempt, B waited behind all of A's 60 (~100 s).
    expect(Date.now() - submitted).toBeLessThan(10_000);
    expect(JSON.parse(delivered).data).toMatchObject({ job_id: res.body.job_id, status: 'completed' });
    // A's deliveries never held more than its share of the worker's slots.
    expect(hanging.mostAtOnce()).toBeGreaterThan(0);
    expect(hanging.mostAtOnce()).toBeLessThanOrEqual(PER_KEY);
  });

  test('a result over the body bound is delivered without its content, saying where to fetch it', async () => {
    const res = await service.call(
      'POST',
      '/v1/scrape/async',
      { url: `${target.origin}/big`, webhook: { url: healthy.url('/big') } },
      KEY_B,
    );
    const jobId = res.body.job_id as string;
    const body = await waitFor(() => healthy.bodies().find((b) => b.includes(jobId)), {
      what: 'the delivery of the big result',
      timeoutMs: 30_000,
    });
    expect(Buffer.byteLength(body)).toBeLessThan(256 * 1024);
    const delivered = JSON.parse(body);
    expect(delivered.success).toBe(true);
    expect(delivered.data).toMatchObject({
      job_id: jobId,
      status: 'completed',
      result_omitted: true,
      fetch: `/v1/jobs/${jobId}`,
    });
    expect(delivered.data.result).toBeUndefined();
    // What the hint names holds the whole result.
    const polled = await service.call('GET', delivered.data.fetch, undefined, KEY_B);
    expect(polled.body.data.result.data.content.length).toBeGreaterThanOrEqual(BIG_PAGE_BYTES);
  });

  test('a receiver that never lets the connection open costs a delivery its 3 s connect timeout, not the whole 10 s', async () => {
    const unaccepting = await startUnacceptingReceiver();
    try {
      const res = await service.call(
        'POST',
        '/v1/scrape/async',
        { url: `${target.origin}/page`, webhook: { url: unaccepting.url } },
        KEY_B,
      );
      const jobId = res.body.job_id as string;
      const [first] = await waitFor(
        async () => {
          const rows = await service.query(
            `select error, duration_ms from omniscrape.webhook_deliveries where job_id = $1 order by id`,
            [jobId],
          );
          return rows.length > 0 && rows;
        },
        { what: 'the first attempt to be recorded', timeoutMs: 30_000 },
      );
      expect(first.error).toMatch(/connect timeout/i);
      expect(first.duration_ms).toBeGreaterThanOrEqual(2500);
      expect(first.duration_ms).toBeLessThan(8000);
    } finally {
      await unaccepting.close();
    }
  });

  test('a receiver failing again and again is left alone after a few failures, its deliveries deferred without using their attempts; a success closes it', async () => {
    failingStatus = 500;
    const jobIds = await endedBatch(KEY_B, 12, '/page', failing.url('/hook'));
    await waitFor(() => failing.bodies().length >= BREAKER_FAILURES, {
      what: `${BREAKER_FAILURES} failed deliveries`,
      timeoutMs: 30_000,
    });
    // Retries are due every second: a receiver not left alone gets every job, and again and again.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    // The failures that opened the circuit, those already in flight, and at most one probe.
    expect(failing.bodies().length).toBeLessThanOrEqual(BREAKER_FAILURES + PER_KEY);
    const attempts = await recordedAttempts(jobIds);
    expect(attempts).toHaveLength(failing.bodies().length);
    const sent = new Set(attempts.map((a: any) => a.job_id));
    const unsent = jobIds.filter((id) => !sent.has(id));
    expect(unsent.length).toBeGreaterThanOrEqual(12 - BREAKER_FAILURES - PER_KEY);
    // Deferred, not failed: none of their attempts was used.
    const waiting = await service.query(
      `select retry_count, state::text from pgboss.job where name = 'deliver-webhook' and data->>'jobId' = any($1)`,
      [unsent],
    );
    expect(waiting).toHaveLength(unsent.length);
    expect(waiting.every((j: any) => j.retry_count === 0 && ['created', 'active'].includes(j.state))).toBe(
      true,
    );

    // A redelivery asked twice while the receiver is left alone is one pending redelivery.
    const redelivered = unsent[0]!;
    const pendingRedeliveries = async () =>
      service.query(
        `select state::text, start_after > now() as later from pgboss.job
          where name = 'deliver-webhook' and singleton_key = $1 and state < 'active'`,
        [`redeliver:${redelivered}`],
      );
    expect(
      (await service.call('POST', `/v1/jobs/${redelivered}/webhooks/redeliver`, undefined, KEY_B)).status,
    ).toBe(202);
    await waitFor(async () => (await pendingRedeliveries()).some((j: any) => j.later), {
      what: 'the redelivery to be deferred',
    });
    expect(
      (await service.call('POST', `/v1/jobs/${redelivered}/webhooks/redeliver`, undefined, KEY_B)).status,
    ).toBe(202);
    const [queued] = await service.query(
      `select count(*)::int as n from pgboss.job where name = 'deliver-webhook' and singleton_key = $1`,
      [`redeliver:${redelivered}`],
    );
    expect(queued.n).toBe(1);

    // Once the receiver answers again, the next probe closes the circuit and everything arrives.
    failingStatus = 200;
    await waitFor(
      async () => {
        const done = new Set(
          (await recordedAttempts(jobIds))
            .filter((a: any) => a.succeeded && !a.redelivery)
            .map((a: any) => a.job_id),
        );
        return done.size === jobIds.length;
      },
      { what: 'every delivery to succeed once the receiver recovered', timeoutMs: 90_000 },
    );
    const redeliveries = await waitFor(
      async () => {
        const rows = (await recordedAttempts([redelivered])).filter((a: any) => a.redelivery);
        return rows.length > 0 && rows;
      },
      { what: 'the one redelivery', timeoutMs: 30_000 },
    );
    expect(redeliveries).toHaveLength(1);
  }, 180_000);

  test('redeliver beyond its rate answers 429 TOO_MANY_REDELIVERIES with Retry-After', async () => {
    const jobId = hangingJobs[0]!;
    for (let i = 0; i < REDELIVERIES_PER_MINUTE; i++) {
      const res = await service.call('POST', `/v1/jobs/${jobId}/webhooks/redeliver`);
      expect(res.status).toBe(202);
    }
    const over = await service.call('POST', `/v1/jobs/${jobId}/webhooks/redeliver`);
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({ success: false, code: 'TOO_MANY_REDELIVERIES' });
    const retryAfter = Number(over.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Another key's redeliveries are counted apart.
    const other = await service.call('POST', `/v1/jobs/${jobId}/webhooks/redeliver`, undefined, KEY_B);
    expect(other.status).toBe(404);
  });
});
