import { type Agent, request } from 'undici';
import { ScrapeFailure } from '../domain-errors';
import { addressCheck, checkHostBeforeConnect, type GuardRefusal, type TargetPolicy } from './address-guard';
import { renderContent } from './formats';
import { guardedAgent } from './guarded-agent';
import type { BudgetHold } from './memory-budget';
import { decodeBody, discard, flattenHeaders, readBody, type BodyBudget } from './read-body';
import type { ScrapedPage, ScrapeRequest } from './scrape-request';
import { toScrapeFailure } from './scrape-failures';

export const MAX_REDIRECTS = 10;
const MAX_RESPONSE_HEADER_BYTES = 64 * 1024;
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
/**
 * The client's headers a redirect carries to another origin: ones that describe the request and
 * the client, none that can hold a credential. `Authorization`, `Cookie`, `X-Api-Key`,
 * `PRIVATE-TOKEN` and every other header were meant for the origin the client named; a custom
 * header's name says nothing about whether it holds a secret, so none is carried.
 */
const CROSS_ORIGIN_SAFE = new Set([
  'accept',
  'accept-language',
  'cache-control',
  'content-language',
  'content-type',
  'dnt',
  'pragma',
  'upgrade-insecure-requests',
  'user-agent',
]);

export interface ScraperOptions extends TargetPolicy {
  maxBodyBytes: number;
  userAgent?: string;
  /** The built-in refused ranges; tests substitute their own to exercise every check on loopback. */
  isBlockedAddress?: (address: string) => boolean;
  /** Hears of each connection the address guard refused (for the operator's log). */
  onRefused?: (refusal: GuardRefusal) => void;
}

/**
 * Fetches pages with undici through one connection pool per process. Each scrape is bounded in
 * time (its `timeout` covers connect, redirects and body), in size (decoded bytes, so compression
 * bombs stop at the cap) and in where it may connect (address guard on every hop and on the
 * socket actually opened).
 */
export class Scraper {
  readonly #agent: Agent;

  readonly #isBlocked: ((address: string) => boolean) | undefined;

  constructor(private readonly options: ScraperOptions) {
    this.#isBlocked = addressCheck(options, options.isBlockedAddress);
    this.#agent = guardedAgent({
      allowPrivateTargets: options.allowPrivateTargets,
      blockedTargets: options.blockedTargets,
      isBlockedAddress: options.isBlockedAddress,
      onRefused: options.onRefused,
      highWaterMark: READ_AHEAD_BYTES,
      maxHeaderSize: MAX_RESPONSE_HEADER_BYTES,
    });
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
    // Once a redirect has left the first origin, no later hop gets the client's other headers, even
    // one back at the first origin: the hop in between chose where that one goes.
    let leftFirstOrigin = false;
    for (let hop = 0; ; hop++) {
      checkHostBeforeConnect(url.hostname, this.#isBlocked, !this.options.allowPrivateTargets);
      leftFirstOrigin ||= url.origin !== firstOrigin;
      const response = await request(url, {
        method,
        headers: this.#outgoingHeaders(req.headers, body, !leftFirstOrigin),
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
      const bytes =
        method === 'HEAD'
          ? Buffer.alloc(0)
          : await readBody(response, this.options.maxBodyBytes, signal, budget);
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
      if (!sameOrigin && !CROSS_ORIGIN_SAFE.has(lower)) continue;
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
}
