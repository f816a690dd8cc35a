import { useServiceAndTarget } from './helpers/service';

const env = useServiceAndTarget();

const errorShape = (code: string) => ({ success: false, error: expect.any(String), code });

describe('authentication', () => {
  test.each([
    ['POST', '/v1/scrape'],
    ['POST', '/v1/scrape/async'],
    ['GET', '/v1/jobs/00000000-0000-4000-8000-000000000000'],
  ])('%s %s without X-API-Key answers 401 UNAUTHORIZED', async (method, path) => {
    const res = await env.service.call(
      method,
      path,
      method === 'POST' ? { url: `${env.target.origin}/page` } : undefined,
      null,
    );
    expect(res.status).toBe(401);
    expect(res.body).toEqual(errorShape('UNAUTHORIZED'));
  });

  test('an unknown key answers 401 UNAUTHORIZED', async () => {
    const res = await env.service.call(
      'POST',
      '/v1/scrape',
      { url: `${env.target.origin}/page` },
      'not-a-real-key',
    );
    expect(res.status).toBe(401);
    expect(res.body).toEqual(errorShape('UNAUTHORIZED'));
  });

  test('keys are stored hashed: no key appears in plain text in the database', async () => {
    const rows = await env.service.query('select * from omniscrape.api_keys');
    expect(rows.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(rows)).not.toMatch(/test-key-alpha-00001|test-key-bravo-00002/);
  });
});

describe('request validation', () => {
  test.each([
    [{}, 'url'],
    [{ url: 'ftp://example.com/x' }, 'url'],
    [{ url: '/relative' }, 'url'],
    [{ url: 42 }, 'url'],
    [{ url: 'http://127.0.0.1/', method: 'TRACE' }, 'method'],
    [{ url: 'http://127.0.0.1/', timeout: 301 }, 'timeout'],
    [{ url: 'http://127.0.0.1/', timeout: 0 }, 'timeout'],
    [{ url: 'http://127.0.0.1/', timeout: '30' }, 'timeout'],
    [{ url: 'http://127.0.0.1/', format: 'pdf' }, 'format'],
    [{ url: 'http://127.0.0.1/', mode: 'chrome' }, 'mode'],
    [{ url: 'http://127.0.0.1/', headers: { 'X-A': 1 } }, 'headers'],
    [{ url: 'http://127.0.0.1/', headers: ['x'] }, 'headers'],
    [{ url: 'http://127.0.0.1/', follow_redirects: 'yes' }, 'follow_redirects'],
    [{ url: 'http://127.0.0.1/', body: 'x' }, 'body'],
    [{ url: 'http://127.0.0.1/', surprise: true }, 'surprise'],
    [{ url: 'http://127.0.0.1/', proxy: 'http://proxy.example:8080' }, 'proxy'],
    [{ url: 'http://127.0.0.1/a\u0000b' }, 'url'],
    [{ url: 'http://127.0.0.1/', method: 'POST', body: 'a\u0000b' }, 'body'],
  ])('%j answers 400 INVALID_REQUEST naming %s, on both scrape routes', async (body, field) => {
    for (const path of ['/v1/scrape', '/v1/scrape/async']) {
      const res = await env.service.call('POST', path, body);
      expect(res.status).toBe(400);
      expect(res.body).toEqual(errorShape('INVALID_REQUEST'));
      expect(res.body.error).toContain(field);
    }
  });

  test('a body asking for rendering is accepted on both scrape routes and in a batch', async () => {
    // A closed port: the job ends at once, whichever engine takes it.
    const rendered = { url: 'http://127.0.0.1:1/', js_rendering: true, wait_for: '#app', screenshot: true };
    const sync = await env.service.call('POST', '/v1/scrape', rendered);
    expect([200, 502]).toContain(sync.status); // scraped, or the target's failure: not refused
    const queued = await env.service.call('POST', '/v1/scrape/async', { ...rendered, mode: 'browser' });
    expect(queued.status).toBe(202);
    const batch = await env.service.call('POST', '/v1/scrape/batch', { requests: [rendered] });
    expect(batch.status).toBe(202);
  });

  test('a body that is not JSON, or not an object, answers 400 INVALID_REQUEST', async () => {
    for (const raw of ['{"url":', 'null', '[1,2]', '"text"']) {
      const res = await env.service.call('POST', '/v1/scrape/async', raw);
      expect(res.status).toBe(400);
      expect(res.body).toEqual(errorShape('INVALID_REQUEST'));
    }
  });

  test('a request body over the limit answers 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await env.service.call('POST', '/v1/scrape/async', {
      url: `${env.target.origin}/echo`,
      method: 'POST',
      body: 'x'.repeat(3 * 1024 * 1024),
    });
    expect(res.status).toBe(413);
    expect(res.body).toEqual(errorShape('PAYLOAD_TOO_LARGE'));
  });

  test('a rejected submission creates no job', async () => {
    const count = `select count(*)::int as n from omniscrape.scrape_jobs where kind = 'async'`;
    const [before] = await env.service.query(count);
    await env.service.call('POST', '/v1/scrape/async', { url: 'nope' });
    const [after] = await env.service.query(count);
    expect(after.n).toBe(before.n);
  });

  test('an unknown route answers 404 in the error shape', async () => {
    const res = await env.service.call('GET', '/v1/nothing-here');
    expect(res.status).toBe(404);
    expect(res.body).toEqual(errorShape('NOT_FOUND'));
  });
});

