import { scrapeRequest } from './helpers/scrape-request';
import { randomUUID } from 'node:crypto';
import { KeyRounds } from '../src/jobs/key-limits';
import { SCRAPE_QUEUE } from '../src/jobs/queue';
import { insertApiKey } from '../src/db/api-keys';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { KEY_B, startTestService, waitForJob, type TestService } from './helpers/service';
import { waitFor } from './helpers/wait';

// One key with 100,000 queued jobs must not starve another key: the busy key sits at its
// concurrency limit (pg-boss group limit), and its backlog is queued in rounds of that limit
// (KeyRounds, as the API queues it), so the other key's jobs start in the round being served.
const BACKLOG = 100_000;
const BUSY_KEY_CONCURRENCY = 5;

let service: TestService;
let target: TargetServer;

beforeAll(async () => {
  target = await startTargetServer({
    '/busy': (_req, res) => void setTimeout(() => res.end('busy'), 2000),
  });
  service = await startTestService({ env: { OMNISCRAPE_WORKER_CONCURRENCY: '20' } });
});
afterAll(async () => {
  await service?.stop();
  await target?.close();
});

async function fillBacklog(apiKeyId: string): Promise<void> {
  const { boss, store } = service.running.context;
  const url = `${target.origin}/busy`;
  const request = scrapeRequest(url);
  const rounds = new KeyRounds(async () => 0); // queued as into an empty queue
  for (let offset = 0; offset < BACKLOG; offset += 10_000) {
    const ids = Array.from({ length: 10_000 }, () => randomUUID());
    await store.pool.query(
      `insert into omniscrape.scrape_jobs (id, api_key_id, kind, url, host, method, format, timeout_seconds, status)
       select id, $2, 'async', $3, '127.0.0.1', 'GET', 'raw', 30, 'queued' from unnest($1::uuid[]) as id`,
      [ids, apiKeyId, url],
    );
    const priorities = await Promise.all(ids.map(() => rounds.priorityOf(apiKeyId, BUSY_KEY_CONCURRENCY)));
    await boss.insert(
      SCRAPE_QUEUE,
      ids.map((id, i) => ({
        id,
        data: { jobId: id, request },
        group: { id: apiKeyId, tier: String(BUSY_KEY_CONCURRENCY) },
        priority: priorities[i],
      })),
    );
  }
}

describe('fairness between keys', () => {
  test(`a key with ${BACKLOG.toLocaleString('en')} queued jobs does not starve another key's jobs`, async () => {
    const busy = await insertApiKey(service.running.context.store.db, 'busy-key', 'busy-key-secret-000', {
      concurrency: BUSY_KEY_CONCURRENCY,
    });
    await fillBacklog(busy!.id);
    // The busy key's jobs occupy its slots first.
    await waitFor(
      async () =>
        (
          await service.query(
            `select count(*)::int as n from omniscrape.scrape_jobs where api_key_id = $1 and status = 'processing'`,
            [busy!.id],
          )
        )[0].n === BUSY_KEY_CONCURRENCY,
      { what: "the busy key's jobs to fill its slots", timeoutMs: 30_000 },
    );

    const waits: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        const submittedAt = Date.now();
        const res = await service.call('POST', '/v1/scrape/async', { url: `${target.origin}/plain` }, KEY_B);
        expect((await waitForJob(service, res.body.job_id, undefined, 60_000, KEY_B)).status).toBe(
          'completed',
        );
        waits.push(Date.now() - submittedAt);
      }),
    );
    const [backlog] = await service.query(
      `select count(*)::int as queued from omniscrape.scrape_jobs where api_key_id = $1 and status = 'queued'`,
      [busy!.id],
    );
    console.log(
      `[fairness] other key's jobs: wait p50 ${waits.sort((a, b) => a - b)[4]} ms, max ${waits[9]} ms, with ${backlog.queued} of the busy key's jobs still queued`,
    );
    expect(backlog.queued).toBeGreaterThan(BACKLOG - 100);
    expect(Math.max(...waits)).toBeLessThan(20_000);
  }, 180_000);
});
