import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from './helpers/cli';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { waitFor } from './helpers/wait';
import { KEY_A, startTestService, waitForJob, type TestService } from './helpers/service';
import { scrapeMetrics } from './helpers/prometheus';

// Real Chromium (Debian's, scripts/chromium.sh), driven by the service's own browser engine.

/**
 * A page whose only text is written by its script: a shell, as single-page apps serve. The text is
 * split in the script's source, so only a render has it whole.
 */
const SHELL = `<!doctype html><html><head><title>App</title></head><body><div id="app"></div>
<script>document.getElementById('app').innerHTML = '<h2>Heading</h2><p>Written ' + 'by script</p>';</script>
</body></html>`;

/** A page whose script adds an element 500 ms after load. */
const LATE = `<!doctype html><html><head><title>Late</title></head><body><p>Static text of the page, long enough to be a page of its own.</p>
<script>setTimeout(() => { const p = document.createElement('p'); p.id = 'late'; p.textContent = 'arrived late'; document.body.append(p); }, 500);</script>
</body></html>`;

/** A static page that happens to have a script: mode "auto" keeps it as fetched. */
const STATIC = `<!doctype html><html><head><title>Static</title><script>window.analytics = 1;</script></head>
<body><h1>Static page</h1><p>All of this text is in the HTML the server sends.</p></body></html>`;

const TALL = `<!doctype html><html><body style="margin:0"><div style="height:3000px;background:#eee">tall</div></body></html>`;

const html =
  (body: string, status = 200) =>
  (_req: unknown, res: import('node:http').ServerResponse) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
    res.end(body);
  };

/** Width and height from a PNG's IHDR chunk, after checking its signature. */
function pngSize(base64: string): { width: number; height: number } {
  const png = Buffer.from(base64, 'base64');
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  expect(png.subarray(12, 16).toString('latin1')).toBe('IHDR');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

let service: TestService;
let target: TargetServer;

beforeAll(async () => {
  target = await startTargetServer({
    '/shell': html(SHELL),
    '/late': html(LATE),
    '/static': html(STATIC),
    '/tall': html(TALL),
    '/who': (req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        `<!doctype html><body><p id="ua">${req.headers['user-agent']}</p><p id="cookie">${req.headers.cookie}</p><p id="lang">${req.headers['accept-language']}</p></body>`,
      );
    },
    // The page loads only when its image does: the image is held until the test releases it.
    '/waits-for-image': (_req, res, url) => {
      const name = url.searchParams.get('name') ?? '';
      html(
        `<!doctype html><html><body><p>a page with a held image</p><img src="/held?name=${name}"></body></html>`,
      )(_req, res);
    },
  });
  service = await startTestService();
}, 60_000);
afterAll(async () => {
  await service?.stop();
  await target?.close();
});

const scrape = (body: Record<string, unknown>) => service.call('POST', '/v1/scrape', body);
/** A counter's value, its series with these labels added up. */
async function counter(name: string, labels: Record<string, string> = {}): Promise<number> {
  const { samples } = await scrapeMetrics(service.baseUrl);
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}
const renders = () => counter('omniscrape_browser_renders_total');

