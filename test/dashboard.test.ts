import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { revokeApiKey } from '../src/db/api-keys';
import { runCli } from './helpers/cli';
import { insertHistoryRows, keyId } from './helpers/history-rows';
import { KEY_A, startTestService, type TestService } from './helpers/service';

// The dashboard's door: who gets in (admin keys, by header or sign-in session), how the session
// cookie is made, and what a bad range answers. The figures themselves: dashboard-browser.test.ts.
let service: TestService;
let adminKey: string;

beforeAll(async () => {
  service = await startTestService({ roles: { api: true, worker: false } });
  adminKey = await createAdminKey('ops');
});
afterAll(async () => {
  await service?.stop();
});

/** `omniscrape keys create NAME --admin`, as docs/operations.md says; returns the key it prints. */
async function createAdminKey(name: string): Promise<string> {
  const created = await runCli(['keys', 'create', name, '--admin'], { DATABASE_URL: service.databaseUrl });
  expect(created.code).toBe(0);
  return created.stdout.trim();
}

/** A request as a browser on this host makes it (its Origin), redirects not followed. */
function request(
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
) {
  return fetch(service.baseUrl + path, {
    method: init.method ?? 'GET',
    headers: init.headers,
    body: init.body,
    redirect: 'manual',
  });
}

/** Signs in through the form; returns the answer (its Set-Cookie holds the session). */
function signIn(key: string, headers: Record<string, string> = { origin: service.baseUrl }) {
  return request('/dashboard/sign-in', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ key }).toString(),
  });
}

/** The `name=value` of a sign-in's session cookie, as a browser would send it back. */
function sessionCookieOf(res: Response): string {
  const setCookie = res.headers.get('set-cookie');
  expect(setCookie).toMatch(/^omniscrape_dashboard=/);
  return setCookie!.split(';')[0]!;
}

