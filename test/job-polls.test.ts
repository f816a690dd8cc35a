import { createHash } from 'node:crypto';
import type { KyselyPlugin } from 'kysely';
import { request } from 'undici';
import { JobReads } from '../src/jobs/job-reads';
import { KEY_A, KEY_B, startTestService, type TestService } from './helpers/service';

const UNKNOWN = '00000000-0000-4000-8000-000000000000';

let service: TestService;
let jobsOfA: string[];
let jobOfB: string;

beforeAll(async () => {
  // No workers: the jobs stay queued, so every read sees the same rows.
  service = await startTestService({ roles: { api: true, worker: false } });
  const submit = async (key: string) =>
    (await service.call('POST', '/v1/scrape/async', { url: 'http://127.0.0.1:9/page' }, key)).body
      .job_id as string;
  jobsOfA = [await submit(KEY_A), await submit(KEY_A), await submit(KEY_A)];
  jobOfB = await submit(KEY_B);
});
afterAll(async () => {
  await service?.stop();
});

/** The service's database, counting the statements sent through it. */
function countingDb(): { db: typeof service.running.context.store.db; statements: () => number } {
  let statements = 0;
  const counter: KyselyPlugin = {
    transformQuery: (args) => args.node,
    transformResult: async (args) => {
      statements++;
      return args.result;
    },
  };
  return { db: service.running.context.store.db.withPlugin(counter), statements: () => statements };
}

describe('polling a job', () => {
  test('reads that come while one runs share the next statement, and each gets its own job', async () => {
    const { db, statements } = countingDb();
    const reads = new JobReads(db, 1);
    const ids = [jobsOfA[0]!, jobsOfA[1]!, jobOfB, UNKNOWN, jobsOfA[2]!, jobsOfA[1]!];
    const found = await Promise.all(ids.map((id) => reads.find(id)));
    expect(found.map((job) => job?.id)).toEqual([
      jobsOfA[0],
      jobsOfA[1],
      jobOfB,
      undefined,
      jobsOfA[2],
      jobsOfA[1],
    ]);
    expect(found.map((job) => job?.status)).toEqual([
      'queued',
      'queued',
      'queued',
      undefined,
      'queued',
      'queued',
    ]);
    // The first read alone, then one for the five that came while it ran (four distinct ids).
    expect(statements()).toBe(2);
  });

  test('polls sent together are each answered with their own job, and never with another key’s', async () => {
    const polls = [...jobsOfA, jobOfB, UNKNOWN, ...jobsOfA].map((id) =>
      service.call('GET', `/v1/jobs/${id}`, undefined, KEY_A),
    );
    const answers = await Promise.all(polls);
    expect(answers.map((a) => [a.status, a.body.data?.job_id])).toEqual([
      ...jobsOfA.map((id) => [200, id]),
      [404, undefined],
      [404, undefined],
      ...jobsOfA.map((id) => [200, id]),
    ]);
  });

  test('a poll answers with a weak ETag of its body, and If-None-Match with it answers 304', async () => {
    const res = await fetch(`${service.baseUrl}/v1/jobs/${jobsOfA[0]}`, { headers: { 'x-api-key': KEY_A } });
    const body = Buffer.from(await res.arrayBuffer());
    const tag = res.headers.get('etag');
    // Express's weak ETag, as the etag package makes it: length in hex, then the SHA-1 in base64.
    const sha1 = createHash('sha1').update(body).digest('base64').slice(0, 27);
    expect(tag).toBe(`W/"${body.length.toString(16)}-${sha1}"`);
    // undici's request, not fetch: fetch adds Cache-Control: no-cache to a conditional request.
    const again = await request(`${service.baseUrl}/v1/jobs/${jobsOfA[0]}`, {
      headers: { 'x-api-key': KEY_A, 'if-none-match': tag! },
    });
    await again.body.dump();
    expect(again.statusCode).toBe(304);
  });
});
