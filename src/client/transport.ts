import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { errorBody } from '../contract/errors';
import { OmniscrapeError } from './errors';

/** Statuses that say "later" rather than "no": the only ones retried. */
const RETRIED_STATUSES = new Set([429, 503]);
/** Used when a 429/503 carries no usable Retry-After. */
const DEFAULT_RETRY_SECONDS = 1;

export interface TransportOptions {
  baseUrl: string;
  apiKey: string;
  /** Retries per call of a 429/503 (default 3); each waits the answer's Retry-After. */
  retries: number;
}

export interface Answer {
  status: number;
  body: unknown;
}

function retryAfterMs(header: string | string[] | undefined): number {
  const seconds = Number(Array.isArray(header) ? header[0] : header);
  return (Number.isFinite(seconds) && seconds >= 0 ? seconds : DEFAULT_RETRY_SECONDS) * 1000;
}

function parseJson(text: string): unknown {
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Why `baseUrl` could not be reached, in one line (undici's own message can be empty, e.g. for ECONNREFUSED). */
function networkMessage(baseUrl: string, error: unknown): string {
  const err = error as Error & { code?: string; cause?: { code?: string; message?: string } };
  const code = err.code ?? err.cause?.code;
  const message = err.message || err.cause?.message || '';
  const detail = code && !message.includes(code) ? `${code} ${message}`.trim() : message;
  return `cannot reach ${new URL(baseUrl).origin}: ${detail || 'connection failed'}`;
}

/** The API's refusal as an OmniscrapeError; a body not of the error shape still keeps its status. */
function refusal(status: number, body: unknown): OmniscrapeError {
  const parsed = errorBody.safeParse(body);
  if (parsed.success) {
    return new OmniscrapeError(status, parsed.data.code, parsed.data.error, parsed.data.status);
  }
  return new OmniscrapeError(status, 'UNEXPECTED_ANSWER', `HTTP ${status} without an error body`);
}

/**
 * One API call, retried on 429/503 within the budget. `accept` lists the statuses answered to the
 * caller (a scrape's 502 is an outcome, not a refusal); any other status throws.
 */
export async function call(
  options: TransportOptions,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  init: {
    body?: unknown;
    headers?: Record<string, string>;
    accept?: number[];
    signal?: AbortSignal;
    /** This call's retries of a 429/503, instead of the client's. */
    retries?: number;
  } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { 'x-api-key': options.apiKey, ...init.headers };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const payload = init.body === undefined ? undefined : JSON.stringify(init.body);
  for (let attempt = 0; ; attempt++) {
    let res;
    try {
      res = await request(new URL(path, options.baseUrl), {
        method,
        headers,
        body: payload,
        signal: init.signal,
      });
    } catch (error) {
      if (init.signal?.aborted) throw init.signal.reason;
      throw new OmniscrapeError(0, 'NETWORK_ERROR', networkMessage(options.baseUrl, error));
    }
    const text = await res.body.text();
    const body = parseJson(text);
    if ((init.accept ?? [200]).includes(res.statusCode)) return { status: res.statusCode, body };
    if (RETRIED_STATUSES.has(res.statusCode) && attempt < (init.retries ?? options.retries)) {
      await sleep(retryAfterMs(res.headers['retry-after']), undefined, { signal: init.signal });
      continue;
    }
    throw refusal(res.statusCode, body);
  }
}
