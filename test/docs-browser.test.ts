import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { PUBLIC_ROUTES } from '../src/contract/routes';
import { launchChromium } from './helpers/chromium';
import { startTestService, type TestService } from './helpers/service';

// The API reference page in a real browser (Debian's Chromium, headless): it renders /openapi.json
// from Swagger UI's own files, with no request to another host and no CSP violation. The
// screenshot is kept as an artifact.
const SCREENSHOT = path.resolve(__dirname, '../test-artifacts/docs.png');

let service: TestService;
let browser: Browser;
let page: Page;
const problems: string[] = [];
const requested: string[] = [];

beforeAll(async () => {
  service = await startTestService();
  browser = await launchChromium();
  page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
  // Chromium reports a CSP violation as an event; surface each as a console error.
  await page.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (e) =>
      console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));`,
  });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (err) => problems.push(err.message));
  page.on('request', (request) => requested.push(request.url()));
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} ${response.url()}`);
  });
});

afterAll(async () => {
  await browser?.close();
  await service?.stop();
});

test('GET /docs lists every route of the API and its webhook, from this host alone, under its CSP', async () => {
  const answer = await page.goto(`${service.baseUrl}/docs`);
  expect(answer?.status()).toBe(200);
  expect(answer?.headers()['content-security-policy']).toContain("script-src 'self'");
  await page.locator('.opblock').first().waitFor();
  const listed = await page
    .locator('.opblock-summary')
    .evaluateAll((blocks) =>
      blocks.map((b) =>
        [
          b.querySelector('.opblock-summary-method')?.textContent,
          b.querySelector('.opblock-summary-path')?.getAttribute('data-path'),
        ].join(' '),
      ),
    );
  // Every route of the public document, and the webhook a job's end POSTs.
  const expected = [...PUBLIC_ROUTES.map((r) => `${r.method.toUpperCase()} ${r.path}`), 'POST jobEnded'];
  expect(listed.sort()).toEqual(expected.sort());
  // An operation opened shows its parameters, body schema and answers (rendered with inline styles).
  await page.locator('#operations-jobs-submitScrapeJob .opblock-summary').click();
  await page.locator('#operations-jobs-submitScrapeJob .responses-table').first().waitFor();
  await expect(page.locator('#operations-jobs-submitScrapeJob').textContent()).resolves.toContain(
    'Idempotency-Key',
  );
  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  expect(problems).toEqual([]);
  expect(requested.filter((url) => !url.startsWith(service.baseUrl) && !url.startsWith('data:'))).toEqual([]);
});
