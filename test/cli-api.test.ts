import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CLI, runCli } from './helpers/cli';
import { KEY_A, KEY_B, useServiceAndTarget } from './helpers/service';
import { waitFor } from './helpers/wait';

// The commands people run against a gateway (OMNISCRAPE_URL, OMNISCRAPE_KEY), as child processes
// of the built CLI, against the whole service on a real Postgres.
const env = useServiceAndTarget();
let dir: string;
const apiEnv = (key = KEY_A) => ({ OMNISCRAPE_URL: env.service.baseUrl, OMNISCRAPE_KEY: key });
const omniscrape = (args: string[], key?: string) => runCli(args, apiEnv(key));

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-cli-api-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A port nothing listens on: its jobs fail with TARGET_UNREACHABLE. */
const CLOSED = 'http://127.0.0.1:1';
const jsonLines = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { url: string; status: string; code?: string });
const urlFile = (name: string, urls: string[]) => {
  const file = path.join(dir, name);
  fs.writeFileSync(file, urls.join('\n') + '\n');
  return file;
};
/**
 * Runs the CLI on a pseudo-terminal (`script`), as in a terminal window: its stderr is a TTY.
 * `screen()` is what the terminal received; writing to `child.stdin` is typing.
 */
function onTerminal(args: string[], key: string) {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    env: { ...process.env, ...apiEnv(key), OMNISCRAPE_LOG_LEVEL: 'warn' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let screen = '';
  child.stdout.on('data', (d) => (screen += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { child, exited, screen: () => screen };
}

/** A stack trace's frames, which an error line must never carry. */
const STACK_FRAME = /^\s+at /m;

describe('omniscrape scrape', () => {
  test('prints the page in the asked format', async () => {
    const run = await omniscrape(['scrape', `${env.target.origin}/page`, '--format', 'markdown']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toContain('# Hello omniscrape');
    expect(run.stdout).not.toContain('<h1>');
  });

  test("a target that cannot be scraped is one line with the API's code, and exit 1", async () => {
    const run = await omniscrape(['scrape', `${CLOSED}/x`]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^omniscrape: TARGET_UNREACHABLE: .+\n$/);
  });

  test('refusals of the API, a missing key and an unreachable gateway are one line each, never a stack', async () => {
    const badKey = await runCli(['scrape', `${env.target.origin}/page`], {
      ...apiEnv(),
      OMNISCRAPE_KEY: 'not-a-key',
    });
    const badUrl = await omniscrape(['scrape', 'ftp://example.com/']);
    const noKey = await runCli(['scrape', `${env.target.origin}/page`], {
      OMNISCRAPE_URL: env.service.baseUrl,
      OMNISCRAPE_KEY: '',
    });
    const down = await runCli(['scrape', `${env.target.origin}/page`], {
      ...apiEnv(),
      OMNISCRAPE_URL: CLOSED,
    });
    const badFormat = await omniscrape(['scrape', `${env.target.origin}/page`, '--format', 'pdf']);
    expect(badKey.stderr).toBe('omniscrape: UNAUTHORIZED: Invalid API key. (HTTP 401)\n');
    expect(badUrl.stderr).toMatch(/^omniscrape: INVALID_REQUEST: url: .+\(HTTP 400\)\n$/);
    expect(noKey.stderr).toBe('omniscrape: OMNISCRAPE_KEY is empty\n');
    expect(down.stderr).toMatch(
      /^omniscrape: cannot reach http:\/\/127\.0\.0\.1:1: .*ECONNREFUSED.*OMNISCRAPE_URL.*\n$/,
    );
    expect(badFormat.stderr).toMatch(
      /^omniscrape: option '--format <format>' argument 'pdf' is invalid\..*\n$/,
    );
    for (const run of [badKey, badUrl, noKey, down, badFormat]) {
      expect(run.code).toBe(1);
      expect(run.stderr.split('\n')).toHaveLength(2);
      expect(run.stderr).not.toMatch(STACK_FRAME);
    }
  });
});

describe('omniscrape submit', () => {
  test('--wait prints the finished job', async () => {
    const run = await omniscrape(['submit', `${env.target.origin}/plain`, '--wait']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const job = JSON.parse(run.stdout);
    expect(job).toMatchObject({ status: 'completed', url: `${env.target.origin}/plain` });
    expect(job.result.data.content).toBe('just text');
  });

  test('without --wait prints the accepted job; a job that fails exits 1 with its code', async () => {
    const queued = await omniscrape(['submit', `${env.target.origin}/plain`]);
    expect(JSON.parse(queued.stdout)).toMatchObject({ success: true, status: 'queued' });
    const failed = await omniscrape(['submit', `${CLOSED}/y`, '--wait']);
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout)).toMatchObject({ status: 'failed', code: 'TARGET_UNREACHABLE' });
    expect(failed.stderr).toMatch(/^omniscrape: job [0-9a-f-]{36} failed: TARGET_UNREACHABLE: .+\n$/);
  });
});

/** A 1×1 PNG, as a gateway that rendered the page would send it in `data.screenshot`. */
const PNG_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

/**
 * A stand-in for a gateway that can render (the service under test has no browser engine): it
 * records each request body and answers a rendered page with a screenshot, except for URLs
 * containing `no-shot`.
 */
async function renderingGateway() {
  const received: { route: string; body: Record<string, unknown> }[] = [];
  const jobId = randomUUID();
  const now = new Date().toISOString();
  const result = (url: string) => ({
    success: true,
    data: {
      content: '<p>rendered</p>',
      status_code: 200,
      headers: {},
      final_url: url,
      ...(url.includes('no-shot') ? {} : { screenshot: PNG_BASE64 }),
    },
    metadata: { elapsed_time: 0.1, engine: 'browser' },
    billing: { charged: 1 },
  });
  let lastUrl = '';
  const respond = (req: http.IncomingMessage, res: http.ServerResponse, text: string) => {
    const route = `${req.method} ${new URL(req.url!, 'http://x').pathname}`;
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    received.push({ route, body });
    if (typeof body.url === 'string') lastUrl = body.url;
    const answer =
      route === 'POST /v1/scrape'
        ? result(lastUrl)
        : route === 'POST /v1/scrape/async'
          ? { success: true, job_id: jobId, status: 'queued', poll: `/v1/jobs/${jobId}` }
          : {
              success: true,
              data: {
                job_id: jobId,
                status: 'completed',
                url: lastUrl,
                created_at: now,
                updated_at: now,
                result: result(lastUrl),
              },
            };
    res.writeHead(route === 'POST /v1/scrape/async' ? 202 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer));
  };
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString()));
    req.on('end', () => respond(req, res, text));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const run = (args: string[]) =>
    runCli(args, { OMNISCRAPE_URL: `http://127.0.0.1:${port}`, OMNISCRAPE_KEY: KEY_A });
  return { received, run, close: () => new Promise((resolve) => server.close(resolve)) };
}

