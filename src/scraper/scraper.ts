import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { Agent, buildConnector, request, type Dispatcher } from 'undici';
import { causes, ScrapeFailure } from '../errors';
import {
  BLOCKED_ERROR_CODE,
  blockedTarget,
  checkHostBeforeConnect,
  guardedLookup,
  isBlockedAddress,
} from './address-guard';
import { renderContent } from './formats';
import type { BudgetHold } from './memory-budget';
import type { ScrapedPage, ScrapeRequest } from './scrape-request';

export const MAX_REDIRECTS = 10;
const CONNECT_TIMEOUT_MS = 10_000;
const MAX_RESPONSE_HEADER_BYTES = 64 * 1024;
/**
 * What a body reserves from the memory budget before it is read when it does not announce its
 * length, and the step by which a reservation grows as decoded bytes pass it (each step may wait).
 */
const BUDGET_STEP = 64 * 1024;
/**
 * Bytes a response may buffer in the process before its body is read (socket and body stream
 * each; undici's default is 64 KiB). Bodies waiting for the memory budget keep this much each, so
 * it is kept small: with many large pages in flight it is most of a worker's memory
 * (docs/performance.md).
 */
const READ_AHEAD_BYTES = 16 * 1024;

// Hop-by-hop headers and ones the client library must own (RFC 9110 §7.6.1); never forwarded.
const NOT_FORWARDED = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'accept-encoding',
  'expect',
]);
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
// Credentials the client meant for the first origin; never carried to another one by a redirect.
const ORIGIN_BOUND = new Set(['authorization', 'cookie', 'proxy-authorization']);

export interface ScraperOptions {
  allowPrivateTargets: boolean;
  maxBodyBytes: number;
  userAgent?: string;
  /** Which addresses are refused; tests substitute their own to exercise every check on loopback. */
  isBlockedAddress?: (address: string) => boolean;
}

/**
 * Fetches pages with undici through one connection pool per process. Each scrape is bounded in
 * time (its `timeout` covers connect, redirects and body), in size (decoded bytes, so compression
 * bombs stop at the cap) and in where it may connect (address guard on every hop and on the
 * socket actually opened).
 */
export class Scraper {
  readonly #agent: Agent;

  readonly #isBlocked: (address: string) => boolean;

  constructor(private readonly options: ScraperOptions) {
    const isBlocked = (this.#isBlocked = options.isBlockedAddress ?? isBlockedAddress);
    const baseConnect = buildConnector({
      timeout: CONNECT_TIMEOUT_MS,
      highWaterMark: READ_AHEAD_BYTES,
      ...(options.allowPrivateTargets ? {} : { lookup: guardedLookup(isBlocked) }),
    } as buildConnector.BuildOptions);
    const connect: buildConnector.connector = (opts, callback) =>
      baseConnect(opts, (err, socket) => {
        if (err || !socket) return callback(err ?? new Error('connect failed'), null);
        // Defence in depth: judge the address the socket really reached (unknown counts as refused).
        if (!options.allowPrivateTargets && (!socket.remoteAddress || isBlocked(socket.remoteAddress))) {
          socket.destroy();
          const blocked: NodeJS.ErrnoException = new Error(
            `connected address ${socket.remoteAddress ?? '(unknown)'} is not allowed`,
          );
          blocked.code = BLOCKED_ERROR_CODE;
          return callback(blocked, null);
        }
        callback(null, socket);
      });
    this.#agent = new Agent({ connect, maxHeaderSize: MAX_RESPONSE_HEADER_BYTES, keepAliveTimeout: 10_000 });
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  /**
   * Scrapes one page. Resolves with the page (any target status) or rejects with a ScrapeFailure.
   * With `hold`, the body's decoded bytes (and a rendered copy) are read only as they fit the memory
   * budget (see MemoryBudget for the rules); the caller releases the hold when it no longer keeps
   * the page.
   */
  async scrape(req: ScrapeRequest, signal?: AbortSignal, hold?: BudgetHold): Promise<ScrapedPage> {
    const deadline = AbortSignal.timeout(req.timeout * 1000);
    const abort = signal ? AbortSignal.any([deadline, signal]) : deadline;
    try {
      // Other pages' bodies must not make this scrape time out: all its waits for the budget
      // together end half its timeout after it began. (Half of what is left at each wait would add
      // up, over a growing body's many 64 KiB steps, to the whole deadline.)
      const stopWaitingAt = performance.now() + (req.timeout * 1000) / 2;
      const waitAtMostMs = () => Math.max(0, stopWaitingAt - performance.now());
      return await this.#follow(req, abort, hold && { hold, waitAtMostMs });
    } catch (err) {
      throw toScrapeFailure(err, deadline.aborted, req.timeout);
    }
  }

  async #follow(
    req: ScrapeRequest,
    signal: AbortSignal,
    budget: BodyBudget | undefined,
  ): Promise<ScrapedPage> {
    const firstOrigin = new URL(req.url).origin;
    let url = new URL(req.url);
    let method: string = req.method;
    let body = req.body;
    for (let hop = 0; ; hop++) {
      if (!this.options.allowPrivateTargets) checkHostBeforeConnect(url.hostname, this.#isBlocked);
      const response = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers: this.#outgoingHeaders(req.headers, body, url.origin === firstOrigin),
        body,
        signal,
        dispatcher: this.#agent,
        highWaterMark: READ_AHEAD_BYTES,
        headersTimeout: req.timeout * 1000,
        bodyTimeout: req.timeout * 1000,
      });
      const location = response.headers.location;
      if (
        req.follow_redirects &&
        REDIRECT_STATUSES.has(response.statusCode) &&
        typeof location === 'string'
      ) {
        discard(response.body); // a redirect's body is never read, however long it is
        if (hop >= MAX_REDIRECTS) {
          throw new ScrapeFailure('TOO_MANY_REDIRECTS', `Stopped after ${MAX_REDIRECTS} redirects.`);
        }
        const next = URL.parse(location, url.href);
        if (!next)
          throw new ScrapeFailure('TARGET_PROTOCOL_ERROR', 'The target redirected to an invalid URL.');
        url = next;
        if (url.protocol !== 'http:' && url.protocol !== 'https:') {
          throw new ScrapeFailure('TARGET_PROTOCOL_ERROR', `Redirect to unsupported scheme ${url.protocol}`);
        }
        // 303 always, and 301/302 after a POST, continue as GET without a body (as browsers do).
        if (
          response.statusCode === 303 ||
          ((response.statusCode === 301 || response.statusCode === 302) && method === 'POST')
        ) {
          method = method === 'HEAD' ? 'HEAD' : 'GET';
          body = undefined;
        }
        continue;
      }
      const bytes = method === 'HEAD' ? Buffer.alloc(0) : await this.#readBody(response, signal, budget);
      const headers = flattenHeaders(response.headers);
      const text = decodeBody(bytes, headers['content-type']);
      const content = renderContent(text, headers['content-type'], req.format);
      if (budget && content !== text) {
        // Text or markdown is a second copy of the page, held with it until the result is stored.
        await budget.hold.reserveTo(
          budget.hold.heldBytes + Buffer.byteLength(content),
          signal,
          budget.waitAtMostMs(),
        );
      }
      return {
        content,
        status_code: response.statusCode,
        headers,
        final_url: url.toString(),
      };
    }
  }

