import { useServiceAndTarget } from './helpers/service';
import { startTargetServer } from './helpers/target-server';
import { waitFor } from './helpers/wait';

const env = useServiceAndTarget();

describe('POST /v1/scrape', () => {
  test('a page is scraped and answered with content, status, headers, final url, elapsed time and charge', async () => {
    const res = await env.service.call('POST', '/v1/scrape', { url: `${env.target.origin}/page` });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      success: true,
      data: { status_code: 200, final_url: `${env.target.origin}/page` },
      billing: { charged: 0.0035 },
    });
    expect(res.body.data.content).toContain('<h1>Hello omniscrape</h1>');
    expect(res.body.data.headers['x-target']).toBe('yes');
    expect(typeof res.body.metadata.elapsed_time).toBe('number');
  });

  test('format text answers the visible text without markup, scripts or styles', async () => {
    const res = await env.service.call('POST', '/v1/scrape', {
      url: `${env.target.origin}/page`,
      format: 'text',
    });
    expect(res.status).toBe(200);
    expect(res.body.data.content).toContain('HELLO OMNISCRAPE');
    expect(res.body.data.content).toContain('A paragraph with a link.');
    expect(res.body.data.content).not.toMatch(/<|window\.secret|color:red/);
  });

  test('format markdown answers markdown', async () => {
    const res = await env.service.call('POST', '/v1/scrape', {
      url: `${env.target.origin}/page`,
      format: 'markdown',
    });
    expect(res.status).toBe(200);
    expect(res.body.data.content).toContain('# Hello omniscrape');
    expect(res.body.data.content).toContain('[a link](/x)');
    expect(res.body.data.content).toMatch(/^-\s+first$/m);
    expect(res.body.data.content).not.toContain('window.secret');
  });

  test('a target answering 404 or 500 is still a successful scrape that reports the status', async () => {
    for (const code of [404, 500]) {
      const res = await env.service.call('POST', '/v1/scrape', {
        url: `${env.target.origin}/status?code=${code}`,
      });
      expect(res.status).toBe(200);
      expect(res.body.success).toBe(true);
      expect(res.body.data.status_code).toBe(code);
    }
  });

  test('method, headers and body are forwarded; Host and hop-by-hop headers are not', async () => {
    const res = await env.service.call('POST', '/v1/scrape', {
      url: `${env.target.origin}/echo`,
      method: 'post',
      headers: {
        'X-Custom': 'one',
        'X-Hop': 'two',
        Host: 'evil.example',
        Connection: 'x-hop',
        'Keep-Alive': 'timeout=99',
        Upgrade: 'h2c',
        TE: 'trailers',
      },
      body: 'hello=1',
    });
    expect(res.status).toBe(200);
    const echoed = JSON.parse(res.body.data.content);
    expect(echoed.method).toBe('POST');
    expect(echoed.body).toBe('hello=1');
    expect(echoed.headers['x-custom']).toBe('one');
    expect(echoed.headers.host).toBe(new URL(env.target.origin).host);
    for (const hopByHop of ['x-hop', 'keep-alive', 'upgrade', 'te'])
      expect(echoed.headers[hopByHop]).toBeUndefined();
  });

  test('a redirect to another origin carries only the safe headers; one within the origin carries them all', async () => {
    const other = await startTargetServer();
    try {
      const credentials = {
        Authorization: 'Bearer secret',
        Cookie: 'session=1',
        'X-Api-Key': 'key-for-the-first-origin',
        'PRIVATE-TOKEN': 'gitlab-token',
        'X-Custom': 'custom',
      };
      const safe = { 'Accept-Language': 'fr', 'Cache-Control': 'no-cache', 'User-Agent': 'my-agent/1' };
      const headers = { ...credentials, ...safe };
      const seenAt = async (url: string) => {
        const res = await env.service.call('POST', '/v1/scrape', { url, headers });
        expect(res.body.success).toBe(true);
        return JSON.parse(res.body.data.content).headers as Record<string, string>;
      };
      const lowered = (fields: Record<string, string>) =>
        Object.fromEntries(Object.entries(fields).map(([name, value]) => [name.toLowerCase(), value]));

      const crossOrigin = await seenAt(`${env.target.origin}/redirect?to=${other.origin}/echo`);
      expect(crossOrigin).toMatchObject(lowered(safe));
      for (const name of Object.keys(lowered(credentials))) expect(crossOrigin[name]).toBeUndefined();

      // Back at the first origin after a hop through another: that hop chose the path, so no credentials.
      const backAgain = `${other.origin}/redirect?to=${encodeURIComponent(`${env.target.origin}/echo`)}`;
      const returned = await seenAt(`${env.target.origin}/redirect?to=${encodeURIComponent(backAgain)}`);
      for (const name of Object.keys(lowered(credentials))) expect(returned[name]).toBeUndefined();

      const sameOrigin = await seenAt(`${env.target.origin}/redirect?to=/echo`);
      expect(sameOrigin).toMatchObject(lowered(headers));
    } finally {
      await other.close();
    }
  });

  test('redirects are followed and final_url names the last hop; follow_redirects false answers the 3xx', async () => {
    const followed = await env.service.call('POST', '/v1/scrape', {
      url: `${env.target.origin}/redirect?to=/plain`,
    });
    expect(followed.body.data).toMatchObject({
      status_code: 200,
      content: 'just text',
      final_url: `${env.target.origin}/plain`,
    });
    const notFollowed = await env.service.call('POST', '/v1/scrape', {
      url: `${env.target.origin}/redirect?to=/plain`,
      follow_redirects: false,
    });
    expect(notFollowed.body.data).toMatchObject({
      status_code: 302,
      final_url: `${env.target.origin}/redirect?to=/plain`,
    });
    expect(notFollowed.body.data.headers.location).toBe('/plain');
  });

  test('a redirect loop ends after 10 hops with 502 TOO_MANY_REDIRECTS', async () => {
    const res = await env.service.call('POST', '/v1/scrape', { url: `${env.target.origin}/loop` });
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ success: false, code: 'TOO_MANY_REDIRECTS', billing: { charged: 0 } });
  });

  test('a target slower than timeout answers 502 TARGET_TIMEOUT with the elapsed time and no charge', async () => {
    const res = await env.service.call('POST', '/v1/scrape', {
      url: `${env.target.origin}/slow?ms=5000`,
      timeout: 0.5,
    });
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ success: false, code: 'TARGET_TIMEOUT', billing: { charged: 0 } });
    expect(res.body.metadata.elapsed_time).toBeGreaterThanOrEqual(0.4);
    expect(res.body.metadata.elapsed_time).toBeLessThan(5);
  });

  test('a refused connection answers 502 TARGET_UNREACHABLE', async () => {
    const closed = await startTargetServer();
    const origin = closed.origin;
    await closed.close();
    const res = await env.service.call('POST', '/v1/scrape', { url: `${origin}/page` });
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ success: false, code: 'TARGET_UNREACHABLE', billing: { charged: 0 } });
    expect(typeof res.body.error).toBe('string');
  });

  test('a sync scrape whose client hangs up is abandoned and recorded failed CLIENT_DISCONNECTED, not left processing', async () => {
    const url = `${env.target.origin}/slow?ms=5000&hangup=1`;
    const hangUp = new AbortController();
    const slowHits = env.target.hits.get('/slow') ?? 0;
    const request = fetch(`${env.service.baseUrl}/v1/scrape`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'test-key-alpha-00001' },
      body: JSON.stringify({ url }),
      signal: hangUp.signal,
    }).catch(() => undefined);
    await waitFor(() => (env.target.hits.get('/slow') ?? 0) > slowHits, {
      what: 'the scrape to reach the target',
    });
    hangUp.abort();
    await request;
    const rows = await waitFor(
      async () => {
        const rows = await env.service.query(
          `select status, error_code from omniscrape.scrape_jobs where kind = 'sync' and url = $1`,
          [url],
        );
        return rows[0]?.status !== 'processing' && rows;
      },
      { what: 'the abandoned scrape to be recorded' },
    );
    expect(rows).toEqual([{ status: 'failed', error_code: 'CLIENT_DISCONNECTED' }]);
  });

  test('sync scrapes are recorded in the job history with their outcome and charge', async () => {
    const rows = await env.service.query(
      `select status, target_status_code, error_code, charged::float8 as charged from omniscrape.scrape_jobs where kind = 'sync' and url = $1`,
      [`${env.target.origin}/loop`],
    );
    expect(rows).toEqual([
      { status: 'failed', target_status_code: null, error_code: 'TOO_MANY_REDIRECTS', charged: 0 },
    ]);
  });
});
