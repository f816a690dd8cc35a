import { API_LISTENER } from '../src/service';
import { statusPayloads } from '../src/db/statements/announce-status-changes';
import { KEY_A, KEY_B, startTestService, useServiceAndTarget } from './helpers/service';
import { waitFor } from './helpers/wait';

const env = useServiceAndTarget();

/** Submits a job whose scrape lasts until the test releases `name` at the target. */
async function heldJob(name: string): Promise<string> {
  const res = await env.service.call('POST', '/v1/scrape/async', {
    url: `${env.target.origin}/held?name=${name}`,
  });
  expect(res.status).toBe(202);
  return res.body.job_id;
}

/** Waits until the target holds `count` requests for `name`: their jobs are processing. */
async function untilHeld(name: string, count = 1): Promise<void> {
  await waitFor(() => env.target.held(name) >= count, {
    what: `${count} scrapes held at ${name}`,
    timeoutMs: 30_000,
  });
}

/** GET /v1/jobs/{id}?wait=…, with how long the answer took. */
async function waitCall(jobId: string, wait: string | number, key?: string) {
  const began = Date.now();
  const res = await env.service.call('GET', `/v1/jobs/${jobId}?wait=${wait}`, undefined, key);
  return { ...res, ms: Date.now() - began };
}

describe('GET /v1/jobs/{job_id}?wait=', () => {
  test('a terminal job is answered at once, with the same body as without wait', async () => {
    const submitted = await env.service.call('POST', '/v1/scrape/async', {
      url: `${env.target.origin}/page`,
    });
    const done = await waitCall(submitted.body.job_id, 30);
    expect(done.body.data.status).toBe('completed');
    const again = await waitCall(submitted.body.job_id, 30);
    expect(again.ms).toBeLessThan(5_000);
    const plain = await env.service.call('GET', `/v1/jobs/${submitted.body.job_id}`);
    expect(again.body).toEqual(plain.body);
  });

  test('a processing job is held until it completes, then answered completed', async () => {
    const jobId = await heldJob('wait-complete');
    await untilHeld('wait-complete');
    const answer = waitCall(jobId, 60);
    await waitFor(() => env.service.running.context.jobWatchers.size > 0, { what: 'the request to wait' });
    env.target.release('wait-complete');
    const res = await answer;
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ job_id: jobId, status: 'completed' });
    expect(res.body.data.result.data.content).toBe('released');
    expect(res.ms).toBeLessThan(30_000);
    // Told terminal, a plain poll sees the same.
    expect((await env.service.call('GET', `/v1/jobs/${jobId}`)).body.data.status).toBe('completed');
  });

  test('a wait that ends first answers the job as it is, after about the wait', async () => {
    const jobId = await heldJob('wait-expiry');
    await untilHeld('wait-expiry');
    const res = await waitCall(jobId, 1.5);
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ job_id: jobId, status: 'processing' });
    expect(res.ms).toBeGreaterThanOrEqual(1_400);
    env.target.release('wait-expiry');
  });

  test.each(['0', '61', 'abc', '-1', '', '1e1', '30&wait=31'])(
    'wait=%s answers 400 INVALID_REQUEST naming wait',
    async (wait) => {
      const res = await waitCall('00000000-0000-4000-8000-000000000000', wait);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ success: false, code: 'INVALID_REQUEST' });
      expect(res.body.error).toMatch(/\bwait\b/);
    },
  );

  test("another key's job is 404 at once, however long the wait", async () => {
    const jobId = await heldJob('wait-other-key');
    const res = await waitCall(jobId, 60, KEY_B);
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('JOB_NOT_FOUND');
    expect(res.ms).toBeLessThan(5_000);
    env.target.release('wait-other-key');
  });

  test('a waiter across a listener reconnect still answers terminal long before its wait ends', async () => {
    const jobId = await heldJob('wait-reconnect');
    await untilHeld('wait-reconnect');
    const answer = waitCall(jobId, 60);
    await waitFor(() => env.service.running.context.jobWatchers.size > 0, { what: 'the request to wait' });
    const listenerPid = async () =>
      (
        await env.service.query(
          `select pid from pg_stat_activity where application_name = $1 and datname = current_database()`,
          [API_LISTENER],
        )
      )[0]?.pid;
    const before = await listenerPid();
    expect(before).toBeDefined();
    await env.service.query('select pg_terminate_backend($1)', [before]);
    // The job completes while the listener is down (it reconnects after a second): its notice is lost.
    env.target.release('wait-reconnect');
    const res = await answer;
    expect(res.body.data).toMatchObject({ job_id: jobId, status: 'completed' });
    expect(res.ms).toBeLessThan(30_000);
    const after = await listenerPid();
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
  });

  test('a client that hangs up ends its wait and frees its entry', async () => {
    const jobId = await heldJob('wait-hang-up');
    await untilHeld('wait-hang-up');
    const hangUp = new AbortController();
    const request = fetch(`${env.service.baseUrl}/v1/jobs/${jobId}?wait=60`, {
      headers: { 'x-api-key': KEY_A },
      signal: hangUp.signal,
    }).catch(() => 'aborted');
    const watchers = env.service.running.context.jobWatchers;
    await waitFor(() => watchers.size > 0, { what: 'the request to wait' });
    hangUp.abort();
    expect(await request).toBe('aborted');
    await waitFor(() => watchers.size === 0, { what: 'the wait to end' });
    env.target.release('wait-hang-up');
  });

  test('stopping the API process answers its waits with the job as it is', async () => {
    const apiOnly = await startTestService({ roles: { api: true, worker: false } });
    const submitted = await apiOnly.call('POST', '/v1/scrape/async', { url: `${env.target.origin}/page` });
    const answer = fetch(`${apiOnly.baseUrl}/v1/jobs/${submitted.body.job_id}?wait=60`, {
      headers: { 'x-api-key': KEY_A },
    });
    await waitFor(() => apiOnly.running.context.jobWatchers.size > 0, { what: 'the request to wait' });
    const began = Date.now();
    const [res] = await Promise.all([answer, apiOnly.stop()]);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: unknown };
    expect(body.data).toMatchObject({ job_id: submitted.body.job_id, status: 'queued' });
    expect(Date.now() - began).toBeLessThan(30_000);
  });

  test('500 concurrent waiters are all answered terminal', async () => {
    const jobIds = await Promise.all(Array.from({ length: 20 }, () => heldJob('wait-many')));
    const answers = Array.from({ length: 500 }, (_, i) => waitCall(jobIds[i % jobIds.length]!, 60));
    await waitFor(() => env.service.running.context.jobWatchers.size >= jobIds.length, {
      what: 'every job to be waited on',
      timeoutMs: 30_000,
    });
    env.target.release('wait-many');
    const results = await Promise.all(answers);
    expect(results.filter((r) => r.status === 200 && r.body.data.status === 'completed')).toHaveLength(500);
    await waitFor(() => env.service.running.context.jobWatchers.size === 0, { what: 'every watch to end' });
  });
});

