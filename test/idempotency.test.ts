import { randomUUID } from 'node:crypto';
import { PURGE_IDEMPOTENCY_KEYS_QUEUE } from '../src/maintenance/idempotency-key-purge';
import { KEY_B, useServiceAndTarget } from './helpers/service';
import { waitFor } from './helpers/wait';

// The purge test queues a run of the duty; a worker looks for it every half second.
const env = useServiceAndTarget({ tuning: { maintenancePollSeconds: 0.5 } });

const submit = (body: unknown, idempotencyKey: string, key?: string) =>
  env.service.call('POST', '/v1/scrape/async', body, key, { 'Idempotency-Key': idempotencyKey });

async function jobsFor(url: string): Promise<string[]> {
  const rows = await env.service.query('select id from omniscrape.scrape_jobs where url = $1', [url]);
  return rows.map((r: { id: string }) => r.id);
}

describe('Idempotency-Key on POST /v1/scrape/async', () => {
  test('the same key and body again answer the original job with 200, and create nothing', async () => {
    const url = `${env.target.origin}/page?idem=${randomUUID()}`;
    const key = randomUUID();
    const first = await submit({ url }, key);
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const again = await submit({ url }, key);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('location')).toBe(`/v1/jobs/${first.body.job_id}`);
    expect(again.body).toEqual({
      success: true,
      job_id: first.body.job_id,
      status: expect.stringMatching(/^(queued|processing|completed)$/),
      poll: `/v1/jobs/${first.body.job_id}`,
    });
    expect(await jobsFor(url)).toEqual([first.body.job_id]);
  });

  test('the same key with another body answers 409 IDEMPOTENCY_KEY_REUSED and queues nothing', async () => {
    const url = `${env.target.origin}/page?idem=${randomUUID()}`;
    const key = randomUUID();
    expect((await submit({ url }, key)).status).toBe(202);
    const other = await submit({ url, format: 'text' }, key);
    expect(other.status).toBe(409);
    expect(other.body).toEqual({ success: false, error: expect.any(String), code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await jobsFor(url)).toHaveLength(1);
  });

  test('concurrent submissions with one key create one job, and every one of them answers it', async () => {
    const url = `${env.target.origin}/page?idem=${randomUUID()}`;
    const key = randomUUID();
    const answers = await Promise.all(Array.from({ length: 20 }, () => submit({ url }, key)));
    const created = await jobsFor(url);
    expect(created).toHaveLength(1);
    expect(answers.map((a) => a.body.job_id)).toEqual(Array(20).fill(created[0]));
    expect(answers.filter((a) => a.status === 202)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(19);
  });

  test('keys are per API key: another key with the same Idempotency-Key gets its own job', async () => {
    const url = `${env.target.origin}/page?idem=${randomUUID()}`;
    const key = randomUUID();
    const a = await submit({ url }, key);
    const b = await submit({ url }, key, KEY_B);
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(b.body.job_id).not.toBe(a.body.job_id);
  });

  test('after 24 hours the key creates a new job', async () => {
    const url = `${env.target.origin}/page?idem=${randomUUID()}`;
    const key = randomUUID();
    const first = await submit({ url }, key);
    await env.service.query(
      `update omniscrape.idempotency_keys set created_at = now() - interval '24 hours 1 second' where key = $1`,
      [key],
    );
    const later = await submit({ url, format: 'text' }, key);
    expect(later.status).toBe(202);
    expect(later.body.job_id).not.toBe(first.body.job_id);
  });

  test('a malformed Idempotency-Key answers 400 naming the header, and queues nothing', async () => {
    const url = `${env.target.origin}/page?idem=${randomUUID()}`;
    for (const bad of ['x'.repeat(256), 'has space', 'é']) {
      const res = await env.service.call('POST', '/v1/scrape/async', { url }, undefined, {
        'Idempotency-Key': bad,
      });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('INVALID_REQUEST');
      expect(res.body.error).toMatch(/^Idempotency-Key: /);
    }
    expect(await jobsFor(url)).toHaveLength(0);
  });

  test('the maintenance duty deletes keys older than 24 hours and keeps newer ones', async () => {
    const url = `${env.target.origin}/page?idem=${randomUUID()}`;
    const [old, fresh] = [randomUUID(), randomUUID()];
    await submit({ url }, old);
    await submit({ url }, fresh);
    await env.service.query(
      `update omniscrape.idempotency_keys set created_at = now() - interval '25 hours' where key = $1`,
      [old],
    );
    await env.service.running.context.boss.send(PURGE_IDEMPOTENCY_KEYS_QUEUE, {}); // what its cron slot does
    const keysLeft = () =>
      env.service.query('select key from omniscrape.idempotency_keys where key = any($1)', [[old, fresh]]);
    await waitFor(async () => (await keysLeft()).length === 1, {
      what: 'the purge to delete the expired key',
      timeoutMs: 20_000,
    });
    expect((await keysLeft()).map((r: { key: string }) => r.key)).toEqual([fresh]);
  });

  test('a batch resent with its key answers the same batch and jobs; concurrent twins create one batch', async () => {
    const url = `${env.target.origin}/page?idem=${randomUUID()}`;
    const batch = { requests: [{ url }, { url: `${url}&second` }] };
    const key = randomUUID();
    const answers = await Promise.all(
      Array.from({ length: 5 }, () =>
        env.service.call('POST', '/v1/scrape/batch', batch, undefined, { 'Idempotency-Key': key }),
      ),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 202]);
    const [first] = answers;
    for (const a of answers) {
      expect(a.body.batch_id).toBe(first!.body.batch_id);
      expect(a.body.job_ids).toEqual(first!.body.job_ids);
    }
    const batches = await env.service.query(
      `select count(*)::int as n from omniscrape.batch_jobs b join omniscrape.scrape_jobs j on j.id = b.job_id
        where j.url = $1`,
      [url],
    );
    expect(batches[0].n).toBe(1);
  });

  test('a key used for a job answers 409 when sent with a batch, and the reverse', async () => {
    const url = `${env.target.origin}/page?idem=${randomUUID()}`;
    const key = randomUUID();
    expect((await submit({ url }, key)).status).toBe(202);
    const asBatch = await env.service.call('POST', '/v1/scrape/batch', { requests: [{ url }] }, undefined, {
      'Idempotency-Key': key,
    });
    expect(asBatch.status).toBe(409);
    expect(asBatch.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });
});
