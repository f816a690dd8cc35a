import type { BatchSubmission } from '../jobs/submit-batch';
import type { TargetPolicy } from '../scraper/address-guard';
import type { ScrapeRequest } from '../scraper/scrape-request';
import type { JobWebhook } from '../db/webhooks';
import { HttpError, invalidRequest } from './errors';
import { parseScrapeRequest } from './scrape-schema';
import { takeWebhook } from './webhook-schema';

/** How many bad items a refused batch names (the first ones): enough to fix, not a wall of text. */
const MAX_REPORTED_ITEMS = 10;
/**
 * How long the batch's validation runs before it yields a turn of the event loop: a 10,000-item
 * batch is checked in slices, so other requests are served between them (an invalid item costs
 * far more than a valid one, so slices are timed, not counted; bench/batch-validation.ts measures
 * the longest block).
 */
export const VALIDATION_SLICE_MS = 10;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Validates `{ "requests": [ <scrape body>, ... ], "webhook"?: … }` as a whole: any bad item
 * refuses the batch with 400 INVALID_REQUEST naming each bad item's index and field
 * (`requests[3].url: …`). The top-level webhook applies to the items without their own. The items
 * are checked in slices of VALIDATION_SLICE_MS, yielding to the event loop between them.
 */
export async function parseBatchRequest(
  input: unknown,
  maxBatch: number,
  targets: TargetPolicy,
  noRendering?: string,
): Promise<BatchSubmission> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalidRequest('The request body must be a JSON object: { "requests": [ … ] }.');
  }
  const unknown = Object.keys(input).filter((field) => field !== 'requests' && field !== 'webhook');
  if (unknown.length > 0) throw invalidRequest(`unknown field(s): ${unknown.join(', ')}`);
  const shared = takeWebhook(input, 'webhook', targets).webhook;
  const { requests } = input as { requests?: unknown };
  if (!Array.isArray(requests)) throw invalidRequest('requests: must be an array of scrape requests');
  if (requests.length === 0) throw invalidRequest('requests: must hold at least one scrape request');
  if (requests.length > maxBatch) {
    throw invalidRequest(
      `requests: at most ${maxBatch} per batch (OMNISCRAPE_MAX_BATCH); this one has ${requests.length}`,
    );
  }
  const parsed = { requests: [] as ScrapeRequest[], webhooks: [] as (JobWebhook | undefined)[] };
  const problems: string[] = [];
  let sliceStart = performance.now();
  for (const [i, item] of requests.entries()) {
    if (performance.now() - sliceStart >= VALIDATION_SLICE_MS) {
      await nextTurn();
      sliceStart = performance.now();
    }
    try {
      const { rest, webhook } = takeWebhook(item, 'webhook', targets);
      parsed.requests.push(parseScrapeRequest(rest, noRendering));
      parsed.webhooks.push(webhook ?? shared);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      if (problems.length < MAX_REPORTED_ITEMS) problems.push(itemProblem(i, err.message));
      else if (problems.length === MAX_REPORTED_ITEMS) problems.push('…');
    }
  }
  if (problems.length > 0) throw invalidRequest(problems.join('; '));
  return parsed;
}

/** `url: is required` of item 3 → `requests[3].url: is required`. */
function itemProblem(index: number, message: string): string {
  return message
    .split('; ')
    .map((part) => (/^[\w.]+: /.test(part) ? `requests[${index}].${part}` : `requests[${index}]: ${part}`))
    .join('; ');
}
