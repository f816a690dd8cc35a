import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { Dispatcher } from 'undici';
import { ScrapeFailure } from '../domain-errors';
import type { BudgetHold } from './memory-budget';

/**
 * What a body reserves from the memory budget before it is read when it does not announce its
 * length, and the step by which a reservation grows as decoded bytes pass it (each step may wait).
 */
const BUDGET_STEP = 64 * 1024;

/** Reads the body, decompressing it, and fails as soon as the decoded size passes `cap`. */
export async function readBody(
  response: Dispatcher.ResponseData,
  cap: number,
  signal: AbortSignal,
  budget: BodyBudget | undefined,
): Promise<Buffer> {
  const hold = budget?.hold;
  const declared = Number(response.headers['content-length']);
  if (Number.isFinite(declared) && declared > cap) {
    discard(response.body);
    throw tooLarge(cap);
  }
  if (hold) {
    try {
      await hold.reserveTo(Number.isFinite(declared) ? declared : BUDGET_STEP, signal, budget.waitAtMostMs());
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
          budget.waitAtMostMs(),
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

/** A scrape's memory budget reservation, and how long it may wait for the budget right now. */
export interface BodyBudget {
  hold: BudgetHold;
  waitAtMostMs: () => number;
}

/** Drops a body we will not read; the abort error that destroying it raises is expected. */
export function discard(body: Readable): void {
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

export function flattenHeaders(headers: Dispatcher.ResponseData['headers']): Record<string, string> {
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
export function decodeBody(bytes: Buffer, contentType: string | undefined): string {
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