describe('js_rendering', () => {
  test('js_rendering: true answers the page as its script built it, charged the render price', async () => {
    const res = await scrape({ url: `${target.origin}/shell`, js_rendering: true });
    expect(res.status).toBe(200);
    expect(res.body.data.content).toContain('Written by script');
    expect(res.body.data.status_code).toBe(200);
    expect(res.body.data.final_url).toBe(`${target.origin}/shell`);
    expect(res.body.data.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.body.metadata.engine).toBe('browser');
    expect(res.body.billing.charged).toBe(service.config.pricePerRender);
  });

  test('without rendering the same page has no script-written text', async () => {
    const res = await scrape({ url: `${target.origin}/shell`, mode: 'http' });
    expect(res.status).toBe(200);
    expect(res.body.data.content).not.toContain('Written by script');
    expect(res.body.metadata.engine).toBe('http');
    expect(res.body.billing.charged).toBe(service.config.pricePerScrape);
  });

  test('an async job renders too, and its history row says the browser ran', async () => {
    const submitted = await service.call('POST', '/v1/scrape/async', {
      url: `${target.origin}/shell`,
      js_rendering: true,
      format: 'markdown',
    });
    expect(submitted.status).toBe(202);
    const job = await waitForJob(service, submitted.body.job_id);
    expect(job.status).toBe('completed');
    expect(job.result.data.content).toContain('## Heading\n\nWritten by script');
    expect(job.result.metadata.engine).toBe('browser');
    const [row] = await service.query(`select engine, charged from omniscrape.scrape_jobs where id = $1`, [
      submitted.body.job_id,
    ]);
    expect(row.engine).toBe('browser');
    expect(Number(row.charged)).toBe(service.config.pricePerRender);
  });

  test("the client's User-Agent, Accept-Language and Cookie reach the page", async () => {
    const res = await scrape({
      url: `${target.origin}/who`,
      js_rendering: true,
      format: 'text',
      headers: {
        'User-Agent': 'omniscrape-test-agent',
        'Accept-Language': 'fr-CH',
        Cookie: 'session=abc; theme=dark',
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.data.content.split('\n').filter(Boolean)).toEqual([
      'omniscrape-test-agent',
      'session=abc; theme=dark',
      'fr-CH',
    ]);
  });

  test('mode "browser" renders as js_rendering does', async () => {
    const res = await scrape({ url: `${target.origin}/shell`, mode: 'browser', format: 'text' });
    expect(res.body.data.content).toContain('Written by script');
    expect(res.body.metadata.engine).toBe('browser');
  });
});

describe('mode "auto"', () => {
  test('a page built by script is rendered', async () => {
    const before = await renders();
    const res = await scrape({ url: `${target.origin}/shell` });
    expect(res.body.data.content).toContain('Written by script');
    expect(res.body.metadata.engine).toBe('browser');
    expect(await renders()).toBe(before + 1);
  });

  test('a static page is answered as fetched, and the browser is not used', async () => {
    const before = await renders();
    const res = await scrape({ url: `${target.origin}/static`, format: 'text' });
    expect(res.body.data.content).toContain('All of this text is in the HTML the server sends.');
    expect(res.body.metadata.engine).toBe('http');
    expect(res.body.billing.charged).toBe(service.config.pricePerScrape);
    expect(await renders()).toBe(before);
  });
});

describe('wait_for', () => {
  test('a selector that appears 500 ms after load is waited for', async () => {
    const res = await scrape({ url: `${target.origin}/late`, js_rendering: true, wait_for: '#late' });
    expect(res.status).toBe(200);
    expect(res.body.data.content).toContain('arrived late');
  });

  test('milliseconds after load are waited', async () => {
    const res = await scrape({ url: `${target.origin}/late`, js_rendering: true, wait_for: 1500 });
    expect(res.body.data.content).toContain('arrived late');
  });

  test('a selector that never appears ends in TARGET_TIMEOUT at the timeout', async () => {
    const res = await scrape({
      url: `${target.origin}/late`,
      js_rendering: true,
      wait_for: '#never',
      timeout: 3,
    });
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ success: false, code: 'TARGET_TIMEOUT', billing: { charged: 0 } });
    expect(res.body.error).toContain('#never');
    expect(res.body.metadata.engine).toBe('browser');
  });

  test('a page that never finishes loading ends in TARGET_TIMEOUT', async () => {
    // The held image keeps the load event from firing; nothing releases it in this test.
    const res = await scrape({
      url: `${target.origin}/waits-for-image?name=never`,
      js_rendering: true,
      timeout: 2,
    });
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('TARGET_TIMEOUT');
  });
});

describe('screenshot', () => {
  test('a screenshot is a PNG of the viewport, 1280×800', async () => {
    const res = await scrape({ url: `${target.origin}/shell`, js_rendering: true, screenshot: true });
    expect(res.status).toBe(200);
    expect(pngSize(res.body.data.screenshot)).toEqual({ width: 1280, height: 800 });
  });

  test('a full-page screenshot is as tall as the page', async () => {
    const res = await scrape({
      url: `${target.origin}/tall`,
      js_rendering: true,
      screenshot: true,
      screenshot_full_page: true,
    });
    expect(pngSize(res.body.data.screenshot)).toEqual({ width: 1280, height: 3000 });
  });

  test('a job without screenshot has none in its result', async () => {
    const res = await scrape({ url: `${target.origin}/shell`, js_rendering: true });
    expect(res.body.data.screenshot).toBeUndefined();
  });
});

