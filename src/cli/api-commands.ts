import Table from 'cli-table3';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Job } from '../client';
import { isTerminal, JOB_STATUSES, type JobStatus } from '../contract/errors';
import { PAGE_MAX_LIMIT } from '../contract/requests';
import {
  apiClient,
  formatOption,
  scrapeRequestOf,
  timeoutOption,
  WAIT_UNTIL_ENDED_MS,
  type ScrapeOptions,
} from './api-settings';
import { addBatchCommand } from './batch-command';
import { fail, oneLineErrors, positiveInt, print } from './common';
import { addRenderOptions, writeScreenshot } from './render-options';

/** Why a job did not complete, in one line. */
export const jobFailureLine = (job: Job) =>
  `job ${job.job_id} ${job.status}: ${job.code ?? 'NO_CODE'}: ${job.error ?? 'no reason given'}`;

/**
 * The commands that call a gateway's API as a user would (OMNISCRAPE_URL, OMNISCRAPE_KEY): content
 * and JSON on stdout, progress and refusals on stderr, exit 1 when something did not succeed.
 */
export function addApiCommands(program: Command): void {
  const scrape = oneLineErrors(program.command('scrape'))
    .description('scrape one page now and print its content (POST /v1/scrape)')
    .argument('<url>', 'the page')
    .addOption(formatOption())
    .addOption(timeoutOption());
  addRenderOptions(scrape, { screenshot: true })
    .option('--json', 'print the whole answer as JSON, not only the content')
    .action(async (url: string, options: ScrapeOptions & { json?: boolean }) => {
      const client = apiClient();
      const answer = await client.scrape(scrapeRequestOf(url, options));
      if (options.json) print(JSON.stringify(answer, null, 2));
      else if (answer.success) {
        // As is into a file or a pipe; on a terminal, the prompt after it starts on a line of its own.
        const { content } = answer.data;
        process.stdout.write(process.stdout.isTTY && !content.endsWith('\n') ? `${content}\n` : content);
      }
      if (!answer.success) fail(`${answer.code}: ${answer.error}`);
      if (options.screenshot !== undefined) writeScreenshot(answer, options.screenshot);
    });

  const submit = oneLineErrors(program.command('submit'))
    .description('queue one scrape as a job and print it as JSON (POST /v1/scrape/async)')
    .argument('<url>', 'the page')
    .addOption(formatOption())
    .addOption(timeoutOption());
  addRenderOptions(submit, { screenshot: true })
    .option('--wait', 'wait for the job to end and print the finished job (exit 1 if it did not complete)')
    .option('--idempotency-key <key>', 'the same key within 24 hours answers the same job')
    .action(async (url: string, options: ScrapeOptions & { wait?: boolean; idempotencyKey?: string }) => {
      // The screenshot comes with the finished job: without --wait there is nothing to write.
      if (options.screenshot !== undefined && !options.wait)
        submit.error('option --screenshot needs --wait (the PNG comes with the finished job)');
      const client = apiClient();
      const accepted = await client.submit(scrapeRequestOf(url, options), {
        idempotencyKey: options.idempotencyKey,
      });
      if (!options.wait) {
        print(JSON.stringify(accepted, null, 2));
        return;
      }
      const job = await client.waitForJob(accepted.job_id, { timeoutMs: WAIT_UNTIL_ENDED_MS });
      print(JSON.stringify(job, null, 2));
      if (job.status !== 'completed') fail(jobFailureLine(job));
      if (options.screenshot !== undefined) writeScreenshot(job.result, options.screenshot);
    });

  addBatchCommand(program);

  const jobs = oneLineErrors(program.command('jobs')).description("the key's jobs");
  jobs
    .command('list')
    .description("print the key's latest jobs as a table, newest first (GET /v1/jobs)")
    .addOption(
      new Option('--status <status>', `only jobs in this status (or several, comma-separated)`).argParser(
        statusList,
      ),
    )
    .option('--limit <n>', 'how many jobs at most', positiveInt, 20)
    .option('--json', 'print the jobs as JSON lines instead')
    .action(async (options: { status?: JobStatus[]; limit: number; json?: boolean }) => {
      const client = apiClient();
      const found: Job[] = [];
      const query = { status: options.status, limit: Math.min(options.limit, PAGE_MAX_LIMIT) };
      for await (const page of client.listJobs(query)) {
        found.push(...page.slice(0, options.limit - found.length));
        if (found.length >= options.limit) break;
      }
      if (options.json) found.forEach((job) => print(JSON.stringify(job)));
      else print(jobsTable(found));
    });
  jobs
    .command('get')
    .description('print one job as JSON (GET /v1/jobs/{id})')
    .argument('<job_id>')
    .option('--wait', 'wait for it to end first')
    .action(async (id: string, options: { wait?: boolean }) => {
      const client = apiClient();
      const job = options.wait
        ? await client.waitForJob(id, { timeoutMs: WAIT_UNTIL_ENDED_MS })
        : await client.getJob(id);
      print(JSON.stringify(job, null, 2));
      if (isTerminal(job.status) && job.status !== 'completed') fail(jobFailureLine(job));
    });
  jobs
    .command('cancel')
    .description('cancel a queued job (DELETE /v1/jobs/{id})')
    .argument('<job_id>')
    .action(async (id: string) => {
      const client = apiClient();
      print(JSON.stringify(await client.cancel(id), null, 2));
    });
}

function statusList(value: string): JobStatus[] {
  const statuses = value.split(',');
  const unknown = statuses.filter((s) => !(JOB_STATUSES as readonly string[]).includes(s));
  if (unknown.length > 0)
    throw new InvalidArgumentError(`"${unknown.join(',')}" is not one of ${JOB_STATUSES.join(', ')}`);
  return statuses as JobStatus[];
}

const URL_WIDTH = 60;

function jobsTable(jobs: Job[]): string {
  if (jobs.length === 0) return 'no jobs';
  const table = new Table({
    head: ['job_id', 'status', 'code', 'created_at', 'took', 'url'],
    style: { head: [], border: [] },
  });
  for (const job of jobs) {
    const took = isTerminal(job.status)
      ? `${((Date.parse(job.updated_at) - Date.parse(job.created_at)) / 1000).toFixed(2)}s`
      : '';
    table.push([
      job.job_id,
      job.status,
      job.code ?? '',
      job.created_at,
      took,
      job.url.length > URL_WIDTH ? `${job.url.slice(0, URL_WIDTH - 1)}…` : job.url,
    ]);
  }
  return table.toString();
}
