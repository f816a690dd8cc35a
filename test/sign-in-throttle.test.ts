import { API_LISTENER } from '../src/service';
import { JOB_STATUS_CHANNEL } from '../src/db/statements/announce-status-changes';
import { insertApiKey } from '../src/db/api-keys';
import { KEY_A, KEY_B, startTestService, type TestService } from './helpers/service';
import { waitFor } from './helpers/wait';

// Five failed sign-ins per address per minute: every request of these tests comes from 127.0.0.1.
const FAILURES = 5;
const env = { OMNISCRAPE_SIGN_IN_FAILURES: String(FAILURES), OMNISCRAPE_SIGN_IN_WINDOW_SECONDS: '60' };

/** A service of its own for each block: the throttle's count of 127.0.0.1 is the process's. */
function useService(): { service: TestService } {
  const holder = {} as { service: TestService };
  beforeAll(async () => {
    holder.service = await startTestService({ env, roles: { api: true, worker: false } });
  });
  afterAll(async () => {
    await holder.service?.stop();
  });
  return holder;
}

const wrongKey = (i: number) => `osk_not_a_key_of_anyone_${i}_000000000`;

describe('failed X-API-Keys', () => {
  const env = useService();

  // The API forgets the keys it has seen each time its listener (re)connects (a change to keys may
  // have been missed): wait for that first, so what the tests show it has seen stays seen.
  beforeAll(async () => {
    await waitFor(
      async () =>
        (
          await env.service.query(
            `select 1 from pg_stat_activity where application_name = $1 and datname = current_database()
               and state = 'idle' and query ilike $2`,
            [API_LISTENER, `LISTEN %${JOB_STATUS_CHANNEL}%`],
          )
        ).length > 0,
      { what: "the API's listener to be up" },
    );
  });

  test('past the limit, wrong keys from one address are answered 429 with Retry-After, with no key lookup each', async () => {
    const { service } = env;
    expect((await service.call('GET', '/v1/jobs', undefined, KEY_A)).status).toBe(200);
    const lookups = service.running.context.apiKeys.lookups;
    for (let i = 0; i < FAILURES; i++) {
      const res = await service.call('GET', '/v1/jobs', undefined, wrongKey(i));
      expect(res.body).toMatchObject({ success: false, code: 'UNAUTHORIZED' });
    }
    for (let i = FAILURES; i < FAILURES + 20; i++) {
      const res = await service.call('GET', '/v1/jobs', undefined, wrongKey(i));
      expect(res.status).toBe(429);
      expect(res.body).toMatchObject({ success: false, code: 'TOO_MANY_FAILED_SIGN_INS' });
      const retryAfter = Number(res.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }
    // One lookup per failure that counted; none for the twenty refused after them.
    expect(service.running.context.apiKeys.lookups - lookups).toBe(FAILURES);
    // No key at all is not a guess: it is still told what is missing.
    expect((await service.call('GET', '/v1/jobs', undefined, null)).body.code).toBe('UNAUTHORIZED');
  });

  test('from a throttled address, a key this process has seen valid still works; a key it has not seen waits like a guess', async () => {
    const { service } = env;
    expect((await service.call('GET', '/v1/jobs', undefined, KEY_A)).status).toBe(200);
    const unseen = await service.call('GET', '/v1/jobs', undefined, KEY_B);
    expect(unseen.status).toBe(429);
    expect(unseen.body.code).toBe('TOO_MANY_FAILED_SIGN_INS');
  });
});

describe('failed dashboard sign-ins', () => {
  const env = useService();
  const adminKey = 'osk_dashboard_admin_key_000000001';

  beforeAll(async () => {
    await insertApiKey(env.service.running.context.store.db, 'ops', adminKey, { admin: true });
  });

  const signIn = (key: string) =>
    fetch(`${env.service.baseUrl}/dashboard/sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: env.service.baseUrl },
      body: new URLSearchParams({ key }).toString(),
      redirect: 'manual',
    });

  test('past the limit, the sign-in form answers 429 with Retry-After, and the address is throttled on the API too', async () => {
    for (let i = 0; i < FAILURES; i++) expect((await signIn(wrongKey(i))).status).toBe(401);
    const throttled = await signIn(wrongKey(FAILURES));
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await throttled.text()).toContain('Too many failed sign-ins');
    // The right admin key too: this process has not seen it valid, so it is not looked up.
    expect((await signIn(adminKey)).status).toBe(429);
    const byHeader = await env.service.call('GET', '/dashboard/data', undefined, wrongKey(99));
    expect(byHeader.status).toBe(429);
    expect(byHeader.body.code).toBe('TOO_MANY_FAILED_SIGN_INS');
    const api = await env.service.call('GET', '/v1/jobs', undefined, wrongKey(100));
    expect(api.status).toBe(429);
  });
});
