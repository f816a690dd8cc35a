import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
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
