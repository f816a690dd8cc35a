import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Pages the benchmark scrapes: ~2 KB and ~100 KB HTML, and ~1 MB for the memory scenario; with
 * `script`, the page loads /app.js as well (static pages `mode: "auto"` must parse to tell from shells).
 */
function page(bytes: number, script = false): Buffer {
  const paragraph =
    '<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.</p>\n';
  const scriptTag = script ? '<script src="/app.js" defer></script>' : '';
  const head = `<!doctype html><html><head><title>bench</title>${scriptTag}</head><body><h1>Benchmark page</h1>\n`;
  const tail = '</body></html>\n';
  let body = head;
  while (body.length + paragraph.length + tail.length <= bytes) body += paragraph;
  return Buffer.from(body + tail);
}

/**
 * A shell whose ~2 KB of text its inline script writes, as a single-page app's is: only a render
 * has the text (each paragraph's words are joined by the script).
 */
const SCRIPT_BUILT =
  Buffer.from(`<!doctype html><html><head><title>bench app</title></head><body><div id="app"></div>
<script>
const app = document.getElementById('app');
for (let i = 1; i <= 20; i++) {
  const p = document.createElement('p');
  p.textContent = 'Paragraph ' + i + ' written ' + 'by script: lorem ipsum dolor sit amet, consectetur.';
  app.append(p);
}
</script></body></html>
`);

/** What a render of /script-built has, and the page as sent has not. */
export const SCRIPT_BUILT_TEXT = 'Paragraph 20 written by script';

const PAGES: Record<string, Buffer> = {
  '/2kb': page(2 * 1024),
  '/100kb': page(100 * 1024),
  '/1mb': page(1024 * 1024),
  '/2kb-script': page(2 * 1024, true),
  '/100kb-script': page(100 * 1024, true),
  '/script-built': SCRIPT_BUILT,
  '/app.js': Buffer.from('window.benchApp = true;\n'),
};

export interface BenchTarget {
  origin: string;
  /** Answers held by `?delay=` right now, and the most held at once since the last `resetPeak()`. */
  delayed: { now: number; peak: number; resetPeak(): void };
  close(): Promise<void>;
}

/** `ms` moved by up to ± `fraction` of itself, uniformly (0: `ms` as it is). */
function jittered(ms: number, fraction: number): number {
  return ms * (1 + fraction * (2 * Math.random() - 1));
}

/**
 * Serves the pages on 127.0.0.1; `?delay=ms` holds the answer (to keep fetches in flight), and
 * `&jitter=0.2` varies each delay by up to ± 20 % of it. Any number of connections is kept open.
 */
export async function startBenchTarget(): Promise<BenchTarget> {
  const delayed = {
    now: 0,
    peak: 0,
    resetPeak: () => void (delayed.peak = delayed.now),
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const body = PAGES[url.pathname];
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    const send = () =>
      res
        .writeHead(200, {
          'content-type': url.pathname.endsWith('.js')
            ? 'text/javascript; charset=utf-8'
            : 'text/html; charset=utf-8',
          'content-length': body.length,
        })
        .end(body);
    const delay = jittered(
      Number(url.searchParams.get('delay') ?? 0),
      Number(url.searchParams.get('jitter') ?? 0),
    );
    if (delay > 0) {
      delayed.peak = Math.max(delayed.peak, ++delayed.now);
      setTimeout(() => {
        delayed.now--;
        send();
      }, delay);
    } else send();
  });
  server.keepAliveTimeout = 60_000;
  // A long accept queue (the kernel caps it at net.core.somaxconn): thousands of scrapes connect
  // at once, and a connection the queue drops is retried only a second later.
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 8192 }, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    delayed,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