describe('rendering flags', () => {
  let gateway: Awaited<ReturnType<typeof renderingGateway>>;
  beforeAll(async () => {
    gateway = await renderingGateway();
  });
  afterAll(() => gateway.close());
  beforeEach(() => gateway.received.splice(0));

  test('scrape --render --mode --wait-for --screenshot --full-page sends those fields and writes the PNG to the file', async () => {
    const file = path.join(dir, 'page.png');
    const run = await gateway.run([
      'scrape',
      'https://example.com/app',
      '--render',
      '--mode',
      'browser',
      '--wait-for',
      '1500',
      '--screenshot',
      file,
      '--full-page',
    ]);
    expect(run).toMatchObject({ code: 0, stderr: '', stdout: '<p>rendered</p>' });
    expect(gateway.received).toEqual([
      {
        route: 'POST /v1/scrape',
        body: {
          url: 'https://example.com/app',
          format: 'raw',
          js_rendering: true,
          mode: 'browser',
          wait_for: 1500,
          screenshot: true,
          screenshot_full_page: true,
        },
      },
    ]);
    expect(fs.readFileSync(file)).toEqual(Buffer.from(PNG_BASE64, 'base64'));
  });

  test('--wait-for that is not all digits is a CSS selector; without rendering flags none of the fields is sent', async () => {
    await gateway.run(['scrape', 'https://example.com/a', '--render', '--wait-for', '#app .ready']);
    await gateway.run(['scrape', 'https://example.com/b', '--wait-for', '250ms']);
    await gateway.run(['scrape', 'https://example.com/c']);
    expect(gateway.received.map((r) => r.body)).toEqual([
      { url: 'https://example.com/a', format: 'raw', js_rendering: true, wait_for: '#app .ready' },
      { url: 'https://example.com/b', format: 'raw', wait_for: '250ms' },
      { url: 'https://example.com/c', format: 'raw' },
    ]);
  });

  test("submit --wait --screenshot writes the finished job's PNG; without --wait it is refused before anything is sent", async () => {
    const file = path.join(dir, 'job.png');
    const run = await gateway.run([
      'submit',
      'https://example.com/job',
      '--render',
      '--screenshot',
      file,
      '--wait',
    ]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      status: 'completed',
      result: { metadata: { engine: 'browser' } },
    });
    expect(gateway.received[0]).toEqual({
      route: 'POST /v1/scrape/async',
      body: { url: 'https://example.com/job', format: 'raw', js_rendering: true, screenshot: true },
    });
    expect(fs.readFileSync(file)).toEqual(Buffer.from(PNG_BASE64, 'base64'));

    gateway.received.splice(0);
    const refused = await gateway.run([
      'submit',
      'https://example.com/job',
      '--render',
      '--screenshot',
      file,
    ]);
    expect(refused).toMatchObject({
      code: 1,
      stdout: '',
      stderr: 'omniscrape: option --screenshot needs --wait (the PNG comes with the finished job)\n',
    });
    expect(gateway.received).toEqual([]);
  });

  test('an answer without a screenshot is one line and exit 1, and no file is written', async () => {
    const file = path.join(dir, 'none.png');
    const run = await gateway.run([
      'scrape',
      'https://example.com/no-shot',
      '--render',
      '--screenshot',
      file,
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`omniscrape: the answer has no screenshot; nothing was written to ${file}\n`);
    expect(fs.existsSync(file)).toBe(false);
  });

  test('a bad --mode is refused like any bad option, before anything is sent', async () => {
    const run = await gateway.run(['scrape', 'https://example.com/', '--mode', 'chrome']);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      "omniscrape: option '--mode <mode>' argument 'chrome' is invalid. Allowed choices are auto, http, browser.\n",
    );
    expect(gateway.received).toEqual([]);
  });

  test("the gateway's refusal of flags that do not go together is printed as its 400, for scrape, submit and batch", async () => {
    const page = `${env.target.origin}/page`;
    const noRender = await omniscrape(['scrape', page, '--wait-for', '500']);
    const httpRender = await omniscrape(['submit', page, '--mode', 'http', '--render']);
    const fullPageAlone = await omniscrape(['scrape', page, '--full-page']);
    const input = urlFile('render.txt', [page]);
    const batch = await omniscrape([
      'batch',
      input,
      '--out',
      path.join(dir, 'render.jsonl'),
      '--wait-for',
      '#x',
    ]);
    expect(noRender.stderr).toMatch(
      /^omniscrape: INVALID_REQUEST: wait_for: needs rendering.*\(HTTP 400\)\n$/,
    );
    expect(httpRender.stderr).toMatch(
      /^omniscrape: INVALID_REQUEST: js_rendering: .*mode "http".*\(HTTP 400\)\n$/,
    );
    expect(fullPageAlone.stderr).toMatch(
      /^omniscrape: INVALID_REQUEST: screenshot_full_page: needs screenshot: true.*\(HTTP 400\)\n$/,
    );
    expect(batch.stderr).toMatch(
      /omniscrape: INVALID_REQUEST: requests\[0\]\.wait_for: needs rendering.*\(HTTP 400\)\n$/,
    );
    for (const run of [noRender, httpRender, fullPageAlone, batch]) {
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
    }
  });
});