describe('a client that leaves', () => {
  test('a sync render whose client hangs up ends at once: its page is closed and its browser slot freed', async () => {
    const browser = service.running.context.scraper.browser!;
    const client = new AbortController();
    const call = fetch(`${service.baseUrl}/v1/scrape`, {
      method: 'POST',
      headers: { 'x-api-key': KEY_A, 'content-type': 'application/json' },
      body: JSON.stringify({
        url: `${target.origin}/waits-for-image?name=left`,
        js_rendering: true,
        timeout: 120,
      }),
      signal: client.signal,
    }).catch(() => 'aborted');
    await waitFor(() => target.held('left') === 1, { what: 'the page to be loading', timeoutMs: 30_000 });
    expect(browser.load.rendering).toBe(1);
    client.abort();
    expect(await call).toBe('aborted');
    // The context is closed: the page's held image request is gone with it, and the slot is free.
    await waitFor(() => target.held('left') === 0 && browser.load.rendering === 0, {
      what: 'the render to end',
      timeoutMs: 10_000,
    });
  });
});

describe('the command line', () => {
  test('omniscrape scrape --render --screenshot FILE prints the rendered page and writes the PNG', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-shot-'));
    try {
      const file = path.join(dir, 'page.png');
      const run = await runCli(['scrape', `${target.origin}/shell`, '--render', '--screenshot', file], {
        OMNISCRAPE_URL: service.baseUrl,
        OMNISCRAPE_KEY: KEY_A,
      });
      expect(run).toMatchObject({ code: 0 });
      expect(run.stdout).toContain('Written by script');
      expect(pngSize(fs.readFileSync(file).toString('base64'))).toEqual({ width: 1280, height: 800 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a crashed Chromium', () => {
  test('Chromium killed in the middle of a job: the job still finishes, and the restart is counted', async () => {
    const browser = service.running.context.scraper.browser!;
    const restartsBefore = await counter('omniscrape_browser_restarts_total', { reason: 'crashed' });
    const submitted = await service.call('POST', '/v1/scrape/async', {
      url: `${target.origin}/waits-for-image?name=crash`,
      js_rendering: true,
      timeout: 60,
    });
    expect(submitted.status).toBe(202);
    // The page is loading (its image is held): kill Chromium under it.
    const deadline = Date.now() + 30_000;
    while (target.held('crash') === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(target.held('crash')).toBe(1);
    const pid = await browser.chromiumPid();
    expect(pid).toBeDefined();
    process.kill(pid!, 'SIGKILL');
    // The render is tried again on a new Chromium; its image is answered this time.
    target.release('crash');
    const job = await waitForJob(service, submitted.body.job_id);
    expect(job.status).toBe('completed');
    expect(job.result.data.content).toContain('a page with a held image');
    expect(await browser.chromiumPid()).not.toBe(pid);
    expect(await counter('omniscrape_browser_restarts_total', { reason: 'crashed' })).toBe(
      restartsBefore + 1,
    );
  }, 90_000);
});

describe('a gateway with the browser turned off', () => {
  let off: TestService;
  beforeAll(async () => {
    off = await startTestService({ env: { OMNISCRAPE_BROWSER_CONCURRENCY: '0' } });
  });
  afterAll(async () => {
    await off?.stop();
  });

  test('refuses rendering with 400 naming the setting, and mode "auto" answers the page as fetched', async () => {
    const refused = await off.call('POST', '/v1/scrape', {
      url: `${target.origin}/shell`,
      js_rendering: true,
    });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ success: false, code: 'INVALID_REQUEST' });
    expect(refused.body.error).toContain('OMNISCRAPE_BROWSER_CONCURRENCY');
    const auto = await off.call('POST', '/v1/scrape', { url: `${target.origin}/shell` });
    expect(auto.body.metadata.engine).toBe('http');
    expect(auto.body.data.content).not.toContain('Written by script');
  });
});
