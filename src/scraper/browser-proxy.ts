import net from 'node:net';
import ipaddr from 'ipaddr.js';
import {
  addressCheck,
  BLOCKED_ERROR_CODE,
  checkHostBeforeConnect,
  guardedLookup,
  type GuardRefusal,
  type TargetPolicy,
} from './address-guard';

/** How long opening one upstream connection (name lookup included) may take, unless the caller says. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Tunnels open at once, unless the caller says. */
const MAX_TUNNELS = 512;
/** How long a client may take to send its greeting and CONNECT request. */
const HANDSHAKE_TIMEOUT_MS = 5_000;
/**
 * The most a handshake can be: a greeting (2 + 255 methods) and a request (4 + 1 + 255 + 2) sent
 * together. A client that sends more before its tunnel opens is not speaking SOCKS5.
 */
const MAX_HANDSHAKE_BYTES = 257 + 262;

/** RFC 1928 reply codes. */
const REPLY = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

export interface BrowserProxyOptions extends TargetPolicy {
  /** The built-in refused ranges; tests substitute their own (see test/target-guard.test.ts). */
  isBlockedAddress?: (address: string) => boolean;
  /** Hears of each connection the guard refused (for the operator's log). */
  onRefused?: (refusal: GuardRefusal) => void;
  /** How long opening one upstream connection may take (default 10 s). */
  connectTimeoutMs?: number;
  /** Most tunnels open at once (default 512); more are refused with SOCKS reply 0x01. */
  maxTunnels?: number;
}

export interface BrowserProxy {
  /** `socks5://127.0.0.1:<port>` — what Chromium's --proxy-server takes. */
  readonly url: string;
  readonly port: number;
  /** Tunnels open now (tests, metrics). */
  readonly openTunnels: number;
  /** Stops listening and destroys every client and upstream socket. */
  close(): Promise<void>;
}

/**
 * The Chromium switches that send all of a page's traffic through `proxy`: loopback too (Chromium
 * bypasses it by default), and WebRTC's UDP, which no SOCKS5 CONNECT carries, is not sent at all
 * (STUN and TURN over UDP went straight to any address without it).
 */
export function chromiumProxyArgs(proxy: Pick<BrowserProxy, 'url'>): string[] {
  return [
    `--proxy-server=${proxy.url}`,
    '--proxy-bypass-list=<-loopback>',
    '--webrtc-ip-handling-policy=disable_non_proxied_udp',
  ];
}

/** A CONNECT request: where the client wants a tunnel to. */
interface ConnectTarget {
  host: string;
  port: number;
}

/**
 * A SOCKS5 proxy (RFC 1928: no authentication, CONNECT only) on 127.0.0.1 that headless Chromium
 * sends all of its traffic through, so that a rendered page reaches only the addresses a scrape may
 * reach. Chromium sends host names to a socks5 proxy unresolved; they are resolved here, once, for
 * the connection itself (guardedLookup), and the address the upstream socket reached is judged
 * again, so a rebinding DNS server gains nothing.
 */
export async function startBrowserProxy(options: BrowserProxyOptions): Promise<BrowserProxy> {
  const isBlocked = addressCheck(options, options.isBlockedAddress);
  const lookup = isBlocked && guardedLookup(isBlocked, options.onRefused);
  const connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  const maxTunnels = options.maxTunnels ?? MAX_TUNNELS;
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let openTunnels = 0;

  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  /** A timer that close() clears if it is still pending. */
  const timer = (ms: number, onExpiry: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      onExpiry();
    }, ms);
    timers.add(t);
    return () => {
      clearTimeout(t);
      timers.delete(t);
    };
  };

  /** Refuses `host` before any connection when the guard says so; true when refused. */
  const refusedBeforeConnect = (target: ConnectTarget): boolean => {
    try {
      checkHostBeforeConnect(target.host, isBlocked);
      return false;
    } catch {
      options.onRefused?.({ hostname: target.host, addresses: net.isIP(target.host) ? [target.host] : [] });
      return true;
    }
  };

  const openTunnel = (client: net.Socket, target: ConnectTarget, early: Buffer) => {
    if (openTunnels >= maxTunnels) return reply(client, REPLY.generalFailure);
    if (refusedBeforeConnect(target)) return reply(client, REPLY.notAllowed);
    openTunnels++;
    const upstream = net.connect({ host: target.host, port: target.port, ...(lookup && { lookup }) });
    track(upstream);
    let connected = false;
    const cancelTimeout = timer(connectTimeoutMs, () => {
      upstream.destroy();
      reply(client, REPLY.hostUnreachable);
    });
    upstream.once('close', (hadError) => {
      openTunnels--;
      cancelTimeout();
      // Before the tunnel opened, every way here has replied already; this covers any other.
      if (!connected) reply(client, REPLY.generalFailure);
      else if (hadError) client.destroy();
      // The target closed after its last bytes: they may still be queued for the client.
      else closeAfterFlush(client);
    });
    client.once('close', () => upstream.destroy());
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) reply(client, replyFor(err));
      upstream.destroy();
    });
    upstream.once('connect', () => {
      cancelTimeout();
      const address = upstream.remoteAddress;
      // Defence in depth: judge the address the socket really reached (unknown counts as refused).
      if (isBlocked && (!address || isBlocked(address))) {
        options.onRefused?.({ hostname: target.host, addresses: [address ?? '(unknown)'] });
        upstream.destroy();
        return reply(client, REPLY.notAllowed);
      }
      connected = true;
      client.write(replyBytes(REPLY.succeeded, upstream.localAddress, upstream.localPort));
      if (early.length > 0) upstream.write(early);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  };

  const server = net.createServer((client) => {
    track(client);
    client.on('error', () => client.destroy());
    const cancelHandshakeTimeout = timer(HANDSHAKE_TIMEOUT_MS, () => client.destroy());
    client.once('close', cancelHandshakeTimeout);
    let buffered = Buffer.alloc(0);
    let greeted = false;
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length > MAX_HANDSHAKE_BYTES) return client.destroy();
      if (!greeted) {
        const methods = parseGreeting(buffered);
        if (methods === 'incomplete') return;
        // Only "no authentication" (0x00) is offered; a client that does not offer it is told so.
        if (methods === 'malformed' || !methods.includes(0x00)) {
          client.off('data', onData);
          if (methods === 'malformed') return client.destroy();
          return endWith(client, Buffer.from([0x05, 0xff]));
        }
        greeted = true;
        buffered = buffered.subarray(2 + methods.length);
        client.write(Buffer.from([0x05, 0x00]));
      }
      const request = parseRequest(buffered);
      if (request === 'incomplete') return;
      client.off('data', onData);
      client.pause();
      cancelHandshakeTimeout();
      if (typeof request === 'number') return reply(client, request);
      if (request === 'malformed') return client.destroy();
      openTunnel(client, request.target, buffered.subarray(request.length));
    };
    client.on('data', onData);
  });
  server.on('error', () => {});

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    url: `socks5://127.0.0.1:${port}`,
    port,
    get openTunnels() {
      return openTunnels;
    },
    async close() {
      const closed = [
        new Promise<void>((resolve) => server.close(() => resolve())),
        ...[...sockets].map((socket) => new Promise((resolve) => socket.once('close', resolve))),
      ];
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const socket of sockets) socket.destroy();
      await Promise.all(closed);
    },
  };
}

