import { ApiKeyCache } from '../src/jobs/api-key-cache';
import { hashApiKey, insertApiKey, revokeApiKey } from '../src/db/api-keys';
import { runCli } from './helpers/cli';
import { createTestDatabase } from './helpers/database';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, waitForJob, type TestService } from './helpers/service';

let service: TestService;
let target: TargetServer;
let env: Record<string, string>;

beforeAll(async () => {
  target = await startTargetServer();
  service = await startTestService();
  env = { DATABASE_URL: service.databaseUrl };
});
afterAll(async () => {
  await service?.stop();
  await target?.close();
});

describe('omniscrape CLI', () => {
  test('migrate prepares an empty database: omniscrape tables and pg-boss queue tables', async () => {
    const fresh = await createTestDatabase();
    try {
      const first = await runCli(['migrate'], { DATABASE_URL: fresh.url });
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(first.stdout).toContain('applied: 0001_job_history_and_keys');
      const again = await runCli(['migrate'], { DATABASE_URL: fresh.url });
      expect(again.code).toBe(0);
      expect(again.stdout).toContain('up to date');
    } finally {
      await fresh.drop();
    }
  });

  test('keys create prints a new key once, and it works at once; revoke refuses it at once', async () => {
    const created = await runCli(['keys', 'create', 'charlie'], env);
    expect(created.code).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^osk_[A-Za-z0-9_-]{32}$/);

    const submitted = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/plain` }, key);
    expect(submitted.status).toBe(202);

    const duplicate = await runCli(['keys', 'create', 'charlie'], env);
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr).toContain('already exists');

    const listed = await runCli(['keys', 'list'], env);
    expect(listed.stdout).toContain('charlie');
    expect(listed.stdout).not.toContain(key);

    const revoked = await runCli(['keys', 'revoke', 'charlie'], env);
    expect(revoked.code).toBe(0);
    expect((await service.call('GET', `/v1/jobs/${submitted.body.job_id}`, undefined, key)).status).toBe(401);
  });

  test('keys create --webhook sets the key default webhook; keys limits --webhook none removes it', async () => {
    const hook = `${target.origin}/hook`;
    const created = await runCli(['keys', 'create', 'delta', '--webhook', hook], env);
    expect(created.code).toBe(0);
    const key = created.stdout.trim();
    expect((await runCli(['keys', 'list'], env)).stdout).toMatch(new RegExp(`delta\\t.*webhook ${hook}`));
    const submitted = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/plain` }, key);
    const hooks = await service.query('select url, secret from omniscrape.job_webhooks where job_id = $1', [
      submitted.body.job_id,
    ]);
    expect(hooks).toEqual([{ url: hook, secret: null }]);

    expect((await runCli(['keys', 'limits', 'delta', '--webhook', 'none'], env)).code).toBe(0);
    expect((await runCli(['keys', 'list'], env)).stdout).not.toContain('webhook');
    const bad = await runCli(['keys', 'limits', 'delta', '--webhook', 'ftp://example.com/'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--webhook');
  });

  test('a key lookup in flight when the key cache is cleared (a revoke) does not put the key back in the cache', async () => {
    const { db } = service.running.context.store;
    const name = `cache-race-${Date.now()}`;
    const secret = `${name}-secret`;
    await insertApiKey(db, name, secret);
    const cache = new ApiKeyCache(db, 60_000);
    const lookup = cache.find(hashApiKey(secret));
    cache.clear(); // the revoke's NOTIFY arrives while the lookup is in flight
    expect(await lookup).toBeDefined(); // it read the key before the revoke
    await revokeApiKey(db, name);
    expect(await cache.find(hashApiKey(secret))).toBeUndefined();
  });

  test('cleanup purges expired results now and reports the count', async () => {
    const submitted = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/plain` });
    await waitForJob(service, submitted.body.job_id);
    // Its TTL has passed (rather than waiting it out, its expiry is moved into the past).
    await service.query(
      `update omniscrape.job_results set expires_at = now() - interval '1 second' where job_id = $1`,
      [submitted.body.job_id],
    );
    const res = await runCli(['cleanup', '--batch-size', '1'], env);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/purged [1-9]\d* expired results/);
    expect((await service.call('GET', `/v1/jobs/${submitted.body.job_id}`)).body.data.code).toBe(
      'RESULT_EXPIRED',
    );
  });

  test('a bad setting stops a command with a message naming the variable', async () => {
    const res = await runCli(['cleanup'], { ...env, OMNISCRAPE_RESULT_TTL_SECONDS: 'soon' });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('OMNISCRAPE_RESULT_TTL_SECONDS');
  });

  test('roles other than serve refuse to start without DATABASE_URL', async () => {
    const res = await runCli(['worker'], {
      DATABASE_URL: '',
      OMNISCRAPE_DATA_DIR: '/nonexistent-omniscrape',
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('DATABASE_URL');
  });
});
