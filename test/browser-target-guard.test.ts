import { BrowserEngine } from '../src/scraper/browser-engine';
import type { ScrapeRequest } from '../src/scraper/scrape-request';
import { CHROMIUM } from './helpers/chromium';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { fakeDns, PUBLIC_AND_PRIVATE_NAMES } from './helpers/fake-dns';

// Loopback stands in for the internet here, as in target-guard.test.ts: 127.0.0.1 plays a public
// address and 127.0.0.2 a private one, with the private-target switch off, so every request the
// rendered page makes goes through the real guard in the browser's proxy without leaving the machine.
const policy = (address: string) => address !== '127.0.0.1';

let publicTarget: TargetServer;
let privateTarget: TargetServer;
let engine: BrowserEngine;
const refusals: string[] = [];

const request = (url: string, extra: Partial<ScrapeRequest> = {}): ScrapeRequest => ({
  url,
  method: 'GET',
  headers: {},
  timeout: 20,
  follow_redirects: true,
  format: 'raw',
  mode: 'browser',
  js_rendering: true,
  ...extra,
});

beforeAll(async () => {
  privateTarget = await startTargetServer({}, '127.0.0.2');
  const privatePort = new URL(privateTarget.origin).port;
  publicTarget = await startTargetServer({
    // Every way a page can make the browser connect somewhere else, each to a private address, a
    // name that resolves to one, the metadata address, or a localhost name.
    '/hostile': (_req, res) => {
      const p = privatePort;
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><html><body><h1>hostile page</h1>
<img src="http://127.0.0.2:${p}/img">
<img src="http://private.test:${p}/by-name">
<img src="http://169.254.169.254/latest/meta-data/">
<link rel="stylesheet" href="http://[::ffff:127.0.0.2]:${p}/mapped">
<iframe src="http://127.0.0.2:${p}/frame"></iframe>
<script>
  const tries = [
    fetch('http://127.0.0.2:${p}/fetch').catch(() => 'refused'),
    fetch('http://private.test:${p}/fetch-by-name').catch(() => 'refused'),
    fetch('http://localhost:${new URL(publicOrigin()).port}/via-localhost').catch(() => 'refused'),
    new Promise((resolve) => {
      const ws = new WebSocket('ws://127.0.0.2:${p}/ws');
      ws.onerror = ws.onclose = () => resolve('refused');
    }),
    new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open('GET', 'http://127.0.0.2:${p}/xhr');
      xhr.onloadend = () => resolve('done');
      xhr.send();
    }),
  ];
  Promise.all(tries).then(() => { const done = document.createElement('p'); done.id = 'tried'; done.textContent = 'all tried'; document.body.append(done); });
</script></body></html>`);
    },
    // 2 MiB of text written by script: over the engine's 1 MiB cap only once rendered.
    '/grows': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        `<!doctype html><body><script>document.body.textContent = 'x'.repeat(2 * 1024 * 1024);</script></body>`,
      );
    },
    '/download': (_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-disposition': 'attachment; filename="payload.bin"',
      });
      res.end(Buffer.alloc(1024));
    },
    '/to-private': (_req, res) => {
      res.writeHead(302, { location: `${privateTarget.origin}/page` });
      res.end();
    },
  });
  // A resolver that knows two names: one public, one private (as a rebinding attacker would serve).
  fakeDns(PUBLIC_AND_PRIVATE_NAMES);
  engine = new BrowserEngine({
    allowPrivateTargets: false,
    isBlockedAddress: policy,
    chromiumPath: CHROMIUM,
    sandbox: false,
    concurrency: 2,
    maxBodyBytes: 1024 * 1024,
    onRefused: (refusal) => refusals.push(refusal.hostname),
  });
}, 60_000);
afterAll(async () => {
  await engine?.close();
  jest.restoreAllMocks();
  await publicTarget?.close();
  await privateTarget?.close();
});

const publicOrigin = () => publicTarget.origin;
const render = (req: ScrapeRequest) =>
  engine.render(req, {
    deadline: performance.now() + req.timeout * 1000,
    owner: 'key',
    trigger: 'requested',
  });

test("a page's images, stylesheet, iframe, fetch, XHR and WebSocket to private addresses are never connected", async () => {
  const page = await render(
    request(`http://public.test:${new URL(publicTarget.origin).port}/hostile`, { wait_for: '#tried' }),
  );
  expect(page.content).toContain('hostile page');
  expect(page.content).toContain('all tried');
  expect(publicTarget.hits.get('/hostile')).toBe(1);
  expect(publicTarget.hits.get('/via-localhost') ?? 0).toBe(0);
  expect([...privateTarget.hits.keys()]).toEqual([]);
  // The refusals by name reach the operator's log (the literal addresses never get a connection to refuse).
  expect(refusals).toContain('private.test');
});

test('a redirect of the page itself to a private address is refused, and not connected', async () => {
  await expect(render(request(`${publicTarget.origin}/to-private`))).rejects.toMatchObject({
    code: 'TARGET_UNREACHABLE',
  });
  expect(privateTarget.hits.size).toBe(0);
});

test('a page on a name that resolves to a private address is refused in the words of a name that does not resolve', async () => {
  await expect(
    render(request(`http://private.test:${new URL(privateTarget.origin).port}/page`)),
  ).rejects.toMatchObject({
    code: 'TARGET_UNREACHABLE',
    message:
      'The target could not be reached: its host name did not resolve to an address that can be connected to.',
  });
  expect(privateTarget.hits.size).toBe(0);
});

test.each([
  ['http://127.0.0.2/page'],
  ['http://localhost/page'],
  ['http://169.254.169.254/latest/meta-data/'],
])(
  'the address %s written in the URL is refused before the browser starts a request (TARGET_BLOCKED)',
  async (url) => {
    await expect(render(request(url))).rejects.toMatchObject({ code: 'TARGET_BLOCKED' });
  },
);

test('a download is refused', async () => {
  await expect(render(request(`${publicTarget.origin}/download`))).rejects.toMatchObject({
    code: 'TARGET_PROTOCOL_ERROR',
    message: 'The page is a download; the browser refuses downloads.',
  });
});

test('a rendered page larger than the body cap fails with TARGET_TOO_LARGE', async () => {
  await expect(render(request(`${publicTarget.origin}/grows`))).rejects.toMatchObject({
    code: 'TARGET_TOO_LARGE',
  });
});
