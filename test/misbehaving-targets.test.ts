import zlib from 'node:zlib';
import { useServiceAndTarget, waitForJob } from './helpers/service';
import { startTargetServer, type TargetHandler, type TargetServer } from './helpers/target-server';

const CAP = 1024 * 1024; // OMNISCRAPE_MAX_BODY_BYTES for this file
const MiB = 1024 * 1024;
const zeros = Buffer.alloc(100 * MiB);
const gzipBomb = zlib.gzipSync(zeros, { level: 9 }); // ~100 KB that inflates to 100 MiB
const brotliBomb = zlib.brotliCompressSync(zeros);
const chunk = Buffer.alloc(64 * 1024, 'a');

/** Writes raw bytes straight to the socket: responses no well-behaved server would send. */
const raw =
  (bytes: string): TargetHandler =>
  (req) => {
    req.socket.end(bytes);
  };

const routes: Record<string, TargetHandler> = {
  '/endless': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const pump = () => {
      while (res.write(chunk)) {
        // until the socket's buffer is full; 'drain' resumes
      }
    };
    res.on('drain', pump);
    pump();
  },
  '/drip': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const timer = setInterval(() => res.write('.'), 200);
    res.on('close', () => clearInterval(timer));
  },
  '/big-declared': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(64 * MiB) });
    const pump = () => {
      while (res.write(chunk)) {
        // until the socket's buffer is full; 'drain' resumes
      }
    };
    res.on('drain', pump);
    pump();
  },
  '/gzip-bomb': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' });
    res.end(gzipBomb);
  },
  '/brotli-bomb': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'br' });
    res.end(brotliBomb);
  },
  '/corrupt-gzip': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' });
    res.end(Buffer.from('this is not gzip at all'));
  },
  '/gzip-ok': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
    res.end(zlib.gzipSync('compressed hello'));
  },
  '/huge-headers': raw(`HTTP/1.1 200 OK\r\nX-Huge: ${'h'.repeat(100 * 1024)}\r\nContent-Length: 2\r\n\r\nok`),
  '/broken-chunked': raw(
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nnot a chunk\r\n0\r\n\r\n',
  ),
  '/not-http': raw('SSH-2.0-OpenSSH_9.0\r\n'),
  '/cut-short': raw('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly a few bytes'),
  '/bad-utf8': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(Buffer.from([0x6f, 0x6b, 0x20, 0xff, 0xfe, 0xc3, 0x28, 0x21]));
  },
  '/nul': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(Buffer.from('before\0after\0'));
  },
  '/latin1': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=iso-8859-1' });
    res.end(Buffer.from([0x63, 0x61, 0x66, 0xe9]));
  },
};

// The service under test, with a 1 MiB cap; the misbehaving routes get a target server of their own.
const env = useServiceAndTarget({ env: { OMNISCRAPE_MAX_BODY_BYTES: String(CAP) } });

async function scrape(path: string, extra: Record<string, unknown> = {}) {
  return env.service.call('POST', '/v1/scrape', { url: `${targetWithRoutes.origin}${path}`, ...extra });
}

let targetWithRoutes: TargetServer;
beforeAll(async () => {
  targetWithRoutes = await startTargetServer(routes);
});
afterAll(async () => {
  await targetWithRoutes?.close();
});

describe('misbehaving targets end in a clear code, with the body capped', () => {
  test.each([
    ['/endless', 'TARGET_TOO_LARGE'],
    ['/big-declared', 'TARGET_TOO_LARGE'],
    ['/gzip-bomb', 'TARGET_TOO_LARGE'],
    ['/brotli-bomb', 'TARGET_TOO_LARGE'],
    ['/corrupt-gzip', 'TARGET_PROTOCOL_ERROR'],
    ['/huge-headers', 'TARGET_PROTOCOL_ERROR'],
    ['/broken-chunked', 'TARGET_PROTOCOL_ERROR'],
    ['/not-http', 'TARGET_PROTOCOL_ERROR'],
  ])('%s answers 502 %s', async (path, code) => {
    const res = await scrape(path, { timeout: 20 });
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ success: false, code, billing: { charged: 0 } });
  });

  test('a body that drips below any timeout ends TARGET_TIMEOUT at the deadline', async () => {
    const res = await scrape('/drip', { timeout: 1.5 });
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('TARGET_TIMEOUT');
    expect(res.body.metadata.elapsed_time).toBeGreaterThanOrEqual(1.4);
    expect(res.body.metadata.elapsed_time).toBeLessThan(10);
  });

  test('a body cut short of its Content-Length is not passed off as a page', async () => {
    const res = await scrape('/cut-short');
    expect(res.status).toBe(502);
    expect(['TARGET_PROTOCOL_ERROR', 'TARGET_UNREACHABLE']).toContain(res.body.code);
  });

  test('invalid UTF-8 is decoded with replacement characters, never an error', async () => {
    const res = await scrape('/bad-utf8');
    expect(res.status).toBe(200);
    expect(res.body.data.content).toBe('ok \uFFFD\uFFFD\uFFFD(!');
  });

  test('NUL characters in a page come back as U+FFFD, for sync scrapes and stored async results alike', async () => {
    const sync = await scrape('/nul');
    expect(sync.status).toBe(200);
    expect(sync.body.data.content).toBe('before\uFFFDafter\uFFFD');
    // Submitted together, so the NUL pages share settle batches with ordinary ones.
    const submitted = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        env.service.call('POST', '/v1/scrape/async', {
          url: `${targetWithRoutes.origin}${i % 2 ? '/nul' : '/latin1'}`,
        }),
      ),
    );
    const jobs = await Promise.all(submitted.map((res) => waitForJob(env.service, res.body.job_id)));
    jobs.forEach((job, i) => {
      expect(job).toMatchObject({ status: 'completed' });
      expect(job.result.data.content).toBe(i % 2 ? 'before\uFFFDafter\uFFFD' : 'café');
    });
  });

  test('a declared charset is honoured, and gzip bodies are decoded', async () => {
    expect((await scrape('/latin1')).body.data.content).toBe('café');
    expect((await scrape('/gzip-ok')).body.data.content).toBe('compressed hello');
  });

  test('as async jobs: a bomb ends failed TARGET_TOO_LARGE, a drip ends timed_out TARGET_TIMEOUT', async () => {
    const bomb = await env.service.call('POST', '/v1/scrape/async', {
      url: `${targetWithRoutes.origin}/gzip-bomb`,
    });
    const drip = await env.service.call('POST', '/v1/scrape/async', {
      url: `${targetWithRoutes.origin}/drip`,
      timeout: 1,
    });
    expect(await waitForJob(env.service, bomb.body.job_id)).toMatchObject({
      status: 'failed',
      code: 'TARGET_TOO_LARGE',
    });
    expect(await waitForJob(env.service, drip.body.job_id)).toMatchObject({
      status: 'timed_out',
      code: 'TARGET_TIMEOUT',
    });
  });
});
