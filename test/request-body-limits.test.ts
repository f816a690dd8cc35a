import http from 'node:http';
import { checkAnswer } from './helpers/contract-check';
import { KEY_A, KEY_B, useServiceAndTarget } from './helpers/service';
import { waitFor } from './helpers/wait';

const MIB = 1024 * 1024;
// OMNISCRAPE_MAX_BATCH 2048 gives batches an 8 MiB body limit (4 KiB a request); each key may have
// 16 MiB of bodies being read at once: two near-limit batches.
const BATCH_LIMIT = 8 * MIB;
const env = useServiceAndTarget({
  env: { OMNISCRAPE_MAX_BATCH: '2048', OMNISCRAPE_REQUEST_BODY_BUDGET_PER_KEY_MB: '16' },
});

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

/**
 * A POST written by hand: its headers at once, its body (if any) as `body` says. `answer` is the
 * service's answer, checked against the contract, or undefined when the connection ended first.
 */
function post(
  path: string,
  key: string,
  {
    length,
    body,
    chunked,
    ownConnection,
  }: { length?: number; body?: Buffer; chunked?: boolean; ownConnection?: boolean },
): { request: http.ClientRequest; answer: Promise<Answer | undefined> } {
  const headers: Record<string, string> = { 'x-api-key': key, 'content-type': 'application/json' };
  if (length !== undefined) headers['content-length'] = String(length);
  if (chunked) headers['transfer-encoding'] = 'chunked';
  // `ownConnection`: not a kept-alive socket the server may be closing, on which a request meant to
  // hold its reservation would end unanswered and hold nothing (the client then says Connection: close).
  const request = http.request(`${env.service.baseUrl}${path}`, {
    method: 'POST',
    headers,
    ...(ownConnection && { agent: false }),
  });
  const answer = new Promise<Answer | undefined>((resolve, reject) => {
    request.on('error', () => resolve(undefined));
    request.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => resolve(undefined));
      res.on('end', () => {
        try {
          const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          const fetched = new Headers();
          for (const [name, value] of Object.entries(res.headers)) fetched.set(name, String(value));
          checkAnswer('POST', path, res.statusCode!, fetched, parsed);
          resolve({ status: res.statusCode!, headers: fetched, body: parsed });
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
  });
  if (body !== undefined) request.end(body);
  else request.flushHeaders();
  return { request, answer };
}

/** An invalid batch (every URL is bad) whose JSON comes to just under `bytes`. */
function invalidBatch(bytes: number): Buffer {
  const items = 2000;
  const pad = 'a'.repeat(Math.floor(bytes / items) - 40);
  return Buffer.from(
    JSON.stringify({ requests: Array.from({ length: items }, () => ({ url: `x ${pad}` })) }),
  );
}

/** Key B's one-page job, sent as any client would: another key's request during key A's flood. */
const submitAsKeyB = () =>
  env.service.call('POST', '/v1/scrape/async', { url: `${env.target.origin}/page` }, KEY_B);

const smallJob = () => Buffer.from(JSON.stringify({ url: `${env.target.origin}/page` }));

describe('request bodies are bounded per key', () => {
  test('a body whose Content-Length is over its limit is refused with 413 before any of it is sent', async () => {
    for (const [path, length] of [
      ['/v1/scrape/batch', BATCH_LIMIT + 1],
      ['/v1/scrape/async', 2 * MIB + 1],
    ] as const) {
      const { request, answer } = post(path, KEY_A, { length });
      // No byte of the body is ever written: the answer comes from the headers alone.
      const refused = await answer;
      request.destroy();
      expect(refused).toMatchObject({ status: 413, body: { success: false, code: 'PAYLOAD_TOO_LARGE' } });
    }
  });

  test('a chunked body is refused with 413 as soon as it streams past its limit', async () => {
    const { request, answer } = post('/v1/scrape/async', KEY_A, { chunked: true });
    let answered = false;
    void answer.then(() => (answered = true));
    const chunk = Buffer.alloc(256 * 1024, 0x20);
    let sent = 0;
    // Whitespace is valid JSON padding; only the limit can stop it.
    while (!answered && sent < 64 * MIB && !request.destroyed) {
      // One chunk at a time, each once the last has left: a server that stops reading never takes
      // it, and then its answer ends the wait.
      await Promise.race([new Promise((resolve) => request.write(chunk, resolve)), answer]);
      await new Promise((resolve) => setTimeout(resolve, 1));
      sent += chunk.length;
    }
    const refused = await answer;
    request.destroy();
    expect(refused).toMatchObject({ status: 413, body: { code: 'PAYLOAD_TOO_LARGE' } });
    expect(sent).toBeLessThan(32 * MIB);
  });

  test("twenty near-limit invalid batches at once from one key: most are refused with 429, memory stays bounded, and another key's request is served", async () => {
    const body = invalidBatch(BATCH_LIMIT - 1024);
    expect(body.length).toBeGreaterThan(BATCH_LIMIT - 64 * 1024);
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    try {
      // All twenty declare their length first, as clients starting at once do; then all send. (A
      // body sent whole with its headers may be read and answered before the next one's headers
      // arrive, and the flood would then be twenty requests one after another.)
      const flood = Array.from({ length: 20 }, () =>
        post('/v1/scrape/batch', KEY_A, { length: body.length }),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      for (const f of flood) if (!f.request.destroyed) f.request.end(body);
      const other = await submitAsKeyB();
      expect(other.status).toBe(202);
      const answers = await Promise.all(flood.map((f) => f.answer));
      for (const f of flood) f.request.destroy();
      peak = Math.max(peak, process.memoryUsage().rss);
      const statuses = answers.map((a) => a?.status ?? 'reset');
      // Read in full, a batch answers 400 (its URLs are bad); the rest were never read.
      expect(statuses.every((s) => s === 400 || s === 429 || s === 'reset')).toBe(true);
      expect(statuses.filter((s) => s === 400).length).toBeLessThanOrEqual(10);
      const throttled = answers.filter((a) => a?.status === 429);
      expect(throttled.length).toBeGreaterThanOrEqual(5);
      for (const a of throttled) {
        expect(a!.body.code).toBe('TOO_MANY_REQUEST_BYTES');
        expect(Number(a!.headers.get('retry-after'))).toBeGreaterThan(0);
      }
    } finally {
      clearInterval(sampler);
    }
    // Reading and parsing all twenty grew this process by about 500 MiB before bodies were bounded;
    // bounded, two are parsed at once and the others' bytes are read and dropped as they come,
    // which runs about 90 MiB and, with the garbage collector late, up to about 170.
    expect(peak - baseline).toBeLessThan(300 * MIB);
    // Every reservation was given back: the key may send again.
    const after = await post('/v1/scrape/async', KEY_A, { length: smallJob().length, body: smallJob() })
      .answer;
    expect(after?.status).toBe(202);
  }, 120_000);

  test("a Retry-After 429 holds while a key's budget is taken, and bodies whose clients leave give it back", async () => {
    // Two batches that declare 8 MiB and send nothing take the key's 16 MiB. Nothing else of the key
    // may be in flight while they arrive (a request reserved first would leave the second no room),
    // so a small request is sent only once neither was refused; a setup that lost such a race (a
    // held batch answered) is taken down and made again.
    const holdBudget = async () => {
      for (let attempt = 1; ; attempt++) {
        const held = [0, 1].map(() =>
          post('/v1/scrape/batch', KEY_A, { length: BATCH_LIMIT - 1, ownConnection: true }),
        );
        let answered: string | undefined;
        for (const h of held)
          void h.answer.then((a) => (answered ??= a ? `${a.status} ${JSON.stringify(a.body)}` : 'a reset'));
        await new Promise((resolve) => setTimeout(resolve, 500));
        const res =
          answered === undefined
            ? await post('/v1/scrape/async', KEY_A, { length: smallJob().length, body: smallJob() }).answer
            : undefined;
        if (res?.status === 429 && answered === undefined) return { held, refused: res };
        for (const h of held) h.request.destroy();
        await Promise.all(held.map((h) => h.answer));
        if (attempt === 5)
          throw new Error(`key A's budget was not taken by its two batches: ${answered ?? res?.status}`);
      }
    };
    const { held, refused } = await holdBudget();
    expect(refused.body).toMatchObject({ success: false, code: 'TOO_MANY_REQUEST_BYTES' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // Key B's budget is its own.
    const other = await submitAsKeyB();
    expect(other.status).toBe(202);
    for (const h of held) h.request.destroy();
    await Promise.all(held.map((h) => h.answer));
    await waitFor(
      async () =>
        (await post('/v1/scrape/async', KEY_A, { length: smallJob().length, body: smallJob() }).answer)
          ?.status === 202,
      { what: "key A's bytes to come back once its clients left", timeoutMs: 30_000 },
    );
  }, 60_000);
});
