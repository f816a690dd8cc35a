/**
 * `npm run bench:batch-validation [-- items]` — how long one batch body blocks the API's event
 * loop. Builds a body of N items (default OMNISCRAPE_MAX_BATCH's 10,000) filling the batch body
 * limit (short forwarded headers: the most objects and keys per byte), then measures, in this process: JSON.parse of the whole body (one block, as express.json
 * runs it), and the batch's validation (parseBatchRequest, which yields between slices) of a valid
 * and of an all-invalid body, each as its longest event-loop block (monitorEventLoopDelay's max)
 * beside its total time. No Postgres and no server: the cost measured is the CPU of one body.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { batchBodyLimitBytes } from '../src/http/body-limits';
import { parseBatchRequest, VALIDATION_SLICE_MS } from '../src/http/batch-schema';

const ITEMS = Number(process.argv[2] ?? 10_000);
const RUNS = 5;
const log = (line: string) => process.stderr.write(`[batch-validation] ${line}\n`);

/**
 * A body of `items` scrape requests whose JSON text comes close to `bytes`: each fills its share
 * with forwarded headers (up to the 100 allowed, short ones), the most objects and keys a body of
 * that size can make JSON.parse and the validation walk.
 */
function batchBody(items: number, bytes: number, valid: boolean): string {
  const share = Math.floor(bytes / items);
  const headerCount = Math.min(100, Math.max(1, Math.floor((share - 80) / 32)));
  const valueLength = Math.max(1, Math.floor((share - 80) / headerCount) - 14);
  const headers = Object.fromEntries(
    Array.from({ length: headerCount }, (_, i) => [`x-h${i}`, 'v'.repeat(valueLength)]),
  );
  const item = valid
    ? { url: 'https://example.com/page', headers }
    : { url: 'not a url', headers, timeout: 'soon' };
  return JSON.stringify({ requests: Array.from({ length: items }, () => item) });
}

/** The longest event-loop block (ms) and the total time (ms) of an async task, best of RUNS. */
async function measure(task: () => Promise<unknown>): Promise<{ longestMs: number; totalMs: number }> {
  let best = { longestMs: Infinity, totalMs: Infinity };
  for (let run = 0; run < RUNS; run++) {
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const started = performance.now();
    await task().catch(() => undefined);
    const totalMs = performance.now() - started;
    // A last turn, so the monitor sees the block that ended the task.
    await new Promise((resolve) => setTimeout(resolve, 5));
    delay.disable();
    const longestMs = delay.max / 1e6;
    if (longestMs < best.longestMs) best = { longestMs, totalMs };
  }
  return best;
}

async function main(): Promise<void> {
  const limit = batchBodyLimitBytes(ITEMS);
  const results: Record<string, number> = { items: ITEMS, body_limit_bytes: limit };
  for (const valid of [true, false]) {
    const text = batchBody(ITEMS, limit, valid);
    const name = valid ? 'valid' : 'invalid';
    results[`${name}_body_bytes`] = Buffer.byteLength(text);
    const parse = await measure(async () => JSON.parse(text));
    results[`${name}_json_parse_ms`] = round(parse.totalMs);
    const body: unknown = JSON.parse(text);
    const validation = await measure(() => parseBatchRequest(body, ITEMS, { allowPrivateTargets: true }));
    results[`${name}_validation_longest_block_ms`] = round(validation.longestMs);
    results[`${name}_validation_total_ms`] = round(validation.totalMs);
    log(
      `${name}: ${results[`${name}_body_bytes`]} bytes; JSON.parse ${round(parse.totalMs)} ms; ` +
        `validation ${round(validation.totalMs)} ms in all, longest block ${round(validation.longestMs)} ms ` +
        `(slices of ${VALIDATION_SLICE_MS} ms)`,
    );
  }
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
}

const round = (ms: number) => Math.round(ms * 10) / 10;

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
