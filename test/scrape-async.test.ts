import { scrapeRequest } from './helpers/scrape-request';
import { LOST_SCRAPE_QUEUE } from '../src/jobs/queue';
import { startTargetServer } from './helpers/target-server';
import { KEY_B, useServiceAndTarget, waitForJob } from './helpers/service';
import { waitFor } from './helpers/wait';

const env = useServiceAndTarget();

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

async function historyRow(jobId: string) {
  const rows = await env.service.query(
    `select status, attempts, charged::float8 as charged, error_code, target_status_code, result_bytes,
            started_at is not null as started, finished_at is not null as finished
       from omniscrape.scrape_jobs where id = $1`,
    [jobId],
  );
  return rows[0];
}

describe('POST /v1/scrape/async and GET /v1/jobs/{job_id}', () => {
  test('submitting answers 202 at once with the job id, status queued, the poll path and a Location header', async () => {
    const res = await env.service.call('POST', '/v1/scrape/async', { url: `${env.target.origin}/page` });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({
      success: true,
      job_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      status: 'queued',
      poll: `/v1/jobs/${res.body.job_id}`,
    });
    expect(res.headers.get('location')).toBe(`/v1/jobs/${res.body.job_id}`);
  });

  test('an ended job leaves no row in the pg-boss queue: its history row alone keeps the outcome', async () => {
    const submitted = await env.service.call('POST', '/v1/scrape/async', {
      url: `${env.target.origin}/page`,
    });
    const job = await waitForJob(env.service, submitted.body.job_id);
    expect(job.status).toBe('completed');
    // The outcome and the queue row's removal commit together, so the row is gone as the job reads ended.
    expect(
      await env.service.query(`select state from pgboss.job where name = 'scrape' and id = $1`, [job.job_id]),
    ).toEqual([]);
    expect(await historyRow(job.job_id)).toMatchObject({ status: 'completed', finished: true });
  });

  test('a completed job answers exactly what the sync call answers, with ISO-8601 UTC timestamps', async () => {
    const request = { url: `${env.target.origin}/page`, format: 'markdown' };
    const submitted = await env.service.call('POST', '/v1/scrape/async', request);
    const job = await waitForJob(env.service, submitted.body.job_id);
    const sync = await env.service.call('POST', '/v1/scrape', request);

    expect(job).toMatchObject({ job_id: submitted.body.job_id, status: 'completed', url: request.url });
    expect(job.created_at).toMatch(ISO_UTC);
    expect(job.updated_at).toMatch(ISO_UTC);
    expect(job.error).toBeUndefined();
    const { metadata: jobMeta, ...jobResult } = job.result;
    const { metadata: syncMeta, ...syncResult } = sync.body;
    expect(jobResult).toEqual({
      ...syncResult,
      data: { ...syncResult.data, headers: { ...syncResult.data.headers, date: expect.any(String) } },
    });
    expect(typeof jobMeta.elapsed_time).toBe('number');
    expect(Object.keys(jobMeta)).toEqual(Object.keys(syncMeta));

    expect(await historyRow(job.job_id)).toMatchObject({
      status: 'completed',
      attempts: 1,
      charged: 0.0035,
      target_status_code: 200,
      started: true,
      finished: true,
    });
  });

  test('a job is observed in processing while its target is slow, then completes', async () => {
    const submitted = await env.service.call('POST', '/v1/scrape/async', {
      url: `${env.target.origin}/slow?ms=1500`,
    });
    const processing = await waitForJob(
      env.service,
      submitted.body.job_id,
      (d) => d.status === 'processing',
      10_000,
    );
    expect(processing.result).toBeUndefined();
    const done = await waitForJob(env.service, submitted.body.job_id);
    expect(done.status).toBe('completed');
    expect(done.result.data.content).toBe('finally');
  });

  test('a job slower than its timeout ends timed_out with code TARGET_TIMEOUT and nothing charged', async () => {
    const submitted = await env.service.call('POST', '/v1/scrape/async', {
      url: `${env.target.origin}/slow?ms=10000`,
      timeout: 1,
    });
    const job = await waitForJob(env.service, submitted.body.job_id);
    expect(job).toMatchObject({
      status: 'timed_out',
      code: 'TARGET_TIMEOUT',
      error: expect.stringContaining('1 s'),
    });
    expect(job.result).toBeUndefined();
    expect(await historyRow(job.job_id)).toMatchObject({
      status: 'timed_out',
      charged: 0,
      error_code: 'TARGET_TIMEOUT',
    });
  });

  test('a refused connection ends failed with code TARGET_UNREACHABLE and charged 0', async () => {
    const closed = await startTargetServer();
    await closed.close();
    const submitted = await env.service.call('POST', '/v1/scrape/async', { url: `${closed.origin}/page` });
    const job = await waitForJob(env.service, submitted.body.job_id);
    expect(job).toMatchObject({ status: 'failed', code: 'TARGET_UNREACHABLE' });
    expect(typeof job.error).toBe('string');
    expect(await historyRow(job.job_id)).toMatchObject({
      status: 'failed',
      charged: 0,
      error_code: 'TARGET_UNREACHABLE',
    });
  });

  test('a job is visible only to the key that created it: another key gets 404 as for an unknown id', async () => {
    const submitted = await env.service.call('POST', '/v1/scrape/async', {
      url: `${env.target.origin}/page`,
    });
    await waitForJob(env.service, submitted.body.job_id);
    const asOtherKey = await env.service.call('GET', `/v1/jobs/${submitted.body.job_id}`, undefined, KEY_B);
    const unknown = await env.service.call(
      'GET',
      '/v1/jobs/00000000-0000-4000-8000-000000000000',
      undefined,
      KEY_B,
    );
    expect(asOtherKey.status).toBe(404);
    expect(asOtherKey.body).toEqual(unknown.body);
    expect(asOtherKey.body).toEqual({ success: false, error: expect.any(String), code: 'JOB_NOT_FOUND' });
  });

  test('a job pg-boss dead-letters (its workers kept vanishing) ends timed_out JOB_TIMEOUT, and a late finisher cannot change it', async () => {
    const request = { url: `${env.target.origin}/held?name=dead-lettered` }; // answers when released
    const submitted = await env.service.call('POST', '/v1/scrape/async', request);
    const jobId = submitted.body.job_id;
    await waitForJob(env.service, jobId, (d) => d.status === 'processing', 10_000);
    // What pg-boss does after the last retry: a copy of the payload, under a new id, in the dead-letter queue.
    await env.service.running.context.boss.send(LOST_SCRAPE_QUEUE, {
      jobId,
      request: scrapeRequest(request.url),
    });
    const job = await waitForJob(env.service, jobId);
    expect(job).toMatchObject({ status: 'timed_out', code: 'JOB_TIMEOUT' });
    // The scrape still running for the lost attempt finishes now and settles that attempt.
    env.target.release('dead-lettered');
    await waitFor(
      async () =>
        (
          await env.service.query(`select state from pgboss.job where name = 'scrape' and id = $1`, [jobId])
        )[0]?.state !== 'active',
      { what: 'the late finisher to settle its attempt' },
    );
    const after = await env.service.call('GET', `/v1/jobs/${jobId}`);
    expect(after.body.data).toMatchObject({ status: 'timed_out', code: 'JOB_TIMEOUT' });
    expect(after.body.data.result).toBeUndefined();
    expect(await historyRow(jobId)).toMatchObject({ status: 'timed_out', charged: 0 });
  });

  test('a malformed job id answers 404 JOB_NOT_FOUND, never a 500', async () => {
    for (const id of ['not-a-uuid', '123', "1' or '1'='1", '%00', 'a'.repeat(500)]) {
      const res = await env.service.call('GET', `/v1/jobs/${encodeURIComponent(id)}`);
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('JOB_NOT_FOUND');
    }
  });
});
