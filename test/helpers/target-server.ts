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
  const all = { ...defaultRoutes, ...routes };
  const hits = new Map<string, number>();
  const lastRequest: TargetServer['lastRequest'] = new Map();
  const server = http.createServer(async (req, res) => {
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
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://${host}:${port}`,
    hits,
    lastRequest,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