describe('rendering fields', () => {
  const url = 'http://127.0.0.1/';
  const cases: [object, string][] = [
    [{ url, wait_for: '#app' }, 'wait_for'],
    [{ url, wait_for: 500 }, 'wait_for'],
    [{ url, screenshot: true }, 'screenshot'],
    [{ url, js_rendering: true, screenshot_full_page: true }, 'screenshot_full_page'],
    [{ url, mode: 'http', js_rendering: true }, 'js_rendering'],
    [{ url, js_rendering: true, method: 'POST' }, 'method'],
    [{ url, mode: 'browser', method: 'POST' }, 'method'],
    [{ url, js_rendering: true, follow_redirects: false }, 'follow_redirects'],
    [{ url, js_rendering: true, timeout: 5, wait_for: 5000 }, 'wait_for'],
    [{ url, js_rendering: true, wait_for: true }, 'wait_for'],
    [{ url, js_rendering: true, wait_for: 1.5 }, 'wait_for'],
    [{ url, js_rendering: true, wait_for: -1 }, 'wait_for'],
    [{ url, js_rendering: true, wait_for: '' }, 'wait_for'],
    [{ url, js_rendering: true, timeout: 120, wait_for: 60_001 }, 'wait_for'],
    [{ url, js_rendering: 'yes' }, 'js_rendering'],
    [{ url, mode: 'chrome' }, 'mode'],
    [{ url, js_rendering: true, headers: { Authorization: 'Bearer x' } }, 'headers'],
  ];

  test('a rendered request may carry User-Agent, Accept-Language and Cookie (any case)', async () => {
    const res = await env.service.call('POST', '/v1/scrape/async', {
      url: 'http://127.0.0.1:1/',
      js_rendering: true,
      headers: { 'User-Agent': 'ua', 'accept-language': 'fr', COOKIE: 'a=b' },
    });
    expect(res.status).toBe(202);
  });

  test.each(cases)('%j answers 400 INVALID_REQUEST naming %s, on both scrape routes', async (body, field) => {
    for (const path of ['/v1/scrape', '/v1/scrape/async']) {
      const res = await env.service.call('POST', path, body);
      expect(res.status).toBe(400);
      expect(res.body).toEqual(errorShape('INVALID_REQUEST'));
      expect(res.body.error).toMatch(new RegExp(`(^|; )${field}: `));
    }
  });

  test('a mode it does not know is refused listing auto, http and browser', async () => {
    const res = await env.service.call('POST', '/v1/scrape', { url, mode: 'chrome' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/mode: .*"auto", "http", "browser"/);
  });

  test('the same rules refuse an item of a batch, naming the item and its field', async () => {
    for (const [item, field] of cases) {
      const res = await env.service.call('POST', '/v1/scrape/batch', { requests: [{ url }, item] });
      expect(res.status).toBe(400);
      expect(res.body).toEqual(errorShape('INVALID_REQUEST'));
      expect(res.body.error).toContain(`requests[1].${field}: `);
      expect(res.body.error).not.toContain('requests[0]');
    }
  });
});

describe('health', () => {
  test('GET /healthz answers 200 and GET /readyz answers 200 once migrated', async () => {
    expect((await env.service.call('GET', '/healthz', undefined, null)).status).toBe(200);
    const ready = await env.service.call('GET', '/readyz', undefined, null);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ success: true, status: 'ready' });
  });
});
