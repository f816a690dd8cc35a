import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type TargetHandler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
) => void | Promise<void>;

export interface TargetServer {
  /** http://127.0.0.1:PORT */
  origin: string;
  /** Requests seen per path. */
  hits: Map<string, number>;
  /** Bodies received per path (last one). */
  lastRequest: Map<string, { method: string; headers: http.IncomingHttpHeaders; body: string }>;
  /** Requests waiting at `/held?name=NAME` right now. */
  held(name: string): number;
  /** Answers the requests waiting at `/held?name=NAME`, and from now on answers that name at once. */
  release(name: string): void;
  close(): Promise<void>;
}

export const SAMPLE_HTML = `<!doctype html><html><head><title>Sample page</title><style>body{color:red}</style>
<script>window.secret = 1;</script></head><body><h1>Hello omniscrape</h1><p>A paragraph with <a href="/x">a link</a>.</p>
<ul><li>first</li><li>second</li></ul></body></html>`;

const defaultRoutes: Record<string, TargetHandler> = {
  '/page': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'x-target': 'yes' });
    res.end(SAMPLE_HTML);
  },
  '/plain': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('just text');
  },
  '/echo': async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ method: req.method, headers: req.headers, body }));
  },
  '/status': (_req, res, url) => {
    const code = Number(url.searchParams.get('code') ?? 500);
    res.writeHead(code, { 'content-type': 'text/plain' });
    res.end(`status ${code}`);
  },
  '/slow': (_req, res, url) => {
    const ms = Number(url.searchParams.get('ms') ?? 5000);
    const timer = setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('finally');
    }, ms);
    res.on('close', () => clearTimeout(timer));
  },
  '/redirect': (_req, res, url) => {
    res.writeHead(302, { location: url.searchParams.get('to') ?? '/page' });
    res.end();
  },
  '/loop': (_req, res) => {
    res.writeHead(302, { location: '/loop' });
    res.end();
  },
};

/** An HTTP server on 127.0.0.1 (or another loopback address) for scrapes to hit; `routes` add to or replace the defaults. */
export async function startTargetServer(
  routes: Record<string, TargetHandler> = {},
  host = '127.0.0.1',
): Promise<TargetServer> {
  // `/held?name=NAME` answers only when the test releases NAME: a scrape lasts exactly as long as a
  // test needs it to, rather than a guessed number of milliseconds.
  const gates = new Map<string, { open: boolean; waiting: Set<() => void> }>();
  const gate = (name: string) => {
    let g = gates.get(name);
    if (!g) gates.set(name, (g = { open: false, waiting: new Set() }));
    return g;
  };
  const held: TargetHandler = (_req, res, url) => {
    const g = gate(url.searchParams.get('name') ?? '');
    const answer = () => {
      g.waiting.delete(answer);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('released');
    };
    if (g.open) return answer();
    g.waiting.add(answer);
    res.on('close', () => g.waiting.delete(answer));
  };
  const all: Record<string, TargetHandler> = { '/held': held, ...defaultRoutes, ...routes };
  const hits = new Map<string, number>();
  const lastRequest: TargetServer['lastRequest'] = new Map();
  const serve = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    lastRequest.set(url.pathname, { method: req.method ?? '', headers: req.headers, body: '' });
    const handler = all[url.pathname];
    if (!handler) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    try {
      await handler(req, res, url);
    } catch {
      res.destroy();
    }
  };
  const server = http.createServer((req, res) => void serve(req, res));
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://${host}:${port}`,
    hits,
    lastRequest,
    held: (name) => gate(name).waiting.size,
    release(name) {
      const g = gate(name);
      g.open = true;
      for (const answer of [...g.waiting]) answer();
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
