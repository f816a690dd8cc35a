import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { insertApiKey, revokeApiKey } from '../src/db/api-keys';
import { KEY_A, KEY_B, useServiceAndTarget, type TestService } from './helpers/service';
import { openEventStream } from './helpers/event-stream';
import { waitFor } from './helpers/wait';

// The API alone: submitted jobs stay queued, so every stream stays open until its client leaves.
// A key may hold 20 streams and waits here, the process 30.
const PER_KEY = 20;
const PER_PROCESS = 30;
const env = useServiceAndTarget({
  roles: { api: true, worker: false },
  env: { OMNISCRAPE_MAX_STREAMS_PER_KEY: String(PER_KEY), OMNISCRAPE_MAX_STREAMS: String(PER_PROCESS) },
});

const held = () => env.service.running.context.heldRequests;

/** A batch of `n` queued jobs of this key; its id and job ids. */
async function queuedBatch(n: number, key = KEY_A): Promise<{ batchId: string; jobIds: string[] }> {
  const tag = randomUUID();
  const requests = Array.from({ length: n }, (_, i) => ({
    url: `${env.target.origin}/page?b=${tag}&i=${i}`,
  }));
  const res = await env.service.call('POST', '/v1/scrape/batch', { requests }, key);
  expect(res.status).toBe(202);
  return { batchId: res.body.batch_id, jobIds: res.body.job_ids };
}

/** A stream (or wait) whose answer has begun, and the way to leave it. */
async function openHeld(path: string, key = KEY_A): Promise<{ res: Response; leave: () => void }> {
  const left = new AbortController();
  const res = await fetch(env.service.baseUrl + path, { headers: { 'x-api-key': key }, signal: left.signal });
  return { res, leave: () => left.abort() };
}

