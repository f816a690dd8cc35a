import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { finished, type Finished } from './helpers/child-processes';
import { KEY_A, useServiceAndTarget } from './helpers/service';

// /openapi.json as teams who do not use our TypeScript client read it: linted by Redocly with its
// recommended rules, and turned into a client by @hey-api/openapi-ts that a user's program calls,
// compiled by tsc --strict and run by Node against the service. Both tools run offline, as
// children of this Node (Node 24), from the project's node_modules.

const ROOT = path.resolve(__dirname, '..');
const REDOCLY = path.join(ROOT, 'node_modules/@redocly/cli/bin/cli.js');
const OPENAPI_TS = path.join(ROOT, 'node_modules/@hey-api/openapi-ts/bin/run.js');
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');
// No telemetry and no update check: the test sends nothing off the machine.
const TOOL_ENV = { REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' };

/** Runs a Node script to completion in `cwd` (at most a minute); never throws on a failing exit, so a test can print why. */
function runNode(script: string, args: string[], cwd: string): Promise<Finished> {
  return finished(
    spawn(process.execPath, [script, ...args], {
      cwd,
      env: { ...process.env, NODE_OPTIONS: '', ...TOOL_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
      // A program stuck in a loop is ended, and the test prints what it had written.
      timeout: 60_000,
    }),
  );
}

const described = (what: string, run: Finished) =>
  `${what} exited ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;

/** Redocly's problems, one line each: `error operation-4xx-response #/paths/…/get: message`. */
function problemLines(report: {
  problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
}): string[] {
  return report.problems.map(
    (p) => `${p.severity} ${p.ruleId} ${p.location.map((l) => l.pointer).join(' ')}: ${p.message}`,
  );
}

/**
 * A user's program, as a person writes it against the generated client: no casts, numbers as
 * numbers, lists as arrays. It prints one JSON line per step for the test to read.
 */
function userProgram(baseUrl: string, apiKey: string, targetOrigin: string, heldName: string): string {
  return `import { client } from './client/client.gen.js';
import { cancelJob, getJob, listJobs, submitScrapeJob } from './client/index.js';

const BASE_URL = ${JSON.stringify(baseUrl)};
const API_KEY = ${JSON.stringify(apiKey)};
const TARGET = ${JSON.stringify(targetOrigin)};

client.setConfig({ baseUrl: BASE_URL, auth: API_KEY });

const report = (step: string, fields: Record<string, unknown>) =>
  console.log(JSON.stringify({ step, ...fields }));

// Submit, then hold the poll open until the job ends.
const submitted = await submitScrapeJob({ body: { url: TARGET + '/page' }, throwOnError: true });
const jobId: string = submitted.data.job_id;
report('submitted', { job_id: jobId, status: submitted.data.status });
let job = (await getJob({ path: { job_id: jobId }, query: { wait: 5 }, throwOnError: true })).data.data;
while (job.status === 'queued' || job.status === 'processing') {
  job = (await getJob({ path: { job_id: jobId }, query: { wait: 5 }, throwOnError: true })).data.data;
}
report('waited', { job_id: job.job_id, status: job.status, status_code: job.result?.data.status_code });

// The key's completed jobs, newest first.
const page = await listJobs({ query: { limit: 10, status: ['completed'] }, throwOnError: true });
report('listed', {
  job_ids: page.data.data.map((j) => j.job_id),
  statuses: [...new Set(page.data.data.map((j) => j.status))],
});

// The key runs one scrape at a time: while a held scrape runs, the next job stays queued.
const held = await submitScrapeJob({ body: { url: TARGET + '/held?name=${heldName}' }, throwOnError: true });
let heldStatus = held.data.status;
while (heldStatus === 'queued') {
  await new Promise((resolve) => setTimeout(resolve, 50));
  heldStatus = (await getJob({ path: { job_id: held.data.job_id }, throwOnError: true })).data.data.status;
}
const queued = await submitScrapeJob({ body: { url: TARGET + '/page?queued=1' }, throwOnError: true });
const cancel = await cancelJob({ path: { job_id: queued.data.job_id } });
if (cancel.error) {
  report('refused', { job_id: queued.data.job_id, code: cancel.error.code, status: cancel.error.status });
} else {
  report('cancelled', { job_id: cancel.data.data.job_id, status: cancel.data.data.status });
}
`;
}

const env = useServiceAndTarget({ env: { OMNISCRAPE_DEFAULT_CONCURRENCY: '1' } });
let dir: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-openapi-tools-'));
  const res = await env.service.call('GET', '/openapi.json', undefined, null);
  expect(res.status).toBe(200);
  fs.writeFileSync(path.join(dir, 'openapi.json'), JSON.stringify(res.body, null, 2));
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('/openapi.json read by tools no one here wrote', () => {
  test("Redocly's recommended rules find no error and no warning", async () => {
    const run = await runNode(
      REDOCLY,
      ['lint', '--extends', 'recommended', '--format', 'json', 'openapi.json'],
      dir,
    );
    let report;
    try {
      report = JSON.parse(run.stdout);
    } catch {
      throw new Error(described('redocly lint', run));
    }
    expect(problemLines(report)).toEqual([]);
    expect(report.totals).toEqual({ errors: 0, warnings: 0, ignored: 0 });
  });

  test('a client generated by @hey-api/openapi-ts compiles under tsc --strict and submits, waits, lists and cancels', async () => {
    // The settings hey-api's output is written for under Node: ES modules resolved as Node does
    // (the generator reads this tsconfig and writes `.js` import specifiers).
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2023',
          lib: ['ES2023', 'DOM', 'DOM.Iterable'],
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          types: [],
          outDir: 'dist',
        },
        include: ['program.ts', 'client'],
      }),
    );
    const generate = await runNode(
      OPENAPI_TS,
      ['-i', 'openapi.json', '-o', 'client', '-c', '@hey-api/client-fetch', '--no-log-file'],
      dir,
    );
    if (generate.code !== 0) throw new Error(described('openapi-ts', generate));

    const heldName = `openapi-tools-${process.pid}`;
    fs.writeFileSync(
      path.join(dir, 'program.ts'),
      userProgram(env.service.baseUrl, KEY_A, env.target.origin, heldName),
    );
    const compile = await runNode(TSC, ['-p', 'tsconfig.json'], dir);
    if (compile.code !== 0) throw new Error(described('tsc --strict', compile));

    const program = await runNode(path.join(dir, 'dist/program.js'), [], dir);
    env.target.release(heldName);
    if (program.code !== 0) throw new Error(described('the program', program));
    const steps = program.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const jobId = steps[0].job_id;
    expect(steps).toEqual([
      { step: 'submitted', job_id: expect.any(String), status: 'queued' },
      { step: 'waited', job_id: jobId, status: 'completed', status_code: 200 },
      { step: 'listed', job_ids: expect.arrayContaining([jobId]), statuses: ['completed'] },
      { step: 'cancelled', job_id: expect.any(String), status: 'cancelled' },
    ]);
  }, 180_000);
});
