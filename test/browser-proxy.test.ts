import dgram from 'node:dgram';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { chromium, type Browser } from 'playwright-core';
import type { GuardRefusal } from '../src/scraper/address-guard';
import {
  chromiumProxyArgs,
  startBrowserProxy,
  type BrowserProxy,
  type BrowserProxyOptions,
} from '../src/scraper/browser-proxy';
import { CHROMIUM } from './helpers/chromium';
import { freePort } from './helpers/free-port';
import { waitFor } from './helpers/wait';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { fakeDns, PUBLIC_AND_PRIVATE_NAMES } from './helpers/fake-dns';

// Loopback stands in for the internet here, as in test/target-guard.test.ts: 127.0.0.1 plays a
// public address and every other address a private one, so every check runs for real on this machine.
const isBlockedAddress = (address: string) => address !== '127.0.0.1';
const guarded = { allowPrivateTargets: false, isBlockedAddress } satisfies BrowserProxyOptions;

// A resolver that knows four names: one public, one private (as a rebinding attacker would serve),
// one that does not resolve and one whose answer never comes. Other names go to the real resolver.
beforeAll(() => {
  fakeDns({ ...PUBLIC_AND_PRIVATE_NAMES, 'missing.test': 'missing', 'hanging.test': 'hanging' });
});
afterAll(() => jest.restoreAllMocks());

/** A TCP server that counts the connections it was opened and closes each at once. */
interface CountingServer {
  port: number;
  connections: number;
  close(): Promise<void>;
}