/** Sends a failure reply and closes the client. */
function reply(client: net.Socket, code: number): void {
  endWith(client, replyBytes(code));
}

/** Ends the client once what is queued for it is written, then closes it. */
function closeAfterFlush(client: net.Socket): void {
  if (client.destroyed) return;
  if (client.writableFinished) return void client.destroy();
  client.once('finish', () => client.destroy());
  if (!client.writableEnded) client.end();
}

/** Writes `bytes` as the client's last and closes it once they are flushed (the first call wins). */
function endWith(client: net.Socket, bytes: Buffer): void {
  if (client.destroyed || client.writableEnded) return;
  client.end(bytes, () => client.destroy());
}

/** A reply with the bound address (an IPv4 or IPv6 address; 0.0.0.0:0 when there is none). */
function replyBytes(code: number, address?: string, port = 0): Buffer {
  const parsed = address && ipaddr.isValid(address) ? ipaddr.parse(address) : ipaddr.parse('0.0.0.0');
  const bytes = parsed.toByteArray();
  const atyp = parsed.kind() === 'ipv4' ? 0x01 : 0x04;
  return Buffer.from([0x05, code, 0x00, atyp, ...bytes, port >> 8, port & 0xff]);
}

/** The methods a greeting offers (VER NMETHODS METHODS...). */
function parseGreeting(buf: Buffer): number[] | 'incomplete' | 'malformed' {
  if (buf.length < 2) return 'incomplete';
  if (buf[0] !== 0x05 || buf[1] === 0) return 'malformed';
  if (buf.length < 2 + buf[1]!) return 'incomplete';
  return [...buf.subarray(2, 2 + buf[1]!)];
}

/**
 * A request (VER CMD RSV ATYP DST.ADDR DST.PORT) and its length in bytes, or the reply code that
 * refuses it (a command other than CONNECT, an unknown address type).
 */
function parseRequest(
  buf: Buffer,
): { target: ConnectTarget; length: number } | number | 'incomplete' | 'malformed' {
  if (buf.length < 5) return 'incomplete';
  if (buf[0] !== 0x05 || buf[2] !== 0x00) return 'malformed';
  if (buf[1] !== 0x01) return REPLY.commandNotSupported;
  const atyp = buf[3];
  let host: string;
  let end: number;
  if (atyp === 0x01) {
    end = 4 + 4;
    if (buf.length < end + 2) return 'incomplete';
    host = [...buf.subarray(4, end)].join('.');
  } else if (atyp === 0x04) {
    end = 4 + 16;
    if (buf.length < end + 2) return 'incomplete';
    host = ipaddr.fromByteArray([...buf.subarray(4, end)]).toString();
  } else if (atyp === 0x03) {
    end = 5 + buf[4]!;
    if (buf.length < end + 2) return 'incomplete';
    host = buf.subarray(5, end).toString('latin1');
    if (host.length === 0) return 'malformed';
  } else {
    return REPLY.addressTypeNotSupported;
  }
  const port = buf.readUInt16BE(end);
  return { target: { host, port }, length: end + 2 };
}

/** The reply for an upstream connection that failed. */
function replyFor(err: NodeJS.ErrnoException): number {
  switch (err.code) {
    case BLOCKED_ERROR_CODE:
      return REPLY.notAllowed;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NODATA':
    case 'EHOSTUNREACH':
    case 'ETIMEDOUT':
      return REPLY.hostUnreachable;
    case 'ENETUNREACH':
      return REPLY.networkUnreachable;
    case 'ECONNREFUSED':
      return REPLY.connectionRefused;
    default:
      return REPLY.generalFailure;
  }
}