describe('the dashboard', () => {
  test('keys create --admin makes an admin key, and keys list says so', async () => {
    const list = await runCli(['keys', 'list'], { DATABASE_URL: service.databaseUrl });
    expect(list.stdout).toMatch(/^ops\t.*\tadmin$/m);
    expect(list.stdout).toMatch(/^alpha\t(?!.*\tadmin).*$/m);
  });

  test('a plain key in X-API-Key gets 403 FORBIDDEN, an unknown one 401', async () => {
    for (const path of ['/dashboard', '/dashboard/data']) {
      const plain = await service.call('GET', path, undefined, KEY_A);
      expect(plain.status).toBe(403);
      expect(plain.body).toEqual({ success: false, error: expect.any(String), code: 'FORBIDDEN' });
      const unknown = await service.call('GET', path, undefined, 'not-a-key-at-all');
      expect(unknown.status).toBe(401);
      expect(unknown.body.code).toBe('UNAUTHORIZED');
    }
  });

  test('an admin key in X-API-Key opens the page, under a strict Content-Security-Policy', async () => {
    const res = await request('/dashboard', { headers: { 'x-api-key': adminKey } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/); // no inline script
    expect(html).not.toMatch(/\sstyle=/);
    expect(html).toContain('src="/dashboard/assets/chart.umd.min.js"');
  });

  test('a browser without a key is sent to the sign-in form', async () => {
    const res = await request('/dashboard?range=24h');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/dashboard/sign-in');
    const form = await request('/dashboard/sign-in');
    expect(form.status).toBe(200);
    const html = await form.text();
    expect(html).toContain('<form method="post" action="/dashboard/sign-in">');
    expect(html).toContain('type="password"');
    // The page's data is refused rather than redirected: its script sends the browser to the form.
    const data = await request('/dashboard/data');
    expect(data.status).toBe(401);
    expect(await data.json()).toMatchObject({ success: false, code: 'UNAUTHORIZED' });
  });

  test('signing in sets an HttpOnly, SameSite=Strict session cookie for /dashboard, holding a token stored only as a digest', async () => {
    const res = await signIn(adminKey);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/dashboard');
    const setCookie = res.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/; HttpOnly/);
    expect(setCookie).toMatch(/; SameSite=Strict/);
    expect(setCookie).toMatch(/; Path=\/dashboard(;|$)/);
    expect(setCookie).toMatch(/; Max-Age=\d+/);
    expect(setCookie).not.toMatch(/; Secure/); // plain http here: a Secure cookie would never come back
    const cookie = sessionCookieOf(res);
    const token = cookie.split('=')[1]!;
    expect(token).not.toContain(adminKey);
    const rows = await service.query('select token_hash from omniscrape.dashboard_sessions');
    expect(rows.map((r) => r.token_hash)).toContain(createHash('sha256').update(token).digest('hex'));
    expect(JSON.stringify(rows)).not.toContain(token);

    const page = await request('/dashboard', { headers: { cookie } });
    expect(page.status).toBe(200);
    expect(await page.text()).not.toContain(adminKey);
  });

  test('the cookie is Secure when the browser came over HTTPS (its Origin, through a proxy)', async () => {
    const host = new URL(service.baseUrl).host;
    const res = await signIn(adminKey, { origin: `https://${host}` });
    expect(res.status).toBe(303);
    expect(res.headers.get('set-cookie')).toMatch(/; Secure/);
  });

  test('a sign-in posted from another site, or with no origin at all, is refused (CSRF)', async () => {
    const attempts: Record<string, string>[] = [
      { origin: 'https://evil.example' },
      { origin: 'null' },
      {},
      { origin: service.baseUrl, 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of attempts) {
      const res = await signIn(adminKey, headers);
      expect(res.status).toBe(403);
      expect(res.headers.get('set-cookie')).toBeNull();
      expect(await res.json()).toMatchObject({ success: false, code: 'FORBIDDEN' });
    }
  });

  test('a wrong or plain key gets the form again, without the key echoed and without a cookie', async () => {
    for (const [key, status] of [
      ['osk_wrong-key-0000000000000000', 401],
      [KEY_A, 403],
    ] as const) {
      const res = await signIn(key);
      expect(res.status).toBe(status);
      expect(res.headers.get('set-cookie')).toBeNull();
      const html = await res.text();
      expect(html).toContain('<form method="post"');
      expect(html).not.toContain(key);
    }
  });

  test('signing out ends the session: the old cookie no longer opens the page', async () => {
    const cookie = sessionCookieOf(await signIn(adminKey));
    const out = await request('/dashboard/sign-out', {
      method: 'POST',
      headers: { cookie, origin: service.baseUrl },
    });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/dashboard/sign-in');
    expect(out.headers.get('set-cookie')).toMatch(/^omniscrape_dashboard=;.*Expires=Thu, 01 Jan 1970/);
    const again = await request('/dashboard', { headers: { cookie } });
    expect(again.status).toBe(303);
    expect((await request('/dashboard/data', { headers: { cookie } })).status).toBe(401);
  });

  test("a revoked admin key's session stops working at once", async () => {
    const key = await createAdminKey('ops-revoked');
    const cookie = sessionCookieOf(await signIn(key));
    expect((await request('/dashboard', { headers: { cookie } })).status).toBe(200);
    await revokeApiKey(service.running.context.store.db, 'ops-revoked');
    expect((await request('/dashboard', { headers: { cookie } })).status).toBe(303);
    expect((await request('/dashboard/data', { headers: { cookie } })).status).toBe(401);
    expect((await request('/dashboard', { headers: { 'x-api-key': key } })).status).toBe(401);
  });

  test('an expired session is refused', async () => {
    const cookie = sessionCookieOf(await signIn(adminKey));
    const token = cookie.split('=')[1]!;
    await service.query(
      `update omniscrape.dashboard_sessions set expires_at = now() - interval '1 second' where token_hash = $1`,
      [createHash('sha256').update(token).digest('hex')],
    );
    expect((await request('/dashboard', { headers: { cookie } })).status).toBe(303);
  });

  test('a malformed or too wide range answers 400 INVALID_REQUEST', async () => {
    const bad = [
      'range=2h',
      'range=1h&range=6h',
      'from=yesterday&to=today',
      'from=2026-01-01T00:00:00Z',
      'from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z',
      'from=2026-01-01T00:00:00Z&to=2026-01-08T00:00:01Z',
      'range=1h&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z',
      'colour=red',
    ];
    for (const query of bad) {
      for (const path of ['/dashboard', '/dashboard/data']) {
        const res = await service.call('GET', `${path}?${query}`, undefined, adminKey);
        expect({ query, path, status: res.status }).toEqual({ query, path, status: 400 });
        expect(res.body).toEqual({ success: false, error: expect.any(String), code: 'INVALID_REQUEST' });
      }
    }
  });

  test('its data counts the scrapes of the range each engine produced: rendered in the browser, fetched over HTTP', async () => {
    const alpha = await keyId(service, 'alpha');
    const at = (iso: string) => new Date(`2026-03-01T${iso}Z`);
    await insertHistoryRows(service, [
      {
        apiKeyId: alpha,
        createdAt: at('10:05:00'),
        status: 'completed',
        queueMs: 5,
        runMs: 900,
        engine: 'browser',
      },
      {
        apiKeyId: alpha,
        createdAt: at('10:20:00'),
        status: 'failed',
        queueMs: 5,
        runMs: 900,
        engine: 'browser',
      },
      {
        apiKeyId: alpha,
        createdAt: at('10:30:00'),
        status: 'completed',
        queueMs: 5,
        runMs: 20,
        engine: 'http',
      },
      {
        apiKeyId: alpha,
        createdAt: at('10:40:00'),
        status: 'completed',
        queueMs: 5,
        runMs: 20,
        engine: 'http',
      },
      {
        apiKeyId: alpha,
        createdAt: at('10:45:00'),
        status: 'timed_out',
        queueMs: 5,
        runMs: 30_000,
        engine: 'http',
      },
      // Ended without a scrape: no engine.
      { apiKeyId: alpha, createdAt: at('10:50:00'), status: 'cancelled' },
      // Outside the range.
      {
        apiKeyId: alpha,
        createdAt: at('11:00:00'),
        status: 'completed',
        queueMs: 5,
        runMs: 900,
        engine: 'browser',
      },
    ]);
    const range = 'from=2026-03-01T10:00:00Z&to=2026-03-01T11:00:00Z';
    const data = await service.call('GET', `/dashboard/data?${range}`, undefined, adminKey);
    expect(data.status).toBe(200);
    expect(data.body.data.engines).toEqual({ browser: 2, http: 3 });
    const page = await (await request(`/dashboard?${range}`, { headers: { 'x-api-key': adminKey } })).text();
    expect(page).toContain('<dd data-figure="rendered">');
  });

  test('the chart code is served from the chart.js package itself, and the page needs nothing from elsewhere', async () => {
    const chart = await request('/dashboard/assets/chart.umd.min.js');
    expect(chart.status).toBe(200);
    expect(chart.headers.get('content-type')).toMatch(/javascript/);
    const packageJson = path.join(path.dirname(require.resolve('chart.js')), '..', 'package.json');
    const { version } = JSON.parse(fs.readFileSync(packageJson, 'utf8')) as { version: string };
    expect(await chart.text()).toContain(version);
    for (const asset of ['dashboard.js', 'dashboard.css']) {
      expect((await request(`/dashboard/assets/${asset}`)).status).toBe(200);
    }
    expect((await request('/dashboard/assets/..%2Fpackage.json')).status).toBe(404);
    const html = await (await request('/dashboard', { headers: { 'x-api-key': adminKey } })).text();
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });
});