describe('status notices', () => {
  test("a notice's job ids are split into payloads under Postgres's 8000-byte limit, none lost", () => {
    const ids = Array.from(
      { length: 1_000 },
      (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    );
    const payloads = statusPayloads('ended', ids);
    expect(payloads.length).toBeGreaterThan(1);
    for (const p of payloads) expect(Buffer.byteLength(p)).toBeLessThan(8_000);
    for (const p of payloads) expect(p.split(',')[0]).toBe('ended');
    expect(payloads.flatMap((p) => p.split(',').slice(1))).toEqual(ids);
  });
});

describe('job watchers', () => {
  test('a notice that a job changed without ending re-reads it for event streams, not for ?wait= alone', async () => {
    const watchers = env.service.running.context.jobWatchers;
    const jobId = await heldJob('watch-kinds');
    await untilHeld('watch-kinds');
    const waitSaw: string[] = [];
    const streamSaw: string[] = [];
    const forgetWait = watchers.watch(jobId, (job) => waitSaw.push(job.status), { endOnly: true });
    try {
      // Only the stream's watcher would need this one: with none, the job is not even re-read.
      await watchers.notice(`changed,${jobId}`);
      expect(waitSaw).toEqual([]);
      const forgetStream = watchers.watch(jobId, (job) => streamSaw.push(job.status));
      await watchers.notice(`changed,${jobId}`);
      expect(streamSaw).toEqual(['processing']);
      expect(waitSaw).toEqual(['processing']);
      forgetStream();
      // An end, or the listener's reconnect (no payload: any change to any job), is for every watcher.
      await watchers.notice(`ended,${jobId}`);
      await watchers.notice(undefined);
      expect(waitSaw).toEqual(['processing', 'processing', 'processing']);
    } finally {
      forgetWait();
      env.target.release('watch-kinds');
    }
  });
});
