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
    [{ url: 'http://127.0.0.1/', mode: 'browser' }, 'mode'],
    [{ url: 'http://127.0.0.1/', headers: { 'X-A': 1 } }, 'headers'],
    [{ url: 'http://127.0.0.1/', headers: ['x'] }, 'headers'],
    [{ url: 'http://127.0.0.1/', follow_redirects: 'yes' }, 'follow_redirects'],
    [{ url: 'http://127.0.0.1/', body: 'x' }, 'body'],
    [{ url: 'http://127.0.0.1/', surprise: true }, 'surprise'],
    [{ url: 'http://127.0.0.1/', js_rendering: true }, 'js_rendering'],
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

describe('health', () => {
  test('GET /healthz answers 200 and GET /readyz answers 200 once migrated', async () => {
    expect((await env.service.call('GET', '/healthz', undefined, null)).status).toBe(200);
    const ready = await env.service.call('GET', '/readyz', undefined, null);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ success: true, status: 'ready' });
  });
});