/** Sends a GET and resets the connection 0–3 ms later, as a client that gives up at once. */
function sendAndReset(service: TestService, path: string, key: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(Number(new URL(service.baseUrl).port), '127.0.0.1', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${key}\r\n\r\n`);
      setTimeout(() => socket.resetAndDestroy(), Math.floor(Math.random() * 4));
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
}

/** The median time of `n` GET /v1/jobs/{id} of key B, one after another. */
async function readP50(jobId: string, n = 40): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    const res = await fetch(`${env.service.baseUrl}/v1/jobs/${jobId}`, { headers: { 'x-api-key': KEY_B } });
    await res.text();
    expect(res.status).toBe(200);
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(n / 2)]!;
}

describe('streams and waits cost nothing once their client is gone, and are bounded per key', () => {
  test("clients that reset batch streams during their first reads leave no stream, watcher or reader behind, and another key's reads stay fast", async () => {
    const { batchId, jobIds } = await queuedBatch(1_000);
    const bJob = (
      await env.service.call('POST', '/v1/scrape/async', { url: `${env.target.origin}/page` }, KEY_B)
    ).body.job_id;
    const unloaded = await readP50(bJob);

    const path = `/v1/batches/${batchId}/events`;
    for (let wave = 0; wave < 30; wave++)
      await Promise.all(Array.from({ length: 10 }, () => sendAndReset(env.service, path, KEY_A)));

    const { jobWatchers, batchProgress } = env.service.running.context;
    await waitFor(() => held().size === 0 && jobWatchers.size === 0 && batchProgress.size === 0, {
      what: () =>
        `no held request, watched job or batch reader left; held ${held().size}, watched ${jobWatchers.size}, readers ${batchProgress.size}`,
    });

    // Status notices naming the batch's jobs, as a busy worker's would, while B reads.
    let pumping = true;
    const pump = (async () => {
      for (let i = 0; pumping; i = (i + 50) % jobIds.length) {
        env.service.running.context.statusNotices.announce('changed', jobIds.slice(i, i + 50));
        await sleep(50);
      }
    })();
    let loaded: number;
    try {
      loaded = await readP50(bJob);
    } finally {
      pumping = false;
      await pump;
    }
    expect(loaded).toBeLessThanOrEqual(Math.max(10 * unloaded, unloaded + 200));
  }, 120_000);

  test('a key over its cap is answered 429 TOO_MANY_STREAMS with Retry-After, while another key still opens a stream; the process has a cap of its own', async () => {
    const { batchId } = await queuedBatch(3);
    const { batchId: bBatch } = await queuedBatch(3, KEY_B);
    const aStreams = await Promise.all(
      Array.from({ length: PER_KEY }, () => openHeld(`/v1/batches/${batchId}/events`)),
    );
    const bStreams: Awaited<ReturnType<typeof openHeld>>[] = [];
    try {
      expect(aStreams.map((s) => s.res.status)).toEqual(Array(PER_KEY).fill(200));
      expect(held().heldBy(apiKeyId('alpha'))).toBe(PER_KEY);

      for (const path of [
        `/v1/batches/${batchId}/events`,
        `/v1/jobs/${await anyJob(KEY_A)}/events`,
        `/v1/jobs/${await anyJob(KEY_A)}?wait=30`,
      ]) {
        const refused = await env.service.call('GET', path);
        expect(refused.status).toBe(429);
        expect(refused.body.code).toBe('TOO_MANY_STREAMS');
        expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      }

      // B is under its own cap: its streams open until the process holds PER_PROCESS.
      for (let i = 0; i < PER_PROCESS - PER_KEY; i++)
        bStreams.push(await openHeld(`/v1/batches/${bBatch}/events`, KEY_B));
      expect(bStreams.map((s) => s.res.status)).toEqual(Array(PER_PROCESS - PER_KEY).fill(200));
      const overProcess = await env.service.call('GET', `/v1/batches/${bBatch}/events`, undefined, KEY_B);
      expect(overProcess.status).toBe(429);
      expect(overProcess.body.code).toBe('TOO_MANY_STREAMS');

      // A stream that ends gives its slot back.
      aStreams.pop()!.leave();
      await waitFor(() => held().heldBy(apiKeyId('alpha')) === PER_KEY - 1, { what: "A's slot back" });
      const again = await openHeld(`/v1/batches/${batchId}/events`);
      expect(again.res.status).toBe(200);
      aStreams.push(again);
    } finally {
      for (const s of [...aStreams, ...bStreams]) s.leave();
    }
    await waitFor(() => held().size === 0, { what: () => `every slot back; ${held().size} held` });
  });

  test('a ?wait= whose client leaves gives its slot back and forgets its job at once', async () => {
    const jobId = await anyJob(KEY_A);
    const wait = new AbortController();
    const answered = fetch(`${env.service.baseUrl}/v1/jobs/${jobId}?wait=60`, {
      headers: { 'x-api-key': KEY_A },
      signal: wait.signal,
    }).catch(() => 'left');
    await waitFor(() => held().size === 1 && env.service.running.context.jobWatchers.size === 1, {
      what: 'the wait to be held',
    });
    wait.abort();
    expect(await answered).toBe('left');
    await waitFor(() => held().size === 0 && env.service.running.context.jobWatchers.size === 0, {
      what: 'the slot and the watch given back',
      timeoutMs: 5_000,
    });
  });

  test("a revoked key's open streams end and its waits are answered 401", async () => {
    const name = `revoked-${randomUUID()}`;
    const key = `osk_${randomUUID().replaceAll('-', '')}`;
    await insertApiKey(env.service.running.context.store.db, name, key);
    const { batchId, jobIds } = await queuedBatch(3, key);
    const stream = await openEventStream(`${env.service.baseUrl}/v1/batches/${batchId}/events`, {}, key);
    expect(stream.res.status).toBe(200);
    await waitFor(() => stream.events.length === 1, { what: 'the first counts' });
    const wait = fetch(`${env.service.baseUrl}/v1/jobs/${jobIds[0]}?wait=60`, {
      headers: { 'x-api-key': key },
    });
    await waitFor(() => held().size === 2, { what: 'the stream and the wait held' });

    await revokeApiKey(env.service.running.context.store.db, name);
    await stream.closed;
    const answer = await wait;
    expect(answer.status).toBe(401);
    expect(((await answer.json()) as { code: string }).code).toBe('UNAUTHORIZED');
    await waitFor(() => held().size === 0, { what: 'the revoked key holding nothing' });
  });

  test('the streams of one batch share one progress read per status notice, however many they are', async () => {
    const { batchId, jobIds } = await queuedBatch(20);
    const streams = await Promise.all(
      Array.from({ length: 15 }, () =>
        openEventStream(`${env.service.baseUrl}/v1/batches/${batchId}/events`),
      ),
    );
    const { batchProgress, statusNotices } = env.service.running.context;
    try {
      await waitFor(() => streams.every((s) => s.events.length === 1), { what: 'every first event' });
      expect(batchProgress.size).toBe(1);
      const before = batchProgress.reads;
      const notices = 5;
      for (let i = 0; i < notices; i++) {
        statusNotices.announce('changed', jobIds.slice(i * 4, i * 4 + 4));
        await sleep(50);
      }
      await waitFor(() => batchProgress.reads > before, { what: 'a read after the notices' });
      await sleep(1_000);
      expect(batchProgress.reads - before).toBeGreaterThanOrEqual(1);
      expect(batchProgress.reads - before).toBeLessThanOrEqual(notices);
    } finally {
      await env.service.call('DELETE', `/v1/batches/${batchId}`);
    }
    // Cancelling ends every job: each stream sends the final counts and closes.
    await Promise.all(streams.map((s) => s.closed));
    for (const s of streams) expect(s.events.at(-1)!.data.counts).toMatchObject({ queued: 0, cancelled: 20 });
    await waitFor(() => batchProgress.size === 0, { what: "the batch's reader gone with its last stream" });
  });
});

/** The id of an API key by name. */
function apiKeyId(name: string): string {
  const id = keyIds.get(name);
  if (!id) throw new Error(`unknown key ${name}`);
  return id;
}
const keyIds = new Map<string, string>();
beforeAll(async () => {
  for (const row of await env.service.query('select id, name from omniscrape.api_keys'))
    keyIds.set(row.name, row.id);
});

/** A new queued job of this key. */
async function anyJob(key: string): Promise<string> {
  const res = await env.service.call('POST', '/v1/scrape/async', { url: `${env.target.origin}/page` }, key);
  return res.body.job_id;
}