  #outgoingHeaders(
    clientHeaders: Record<string, string>,
    body: string | undefined,
    sameOrigin: boolean,
  ): Record<string, string> {
    // Headers the client's own Connection header names are hop-by-hop too (RFC 9110 §7.6.1).
    const connectionListed = new Set(
      Object.entries(clientHeaders)
        .filter(([name]) => name.toLowerCase() === 'connection')
        .flatMap(([, value]) => value.split(',').map((token) => token.trim().toLowerCase())),
    );
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(clientHeaders)) {
      const lower = name.toLowerCase();
      if (NOT_FORWARDED.has(lower) || connectionListed.has(lower)) continue;
      if (!sameOrigin && ORIGIN_BOUND.has(lower)) continue;
      headers[name] = value;
    }
    const has = (name: string) => Object.keys(headers).some((h) => h.toLowerCase() === name);
    if (!has('user-agent')) headers['user-agent'] = this.options.userAgent ?? 'omniscrape/0.1';
    if (!has('accept'))
      headers['accept'] = 'text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8';
    if (body !== undefined && !has('content-type')) headers['content-type'] = 'text/plain; charset=utf-8';
    headers['accept-encoding'] = 'gzip, deflate, br';
    return headers;
  }

  /** Reads the body, decompressing it, and fails as soon as the decoded size passes the cap. */
  async #readBody(
    response: Dispatcher.ResponseData,
    signal: AbortSignal,
    budget: BodyBudget | undefined,
  ): Promise<Buffer> {
    const hold = budget?.hold;
    const cap = this.options.maxBodyBytes;
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > cap) {
      discard(response.body);
      throw tooLarge(cap);
    }
    if (hold) {
      try {
        await hold.reserveTo(
          Number.isFinite(declared) ? declared : BUDGET_STEP,
          signal,
          budget!.waitAtMostMs(),
        );
      } catch (err) {
        discard(response.body);
        throw err;
      }
    }
    const encoding = String(response.headers['content-encoding'] ?? '')
      .trim()
      .toLowerCase();
    const decoder = createDecoder(encoding);
    const source: Readable = decoder ? response.body.pipe(decoder) : response.body;
    if (decoder) response.body.on('error', (err) => decoder.destroy(err));
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of source) {
        size += (chunk as Buffer).length;
        if (size > cap) throw tooLarge(cap);
        chunks.push(chunk as Buffer);
        if (hold && size > hold.heldBytes) {
          // Decoded bytes past the reservation wait for the budget like a new body: meanwhile
          // nothing more is read, so the decoder and then the socket stop (TCP holds the rest).
          await hold.reserveTo(
            Math.min(cap, Math.ceil(size / BUDGET_STEP) * BUDGET_STEP),
            signal,
            budget!.waitAtMostMs(),
          );
        }
        if (signal.aborted) throw signal.reason;
      }
    } catch (err) {
      // Release the connection now rather than at the deadline.
      discard(response.body);
      decoder?.destroy();
      throw err;
    }
    return Buffer.concat(chunks, size);
  }
}