describe('omniscrape jobs list', () => {
  test("prints the key's jobs as a table, filtered by status", async () => {
    const tag = randomUUID();
    const ok = JSON.parse(
      (await omniscrape(['submit', `${env.target.origin}/plain?${tag}`, '--wait'], KEY_B)).stdout,
    );
    const bad = JSON.parse((await omniscrape(['submit', `${CLOSED}/${tag}`, '--wait'], KEY_B)).stdout);
    const all = await omniscrape(['jobs', 'list'], KEY_B);
    const failed = await omniscrape(['jobs', 'list', '--status', 'failed'], KEY_B);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/job_id.+status.+code.+created_at.+took.+url/);
    expect(all.stdout).toContain(ok.job_id);
    expect(all.stdout).toContain(bad.job_id);
    expect(failed.stdout).toContain(bad.job_id);
    expect(failed.stdout).toContain('TARGET_UNREACHABLE');
    expect(failed.stdout).not.toContain(ok.job_id);
    const refused = await omniscrape(['jobs', 'list', '--status', 'done'], KEY_B);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^omniscrape: .*"done" is not one of queued, processing, completed.*\n$/);
  });
});

describe('omniscrape batch', () => {
  test('writes one JSON line per URL, prints plain progress lines off a terminal, sums failures by code and exits 1', async () => {
    const tag = randomUUID();
    const good = Array.from({ length: 24 }, (_, i) => `${env.target.origin}/slow?ms=150&${tag}=${i}`);
    const bad = [`${CLOSED}/a?${tag}`, `${CLOSED}/b?${tag}`];
    const input = urlFile('plain.txt', ['# a comment', '', ...good, ...bad, good[0]!]);
    const out = path.join(dir, 'plain.jsonl');

    const run = await omniscrape([
      'batch',
      input,
      '--out',
      out,
      '--progress-every',
      '0.1',
      '--concurrency',
      '4',
    ]);
    expect(run.code).toBe(1);
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('omniscrape batch: 26 URLs to scrape (1 duplicate line skipped)');
    const progress = lines.slice(1);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    for (const line of progress)
      expect(line).toMatch(
        /^omniscrape batch: \d+\/26 done, \d failed, \d+\.\d\/s, ETA (\d+[smh]|\?)[\dms]*$/,
      );
    expect(progress.at(-1)).toMatch(/^omniscrape batch: 26\/26 done, 2 failed, /);
    expect(run.stderr).not.toContain('\u001b'); // no terminal control off a terminal

    const results = jsonLines(out);
    expect(results.map((r) => r.url).sort()).toEqual([...good, ...bad].sort());
    expect(results.filter((r) => r.status === 'completed')).toHaveLength(24);
    expect(run.stdout).toBe(`${out}: 26 URLs, 24 completed, 2 failed\n  TARGET_UNREACHABLE  2\n`);

    // A second run skips what the file holds, and still answers for the whole input.
    const again = await omniscrape(['batch', input, '--out', out]);
    expect(again.stderr).toBe(
      `omniscrape batch: 0 URLs to scrape (1 duplicate line skipped, 26 already in ${out})\n`,
    );
    expect(again.stdout).toBe(run.stdout);
    expect(again.code).toBe(1);
    expect(jsonLines(out)).toHaveLength(26);
  });

  test('a line cut short by a kill is dropped and scraped again; a foreign output file or a bad input line is refused before anything is sent', async () => {
    const tag = randomUUID();
    const urls = [1, 2, 3].map((i) => `${env.target.origin}/plain?${tag}=${i}`);
    const input = urlFile('cut.txt', urls);
    const out = path.join(dir, 'cut.jsonl');
    expect((await omniscrape(['batch', input, '--out', out])).code).toBe(0);
    const whole = fs.readFileSync(out, 'utf8').split('\n');
    fs.writeFileSync(out, `${whole[0]}\n${whole[1]}\n${whole[2]!.slice(0, 40)}`);

    const resumed = await omniscrape(['batch', input, '--out', out]);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/^omniscrape batch: 1 URL to scrape \(2 already in /);
    expect(
      jsonLines(out)
        .map((r) => r.url)
        .sort(),
    ).toEqual([...urls].sort());

    // A whole last line that only lacks its newline is kept, and the next line starts after it.
    const kept = fs.readFileSync(out, 'utf8');
    fs.writeFileSync(out, kept.trimEnd());
    const again = await omniscrape(['batch', input, '--out', out]);
    expect(again.stderr).toMatch(/^omniscrape batch: 0 URLs to scrape \(3 already in /);
    expect(fs.readFileSync(out, 'utf8')).toBe(kept);

    // A file that is not this command's output is refused, not appended to, even with one line.
    const oneLine = path.join(dir, 'one-line.txt');
    fs.writeFileSync(oneLine, urls[0]!);
    const refusedOne = await omniscrape(['batch', input, '--out', oneLine]);
    expect(refusedOne.stderr).toBe(
      `omniscrape: ${oneLine} line 1 is not a job written by omniscrape batch\n`,
    );
    expect(fs.readFileSync(oneLine, 'utf8')).toBe(urls[0]);
    // A file that is not this command's output is refused, not appended to.
    const foreign = path.join(dir, 'foreign.jsonl');
    fs.writeFileSync(foreign, '{"hello":"world"}\nplain text\n');
    const refusedOut = await omniscrape(['batch', input, '--out', foreign]);
    expect(refusedOut.code).toBe(1);
    expect(refusedOut.stderr).toBe(
      `omniscrape: ${foreign} line 1 is not a job written by omniscrape batch\n`,
    );
    expect(fs.readFileSync(foreign, 'utf8')).toBe('{"hello":"world"}\nplain text\n');

    const badInput = urlFile('bad.txt', [urls[0]!, 'not a url', 'mailto:x@example.com']);
    const refused = await omniscrape(['batch', badInput, '--out', path.join(dir, 'never.jsonl')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `omniscrape: ${badInput} line 2: "not a url" must be an absolute http:// or https:// URL (and 1 more bad line); nothing was submitted\n`,
    );
    expect(fs.existsSync(path.join(dir, 'never.jsonl'))).toBe(false);
  });

  test('a wrong key or an --out that cannot be written stops it before any file or job', async () => {
    const tag = randomUUID();
    const input = urlFile('early.txt', [`${env.target.origin}/plain?${tag}`]);
    const out = path.join(dir, 'early.jsonl');
    const badKey = await omniscrape(['batch', input, '--out', out], 'not-a-key');
    expect(badKey).toMatchObject({ code: 1, stdout: '' });
    expect(badKey.stderr).toBe('omniscrape: UNAUTHORIZED: Invalid API key. (HTTP 401)\n');
    expect(fs.existsSync(out)).toBe(false);

    const nowhere = path.join(dir, 'no-such-dir', 'out.jsonl');
    const noDir = await omniscrape(['batch', input, '--out', nowhere]);
    expect(noDir.code).toBe(1);
    expect(noDir.stderr).toMatch(/^omniscrape batch: 1 URL to scrape\n/);
    expect(noDir.stderr).toMatch(
      new RegExp(`omniscrape: --out ${nowhere}: no such file or directory; nothing was submitted\n$`),
    );
    const jobs = await env.service.query(
      `select count(*)::int as n from omniscrape.scrape_jobs where url like $1`,
      [`%${tag}%`],
    );
    expect(jobs[0].n).toBe(0);
  });

  test('on a terminal it draws a live bar with done, failed, rate and ETA', async () => {
    const tag = randomUUID();
    const urls = Array.from({ length: 5 }, (_, i) => `${env.target.origin}/plain?${tag}=${i}`);
    const out = path.join(dir, 'tty-bar.jsonl');
    const run = onTerminal(['batch', urlFile('tty-bar.txt', urls), '--out', out], KEY_A);
    expect(await run.exited).toBe(0);
    const screen = run.screen();
    expect(screen).toMatch(/░+ 0\/5 done \| 0 failed \| \d+\.\d\/s \| ETA \?/); // the first drawing
    expect(screen).toMatch(/█+ 5\/5 done \| 0 failed \| \d+\.\d\/s \| ETA 0s/); // the last
    // Redrawn in place: the cursor goes back to column 1 before each drawing (a line break would be \r\n).
    expect(screen.split('\u001b[1G').length).toBeGreaterThan(2);
    expect(screen).toContain(`${out}: 5 URLs, 5 completed, 0 failed`);
    expect(jsonLines(out)).toHaveLength(5);
  });

  test('Ctrl-C on a terminal cancels the queued jobs, says what it left, and a second run finishes the rest', async () => {
    const tag = randomUUID();
    // A key that runs 5 scrapes at once, and targets that hold every scrape until released: at
    // the Ctrl-C, 5 jobs are at the target and the rest of the two batches in flight are queued.
    const created = await runCli(['keys', 'create', `tty-${tag}`, '--concurrency', '5'], {
      DATABASE_URL: env.service.databaseUrl,
    });
    const key = created.stdout.trim();
    const urls = Array.from({ length: 30 }, (_, i) => `${env.target.origin}/held?name=${tag}&i=${i}`);
    const input = urlFile('tty.txt', urls);
    const out = path.join(dir, 'tty.jsonl');
    const submitted = async () =>
      (
        await env.service.query(`select count(*)::int as n from omniscrape.scrape_jobs where url like $1`, [
          `%${tag}%`,
        ])
      )[0].n;
    const run = onTerminal(['batch', input, '--out', out, '--concurrency', '5', '--batch-size', '10'], key);
    try {
      await waitFor(
        async () =>
          env.target.held(tag) === 5 && (await submitted()) === 20 && run.screen().includes('0/30 done'),
        {
          what: () => `5 held jobs of 20, screen: ${JSON.stringify(run.screen().slice(-200))}`,
          timeoutMs: 30_000,
        },
      );
      run.child.stdin.write('\u0003'); // Ctrl-C, through the terminal's line discipline
      expect(await run.exited).toBe(130);
      expect(run.screen()).toContain(
        `interrupted; 0 of 30 written to ${out}, 15 queued jobs cancelled, 5 already started or ended`,
      );
      const cancelled = await env.service.query(
        `select count(*)::int as n from omniscrape.scrape_jobs where url like $1 and status = 'cancelled'`,
        [`%${tag}%`],
      );
      expect(cancelled[0].n).toBe(15);
    } finally {
      run.child.kill();
      env.target.release(tag);
    }

    const rest = await runCli(['batch', input, '--out', out], apiEnv(key));
    expect(rest.code).toBe(0);
    expect(rest.stdout).toBe(`${out}: 30 URLs, 30 completed, 0 failed\n`);
    const all = jsonLines(out);
    expect(all).toHaveLength(30);
    expect(new Set(all.map((r) => r.url)).size).toBe(30);
  });
});
