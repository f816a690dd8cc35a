import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Pages the benchmark scrapes: ~2 KB and ~100 KB HTML, and ~1 MB for the memory scenario. */
function page(bytes: number): Buffer {
  const paragraph =
    '<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.</p>\n';
  const head = '<!doctype html><html><head><title>bench</title></head><body><h1>Benchmark page</h1>\n';
  const tail = '</body></html>\n';
  let body = head;
  while (body.length + paragraph.length + tail.length <= bytes) body += paragraph;
  return Buffer.from(body + tail);
}

const PAGES: Record<string, Buffer> = {
  '/2kb': page(2 * 1024),
  '/100kb': page(100 * 1024),
  '/1mb': page(1024 * 1024),
};

export interface BenchTarget {
  origin: string;
  close(): Promise<void>;
}

/** Serves the pages on 127.0.0.1; `?delay=ms` holds the answer (to keep fetches in flight). */
export async function startBenchTarget(): Promise<BenchTarget> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const body = PAGES[url.pathname];
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    const send = () =>
      res
        .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': body.length })
        .end(body);
    const delay = Number(url.searchParams.get('delay') ?? 0);
    if (delay > 0) setTimeout(send, delay);
    else send();
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
