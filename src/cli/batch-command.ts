import fs from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { ScrapeManyAbortedError, type OmniscrapeClient } from '../client';
import { apiClient, formatOption, scrapeRequestOf, timeoutOption, WAIT_UNTIL_ENDED_MS } from './api-settings';
import { BatchInputError, outcomeOf, readResults, readUrlList, type Outcome } from './batch-files';
import { startProgress } from './batch-progress-bar';
import { count, fail, fileProblem, oneLineErrors, positiveInt, print } from './common';
import { addRenderOptions, type RenderOptions } from './render-options';

interface BatchOptions extends RenderOptions {
  out: string;
  format: 'raw' | 'text' | 'markdown';
  timeout?: number;
  concurrency: number;
  batchSize: number;
  progressEvery: number;
}

/** Exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells report it. */
const INTERRUPTED = 130;

function progressSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.1)
    throw new InvalidArgumentError('must be a number of seconds, 0.1 or more');
  return n;
}

export function addBatchCommand(program: Command): void {
  const batch = oneLineErrors(program.command('batch'))
    .description(
      'scrape every URL of a file (one per line; - reads stdin) as jobs, writing one JSON line per URL to --out; ' +
        'a second run skips the URLs already there, so Ctrl-C and run again goes on where it stopped',
    )
    .argument('<file>', 'the URLs, one per line; blank lines and # comments are skipped')
    .requiredOption('--out <file>', 'where each finished job is appended as one JSON line (JSONL)')
    .addOption(formatOption())
    .addOption(timeoutOption());
  addRenderOptions(batch, { screenshot: false })
    .option('--concurrency <n>', 'jobs waited on at once, each one held request', positiveInt, 10)
    .option('--batch-size <n>', 'URLs per POST /v1/scrape/batch', positiveInt, 100)
    .option(
      '--progress-every <seconds>',
      'when stderr is not a terminal: a progress line this often',
      progressSeconds,
      5,
    )
    .action(runBatch);
}

async function runBatch(file: string, options: BatchOptions): Promise<void> {
  const client = apiClient();
  const { urls, duplicates, previous } = await readInputs(file, options.out);
  const todo = urls.filter((url) => !previous.has(url));
  const skipped = [
    duplicates > 0 ? `${count(duplicates, 'duplicate line')} skipped` : '',
    urls.length > todo.length ? `${urls.length - todo.length} already in ${options.out}` : '',
  ].filter(Boolean);
  if (todo.length > 0) {
    // A wrong key or an unreachable gateway is told now, before any file or progress.
    await client.listJobs({ limit: 1 }).next();
  }
  process.stderr.write(
    `omniscrape batch: ${count(todo.length, 'URL')} to scrape${skipped.length ? ` (${skipped.join(', ')})` : ''}\n`,
  );

  const results = new Map(previous);
  if (todo.length > 0 && (await scrapeInto(todo, options, results, client)) === 'interrupted') {
    process.exitCode = INTERRUPTED;
    return;
  }
  summarize(urls, results, options.out);
}

async function readInputs(file: string, out: string) {
  try {
    return { ...(await readUrlList(file)), previous: await readResults(out) };
  } catch (err) {
    if (err instanceof BatchInputError) return fail(err.message);
    return fail(fileProblem(err, file) ?? (err as Error).message);
  }
}

function openOutput(out: string): number {
  try {
    return fs.openSync(out, 'a');
  } catch (err) {
    return fail(`--out ${fileProblem(err, out) ?? (err as Error).message}; nothing was submitted`);
  }
}

/** Runs the jobs, appending each finished one to `options.out` as it ends. */
async function scrapeInto(
  todo: string[],
  options: BatchOptions,
  results: Map<string, Outcome>,
  client: OmniscrapeClient,
): Promise<'done' | 'interrupted'> {
  const out = openOutput(options.out);
  const progress = startProgress({
    total: todo.length,
    stream: process.stderr,
    tty: process.stderr.isTTY === true,
    everyMs: options.progressEvery * 1000,
  });
  // First Ctrl-C: stop, cancel what is still queued and say how to go on. A second: leave at once.
  const stop = new AbortController();
  const onInterrupt = () => {
    if (stop.signal.aborted) process.exit(INTERRUPTED);
    progress.stop();
    process.stderr.write(
      'omniscrape batch: stopping, cancelling the jobs still queued… (Ctrl-C again to leave now)\n',
    );
    stop.abort();
  };
  process.on('SIGINT', onInterrupt);
  let written = 0;
  const soFar = () => `${written} of ${todo.length} written to ${options.out}`;
  try {
    const jobs = client.scrapeMany(
      todo.map((url) => scrapeRequestOf(url, options)),
      {
        concurrency: options.concurrency,
        batchSize: options.batchSize,
        timeoutMs: WAIT_UNTIL_ENDED_MS,
        signal: stop.signal,
        onProgress: (p) => progress.update(p),
      },
    );
    for await (const job of jobs) {
      // Synchronous and whole-line: a line is in the file before the next job is taken.
      fs.writeSync(out, `${JSON.stringify(job)}\n`);
      results.set(job.url, outcomeOf(job));
      written++;
    }
    return 'done';
  } catch (err) {
    progress.stop();
    if (!(err instanceof ScrapeManyAbortedError)) {
      process.stderr.write(`omniscrape batch: stopped; ${soFar()}; run the same command again to go on\n`);
      throw err;
    }
    const left = [
      `${err.cancelled} queued jobs cancelled`,
      err.notCancelled > 0
        ? `${err.notCancelled} already started or ended (not written: the next run scrapes them again)`
        : '',
      err.unknown > 0 ? `${err.unknown} not reached to cancel (they may still run)` : '',
    ].filter(Boolean);
    process.stderr.write(
      `omniscrape batch: interrupted; ${soFar()}, ${left.join(', ')}; run the same command again to go on\n`,
    );
    return 'interrupted';
  } finally {
    progress.stop();
    process.off('SIGINT', onInterrupt);
    fs.closeSync(out);
  }
}

/**
 * The outcome of every URL of the input, this run's and earlier runs': on stdout, failures counted
 * by code; exit 1 if any did not complete.
 */
function summarize(urls: string[], results: Map<string, Outcome>, out: string): void {
  const byCode = new Map<string, number>();
  let completed = 0;
  let httpErrors = 0;
  for (const url of urls) {
    const outcome = results.get(url);
    if (outcome?.status === 'completed') {
      completed++;
      if ((outcome.httpStatus ?? 0) >= 400) httpErrors++;
    } else {
      const code = outcome ? (outcome.code ?? outcome.status.toUpperCase()) : 'NO_RESULT';
      byCode.set(code, (byCode.get(code) ?? 0) + 1);
    }
  }
  const failed = urls.length - completed;
  const answered = httpErrors > 0 ? ` (${httpErrors} answered an HTTP status of 400 or more)` : '';
  print(`${out}: ${count(urls.length, 'URL')}, ${completed} completed${answered}, ${failed} failed`);
  if (failed === 0) return;
  const width = Math.max(...[...byCode.keys()].map((code) => code.length));
  for (const [code, count] of [...byCode].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])))
    print(`  ${code.padEnd(width)}  ${count}`);
  process.exitCode = 1;
}