/** A scrape's memory budget reservation, and how long it may wait for the budget right now. */
interface BodyBudget {
  hold: BudgetHold;
  waitAtMostMs: () => number;
}

/** Drops a body we will not read; the abort error that destroying it raises is expected. */
function discard(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

function createDecoder(encoding: string): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | undefined {
  switch (encoding) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip();
    case 'deflate':
      return zlib.createInflate();
    case 'br':
      return zlib.createBrotliDecompress();
    default:
      return undefined; // identity, or an encoding we did not ask for: passed through as bytes
  }
}

function tooLarge(cap: number): ScrapeFailure {
  return new ScrapeFailure('TARGET_TOO_LARGE', `The target's body is larger than the ${cap}-byte cap.`);
}

function flattenHeaders(headers: Dispatcher.ResponseData['headers']): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return flat;
}

/**
 * Decodes with the declared charset (header, else <meta>), falling back to UTF-8; never throws.
 * NUL characters come out as U+FFFD, as browsers show them: Postgres text and jsonb cannot store
 * NUL, and a page with one must be stored like any other.
 */
function decodeBody(bytes: Buffer, contentType: string | undefined): string {
  const declared =
    /charset\s*=\s*"?([\w.:-]+)/i.exec(contentType ?? '')?.[1] ??
    /<meta[^>]+charset\s*=\s*["']?([\w.:-]+)/i.exec(bytes.subarray(0, 2048).toString('latin1'))?.[1];
  let text: string;
  try {
    text = new TextDecoder(declared ?? 'utf-8').decode(bytes);
  } catch {
    // A charset label TextDecoder does not know (a page's typo, an exotic encoding): read as UTF-8.
    text = new TextDecoder('utf-8').decode(bytes);
  }
  return text.includes('\0') ? text.replaceAll('\0', '\uFFFD') : text;
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'ECONNABORTED',
]);
const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);
const PROTOCOL_CODES = new Set([
  'UND_ERR_HEADERS_OVERFLOW',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_EXCEEDED_MAX_SIZE',
  'UND_ERR_INVALID_ARG',
  'Z_DATA_ERROR',
  'Z_BUF_ERROR',
  'ERR_TRAILING_JUNK_AFTER_STREAM_END',
]);

/** Maps whatever a scrape threw to one of the documented failure codes. */
function toScrapeFailure(err: unknown, deadlinePassed: boolean, timeoutSeconds: number): ScrapeFailure {
  if (err instanceof ScrapeFailure) return err;
  const codes: string[] = [];
  for (const e of causes(err)) {
    if (typeof e.code === 'string') codes.push(e.code);
    if (e.name === 'HTTPParserError') codes.push('HPE_PARSER'); // undici's parser errors carry no code
  }
  const message = err instanceof Error ? err.message : String(err);
  if (codes.includes(BLOCKED_ERROR_CODE)) return blockedTarget('address');
  if (deadlinePassed || codes.some((c) => TIMEOUT_CODES.has(c))) {
    return new ScrapeFailure('TARGET_TIMEOUT', `The target did not answer within ${timeoutSeconds} s.`);
  }
  if (
    codes.some(
      (c) =>
        c.startsWith('ERR_TLS') || c.startsWith('ERR_SSL') || /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(c),
    )
  ) {
    return new ScrapeFailure('TARGET_TLS_ERROR', `TLS handshake with the target failed: ${message}`);
  }
  if (
    codes.some(
      (c) =>
        c.startsWith('HPE_') ||
        c.startsWith('Z_') ||
        c.startsWith('ERR__ERROR_FORMAT') ||
        c.startsWith('ERR_BROTLI') ||
        PROTOCOL_CODES.has(c),
    )
  ) {
    return new ScrapeFailure('TARGET_PROTOCOL_ERROR', `The target sent an invalid HTTP response: ${message}`);
  }
  if (codes.some((c) => UNREACHABLE_CODES.has(c))) {
    return new ScrapeFailure('TARGET_UNREACHABLE', `The target could not be reached: ${message}`);
  }
  return new ScrapeFailure('TARGET_UNREACHABLE', `The scrape failed: ${message}`);
}