async function startCountingServer(host: string): Promise<CountingServer> {
  const counted = { connections: 0 };
  const server = net.createServer((socket) => {
    counted.connections++;
    socket.on('error', () => {});
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return Object.assign(counted, {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

/** The destination of a SOCKS5 CONNECT: an IPv4 or IPv6 address, or a name. */
type Destination = { ipv4: string } | { ipv6: string } | { name: string };

function requestBytes(destination: Destination, port: number): Buffer {
  const portBytes = [port >> 8, port & 0xff];
  if ('ipv4' in destination)
    return Buffer.from([0x05, 0x01, 0x00, 0x01, ...destination.ipv4.split('.').map(Number), ...portBytes]);
  if ('ipv6' in destination)
    return Buffer.from([
      0x05,
      0x01,
      0x00,
      0x04,
      ...ipaddr.parse(destination.ipv6).toByteArray(),
      ...portBytes,
    ]);
  const name = Buffer.from(destination.name, 'latin1');
  return Buffer.from([0x05, 0x01, 0x00, 0x03, name.length, ...name, ...portBytes]);
}

/** A raw SOCKS5 client: a socket, the bytes it has received, and a wait for more. */
class RawSocksClient {
  readonly socket: net.Socket;
  private received = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  readonly closed: Promise<void>;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('error', () => {});
    this.socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.wake();
    });
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    void this.closed.then(() => this.wake());
  }

  private wake() {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** The next `n` bytes, or fewer when the socket closes first. */
  async read(n: number): Promise<Buffer> {
    while (this.received.length < n && !this.socket.destroyed)
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    const bytes = this.received.subarray(0, n);
    this.received = this.received.subarray(bytes.length);
    return bytes;
  }

  /** Everything until the socket closes. */
  async readToEnd(): Promise<string> {
    await this.closed;
    return this.received.toString();
  }

  /** Greets (no authentication) and asks for a tunnel; the reply code, or undefined when none came. */
  async connect(destination: Destination, port: number): Promise<number | undefined> {
    this.socket.write(Buffer.from([0x05, 0x01, 0x00]));
    const choice = await this.read(2);
    if (choice.length < 2 || choice[1] !== 0x00) return undefined;
    this.socket.write(requestBytes(destination, port));
    const head = await this.read(4);
    if (head.length < 4) return undefined;
    await this.read(head[3] === 0x04 ? 16 + 2 : 4 + 2);
    return head[1];
  }
}

const httpGet = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;

describe('the browser proxy opens tunnels only to allowed addresses', () => {
  let proxy: BrowserProxy;
  let publicTarget: TargetServer;
  let privateTarget: CountingServer;
  const refusals: GuardRefusal[] = [];
  const LARGE_BODY_BYTES = 2 * 1024 * 1024;
  let largeSent = false;
  const clients: RawSocksClient[] = [];
  const client = () => {
    const c = new RawSocksClient(proxy.port);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    publicTarget = await startTargetServer({
      '/large': (_req, res) => {
        res.writeHead(200, { 'content-length': LARGE_BODY_BYTES, connection: 'close' });
        res.end(Buffer.alloc(LARGE_BODY_BYTES, 'x'), () => (largeSent = true));
      },
    });
    privateTarget = await startCountingServer('127.0.0.2');
    proxy = await startBrowserProxy({ ...guarded, onRefused: (r) => refusals.push(r) });
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.socket.destroy();
    refusals.length = 0;
  });
  afterAll(async () => {
    await proxy?.close();
    await publicTarget?.close();
    await privateTarget?.close();
  });
  const publicPort = () => Number(new URL(publicTarget.origin).port);

  test('an allowed IPv4 address is tunnelled, with data both ways', async () => {
    const c = client();
    expect(await c.connect({ ipv4: '127.0.0.1' }, publicPort())).toBe(0x00);
    c.socket.write(httpGet('/plain'));
    const response = await c.readToEnd();
    expect(response).toMatch(/^HTTP\/1\.1 200/);
    expect(response).toContain('just text');
  });

  test('a body the target sent before closing reaches whole a client that reads it later', async () => {
    const c = client();
    expect(await c.connect({ ipv4: '127.0.0.1' }, publicPort())).toBe(0x00);
    c.socket.pause();
    c.socket.write(httpGet('/large'));
    // The target has written all of it (into the buffers between it and the paused client) and the
    // proxy has seen the target close.
    await waitFor(() => largeSent && proxy.openTunnels === 0, { what: 'the target to finish its answer' });
    c.socket.resume();
    const response = await c.readToEnd();
    expect(response.length - response.indexOf('\r\n\r\n') - 4).toBe(LARGE_BODY_BYTES);
  });

  test('a name that resolves to an allowed address is resolved by the proxy and tunnelled', async () => {
    const c = client();
    expect(await c.connect({ name: 'public.test' }, publicPort())).toBe(0x00);
    c.socket.write(httpGet('/plain'));
    expect(await c.readToEnd()).toContain('just text');
  });

  test('a blocked address literal is refused with 0x02 and the target sees no connection', async () => {
    const c = client();
    expect(await c.connect({ ipv4: '127.0.0.2' }, privateTarget.port)).toBe(0x02);
    await c.closed;
    expect(privateTarget.connections).toBe(0);
    expect(refusals).toEqual([{ hostname: '127.0.0.2', addresses: ['127.0.0.2'] }]);
  });

  test('a blocked IPv6 address literal is refused with 0x02', async () => {
    const c = client();
    expect(await c.connect({ ipv6: '::1' }, publicPort())).toBe(0x02);
    await c.closed;
  });

  test('a blocked address spelled as a name is refused with 0x02', async () => {
    const c = client();
    expect(await c.connect({ name: '127.0.0.2' }, privateTarget.port)).toBe(0x02);
    expect(privateTarget.connections).toBe(0);
  });

  test('a name that resolves only to a blocked address is refused with 0x02 and the target sees no connection', async () => {
    const c = client();
    expect(await c.connect({ name: 'private.test' }, privateTarget.port)).toBe(0x02);
    await c.closed;
    expect(privateTarget.connections).toBe(0);
    expect(refusals).toEqual([{ hostname: 'private.test', addresses: ['127.0.0.2'] }]);
  });

  test.each(['localhost', 'LOCALHOST.', 'api.localhost'])(
    'the name %s is refused with 0x02',
    async (name) => {
      const c = client();
      expect(await c.connect({ name }, publicPort())).toBe(0x02);
      await c.closed;
    },
  );

  test('a name that does not resolve answers 0x04', async () => {
    expect(await client().connect({ name: 'missing.test' }, publicPort())).toBe(0x04);
  });

  test('a port nothing listens on answers 0x05', async () => {
    expect(await client().connect({ ipv4: '127.0.0.1' }, await freePort())).toBe(0x05);
  });

  test('a command other than CONNECT answers 0x07', async () => {
    const c = client();
    c.socket.write(Buffer.from([0x05, 0x01, 0x00]));
    await c.read(2);
    c.socket.write(Buffer.from([0x05, 0x02, 0x00, 0x01, 127, 0, 0, 1, 0, 80]));
    expect((await c.read(2))[1]).toBe(0x07);
    await c.closed;
  });

  test('a client that offers no "no authentication" method is told no method is acceptable', async () => {
    const c = client();
    c.socket.write(Buffer.from([0x05, 0x01, 0x02]));
    expect([...(await c.read(2))]).toEqual([0x05, 0xff]);
    await c.closed;
  });

  test('a greeting that is not SOCKS5 is closed without an answer', async () => {
    const c = client();
    c.socket.write(httpGet('/'));
    expect(await c.readToEnd()).toBe('');
  });

  test('a client that sends nothing is dropped', async () => {
    const c = client();
    await c.closed;
    expect(proxy.openTunnels).toBe(0);
  });
});

describe('the browser proxy under its policy', () => {
  let privateTarget: TargetServer;
  beforeAll(async () => {
    privateTarget = await startTargetServer({}, '127.0.0.2');
  });
  afterAll(async () => {
    await privateTarget?.close();
  });
  const privatePort = () => Number(new URL(privateTarget.origin).port);

  test('with private targets allowed, a private address is tunnelled', async () => {
    const proxy = await startBrowserProxy({ allowPrivateTargets: true, isBlockedAddress });
    const c = new RawSocksClient(proxy.port);
    try {
      expect(await c.connect({ name: 'private.test' }, privatePort())).toBe(0x00);
      c.socket.write(httpGet('/plain'));
      expect(await c.readToEnd()).toContain('just text');
    } finally {
      c.socket.destroy();
      await proxy.close();
    }
  });

  test("with private targets allowed, the operator's blocked ranges are still refused", async () => {
    const blockedTarget = await startCountingServer('127.0.0.2');
    const proxy = await startBrowserProxy({
      allowPrivateTargets: true,
      blockedTargets: ['127.0.0.2/32'],
      isBlockedAddress,
    });
    const byName = new RawSocksClient(proxy.port);
    const byAddress = new RawSocksClient(proxy.port);
    try {
      expect(await byName.connect({ name: 'private.test' }, blockedTarget.port)).toBe(0x02);
      expect(await byAddress.connect({ ipv4: '127.0.0.2' }, blockedTarget.port)).toBe(0x02);
      expect(blockedTarget.connections).toBe(0);
    } finally {
      byName.socket.destroy();
      byAddress.socket.destroy();
      await proxy.close();
      await blockedTarget.close();
    }
  });
});

describe('the browser proxy bounds its tunnels', () => {
  let target: TargetServer;
  beforeAll(async () => {
    target = await startTargetServer();
  });
  afterAll(async () => {
    await target?.close();
  });
  const port = () => Number(new URL(target.origin).port);

  test('past maxTunnels a request is refused with 0x01, and a closed tunnel frees its place', async () => {
    const proxy = await startBrowserProxy({ ...guarded, maxTunnels: 1 });
    const first = new RawSocksClient(proxy.port);
    const second = new RawSocksClient(proxy.port);
    const third = new RawSocksClient(proxy.port);
    try {
      expect(await first.connect({ ipv4: '127.0.0.1' }, port())).toBe(0x00);
      expect(proxy.openTunnels).toBe(1);
      expect(await second.connect({ ipv4: '127.0.0.1' }, port())).toBe(0x01);
      first.socket.destroy();
      await waitFor(() => proxy.openTunnels === 0, { what: 'the closed tunnel to be counted out' });
      expect(await third.connect({ ipv4: '127.0.0.1' }, port())).toBe(0x00);
    } finally {
      for (const c of [first, second, third]) c.socket.destroy();
      await proxy.close();
    }
  });

  test('an upstream connection that does not open within connectTimeoutMs answers 0x04', async () => {
    const proxy = await startBrowserProxy({ ...guarded, connectTimeoutMs: 100 });
    const c = new RawSocksClient(proxy.port);
    try {
      expect(await c.connect({ name: 'hanging.test' }, port())).toBe(0x04);
      await c.closed;
      await waitFor(() => proxy.openTunnels === 0, { what: 'the abandoned connection to be counted out' });
    } finally {
      c.socket.destroy();
      await proxy.close();
    }
  });

  test('close() ends every tunnel and stops listening', async () => {
    const proxy = await startBrowserProxy(guarded);
    const tunnel = new RawSocksClient(proxy.port);
    const idle = new RawSocksClient(proxy.port);
    expect(await tunnel.connect({ ipv4: '127.0.0.1' }, port())).toBe(0x00);
    // A request the target holds keeps the upstream socket busy while the proxy closes.
    tunnel.socket.write(httpGet('/held?name=close'));
    await waitFor(() => target.held('close') === 1, { what: 'the request to reach the target' });
    await proxy.close();
    await Promise.all([tunnel.closed, idle.closed]);
    await waitFor(() => target.held('close') === 0, { what: 'the upstream socket to close' });
    expect(proxy.openTunnels).toBe(0);
    const refused = net.connect(proxy.port, '127.0.0.1');
    await expect(
      new Promise((resolve, reject) => refused.once('connect', resolve).once('error', reject)),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});

describe('Chromium through the browser proxy', () => {
  let proxy: BrowserProxy;
  let browser: Browser;
  let publicTarget: TargetServer;
  let privateTarget: CountingServer;
  const refusals: GuardRefusal[] = [];

  beforeAll(async () => {
    privateTarget = await startCountingServer('127.0.0.2');
    const privateBy = (host: string) => `http://${host}:${privateTarget.port}`;
    publicTarget = await startTargetServer({
      // A page that reaches for the private server every way a page can.
      '/reaching': (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(`<!doctype html><title>Reaching page</title>
<img src="${privateBy('private.test')}/by-name.png">
<img src="${privateBy('127.0.0.2')}/by-address.png">
<link rel="stylesheet" href="${privateBy('localhost')}/by-localhost.css">
<iframe src="/redirect?to=${encodeURIComponent(privateBy('private.test') + '/framed')}"></iframe>
<img src="/pixel.png">
<script>
  window.reached = Promise.allSettled([
    fetch('${privateBy('private.test')}/fetched'),
    new Promise((resolve, reject) => {
      const ws = new WebSocket('ws://private.test:${privateTarget.port}/socket');
      ws.onopen = resolve;
      ws.onerror = reject;
    }),
  ]).then((outcomes) => outcomes.map((o) => o.status));
</script>`);
      },
      '/pixel.png': (_req, res) => {
        res.writeHead(200, { 'content-type': 'image/png' });
        res.end();
      },
    });
    proxy = await startBrowserProxy({ ...guarded, onRefused: (r) => refusals.push(r) });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      chromiumSandbox: false,
      args: chromiumProxyArgs(proxy),
    });
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await publicTarget?.close();
    await privateTarget?.close();
  });

  test('a page named by a name only the proxy can resolve loads: Chromium sends names, not addresses', async () => {
    // public.test resolves only in this process (the mocked resolver): Chromium cannot resolve it.
    const page = await browser.newPage();
    try {
      const response = await page.goto(`http://public.test:${new URL(publicTarget.origin).port}/page`);
      expect(response?.status()).toBe(200);
      expect(await page.title()).toBe('Sample page');
    } finally {
      await page.close();
    }
  });

  test('a page on an allowed address loads and none of its reaches for a private address connects', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${publicTarget.origin}/reaching`, { waitUntil: 'load' });
      expect(await page.title()).toBe('Reaching page');
      expect(await page.evaluate(() => (globalThis as any).reached)).toEqual(['rejected', 'rejected']);
      expect(publicTarget.hits.get('/pixel.png')).toBe(1);
      expect(publicTarget.hits.get('/redirect')).toBe(1);
      expect(privateTarget.connections).toBe(0);
      const refusedHosts = new Set(refusals.map((r) => r.hostname));
      expect(refusedHosts).toEqual(new Set(['private.test', '127.0.0.2', 'localhost']));
    } finally {
      await page.close();
    }
  });

  test("a page's WebRTC sends no UDP to a private address", async () => {
    const stun = dgram.createSocket('udp4');
    let packets = 0;
    stun.on('message', () => packets++);
    await new Promise<void>((resolve) => stun.bind(0, '127.0.0.2', resolve));
    const page = await browser.newPage();
    try {
      await page.goto(`${publicTarget.origin}/page`);
      const candidates = await page.evaluate(async (port) => {
        const pc = new (globalThis as any).RTCPeerConnection({
          iceServers: [{ urls: `stun:127.0.0.2:${port}` }],
        });
        pc.createDataChannel('probe');
        await pc.setLocalDescription(await pc.createOffer());
        // ICE gathering ends (complete) once every server was tried or none may be.
        await new Promise<void>((resolve) => {
          if (pc.iceGatheringState === 'complete') return resolve();
          pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
        });
        pc.close();
        return 'gathered';
      }, stun.address().port);
      expect(candidates).toBe('gathered');
      expect(packets).toBe(0);
    } finally {
      await page.close();
      stun.close();
    }
  });
});
