import { once } from 'node:events';
import { loadConfig } from '../src/config';
import { SyncScrapeLeases } from '../src/jobs/sync-leases';
import { runSyncScrape } from '../src/jobs/sync-scrape';
import type { ScrapeRequest } from '../src/scraper/scrape-request';
import type { PageScraper } from '../src/scraper/page-scraper';
import type { ApiKeyIdentity } from '../src/db/api-keys';
import { failAbandonedSyncScrapes } from '../src/maintenance/abandoned-sync-scrapes';
import { lockAndCountKeySlots } from '../src/db/statements/lock-and-count-key-slots';
import { spawnCli } from './helpers/cli';
import { freePort } from './helpers/free-port';
import { capturingLogger } from './helpers/log-capture';
import { KEY_A, startTestService, type TestService } from './helpers/service';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { waitFor } from './helpers/wait';

// A key with a concurrency limit of 1: one leaked sync slot locks it out entirely. The lease is
// the shortest allowed, 3 s, so lapses show quickly.
const LEASE_SECONDS = 3;
let service: TestService;
let target: TargetServer;
let key: ApiKeyIdentity;

beforeAll(async () => {
  target = await startTargetServer();
  service = await startTestService({
    env: { OMNISCRAPE_SYNC_LEASE_SECONDS: String(LEASE_SECONDS) },
    roles: { api: true, worker: false },
  });
  await service.query(`update omniscrape.api_keys set concurrency_limit = 1 where name = 'alpha'`);
  const [row] = await service.query(
    `select id, name, concurrency_limit, max_queued, monthly_quota from omniscrape.api_keys where name = 'alpha'`,
  );
  key = row;
});
afterAll(async () => {
  await service?.stop();
  await target?.close();
});

const slotsInUse = async () =>
  (
    await lockAndCountKeySlots(service.running.context.store.db, [key.id], [], {
      asyncSeconds: 20,
      syncSeconds: LEASE_SECONDS,
    })
  ).get(key.id)!.processing;

/** Waits until the key's slots in use are `n`; returns how long that took. */
async function slotsInUseReach(n: number, what: string, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  await waitFor(async () => (await slotsInUse()) === n, { what, timeoutMs, intervalMs: 100 });
  return Date.now() - started;
}

/** A context for runSyncScrape in this process, with a scraper of the test's choosing and a log it can read. */
function syncContext(scraper: Pick<PageScraper, 'scrape'>) {
  const { logger, lines } = capturingLogger();
  const { store, metrics } = service.running.context;
  const syncLeases = new SyncScrapeLeases(store.db, logger, LEASE_SECONDS);
  syncLeases.start();
  const config = loadConfig({
    OMNISCRAPE_SYNC_LEASE_SECONDS: String(LEASE_SECONDS),
    OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'true',
  });
  return { ctx: { store, config, logger, syncLeases, metrics, scraper: scraper as PageScraper }, lines };
}

const request = (url: string): ScrapeRequest => ({
  url,
  method: 'GET',
  headers: {},
  format: 'raw',
  timeout: 30,
  follow_redirects: true,
  mode: 'auto',
});

describe("a sync scrape's concurrency slot frees however the scrape ends", () => {
  test('a scrape that throws something other than a scrape failure ends its row failed (INTERNAL_ERROR) and frees the slot at once', async () => {
    const { ctx } = syncContext({
      scrape: async () => {
        throw new TypeError('a bug in the scraper');
      },
    });
    try {
      await expect(runSyncScrape(ctx, key, request(`${target.origin}/plain`))).rejects.toThrow(
        'a bug in the scraper',
      );
      expect(await slotsInUse()).toBe(0);
      const rows = await service.query(
        `select status, error_code from omniscrape.scrape_jobs where api_key_id = $1 and kind = 'sync' order by created_at desc limit 1`,
        [key.id],
      );
      expect(rows).toEqual([{ status: 'failed', error_code: 'INTERNAL_ERROR' }]);
    } finally {
      await ctx.syncLeases.stop();
    }
  });

  test('a scrape whose outcome cannot be written keeps its slot only until its lease lapses, and says so in the log', async () => {
    // Every status change of this key's sync rows fails, as a write would with Postgres refusing it.
    await service.query(`
      create function refuse_sync_end() returns trigger language plpgsql as $$
      begin raise exception 'refused by the test'; end $$`);
    await service.query(`
      create trigger refuse_sync_end before update of status on omniscrape.scrape_jobs
      for each row when (new.kind = 'sync' and new.status <> 'processing') execute function refuse_sync_end()`);
    const { ctx, lines } = syncContext({
      scrape: async (req) => ({
        page: { content: 'x', status_code: 200, headers: {}, final_url: req.url },
        engine: 'http',
      }),
    });
    try {
      await expect(runSyncScrape(ctx, key, request(`${target.origin}/plain`))).rejects.toThrow(
        'refused by the test',
      );
      expect(lines.map((l) => l.msg)).toContain(
        "could not end a sync scrape's history row after an error; its slot frees when its lease lapses",
      );
      expect(lines.find((l) => l.err)?.err.stack).toMatch(/refused by the test/);
      const waited = await slotsInUseReach(0, 'the slot to free', 20_000);
      console.log(
        `[reliability] sync slot after a failed outcome UPDATE: freed ${(waited / 1000).toFixed(1)} s later (lease ${LEASE_SECONDS} s)`,
      );
      const [row] = await service.query(
        `select status from omniscrape.scrape_jobs where api_key_id = $1 and kind = 'sync' order by created_at desc limit 1`,
        [key.id],
      );
      expect(row.status).toBe('processing'); // the history row is ended later, by maintenance
    } finally {
      await service.query(
        `drop trigger refuse_sync_end on omniscrape.scrape_jobs; drop function refuse_sync_end()`,
      );
      await service.query(
        `update omniscrape.scrape_jobs set status = 'failed' where api_key_id = $1 and status = 'processing'`,
        [key.id],
      );
      await ctx.syncLeases.stop();
    }
  });

  test('a long scrape keeps its slot past its lease: the lease is renewed while it runs', async () => {
    const url = `${target.origin}/held?name=renewed`; // runs until the test releases it
    const slow = service.call('POST', '/v1/scrape', { url });
    await slotsInUseReach(1, 'the scrape to start');
    // Well past one lease (on Postgres's clock, which the leases run on): a second scrape of the
    // key is still refused, the first still holds its slot.
    await waitFor(
      async () =>
        (
          await service.query(
            `select 1 from omniscrape.scrape_jobs
              where url = $1 and status = 'processing' and started_at < now() - $2 * interval '1 second'`,
            [url, LEASE_SECONDS + 1],
          )
        ).length > 0,
      { what: 'the scrape to outlive one lease', timeoutMs: 30_000, intervalMs: 100 },
    );
    expect((await service.call('POST', '/v1/scrape', { url: `${target.origin}/plain` })).body.code).toBe(
      'CONCURRENCY_LIMIT',
    );
    expect(await slotsInUse()).toBe(1);
    target.release('renewed');
    expect((await slow).status).toBe(200);
    expect(await slotsInUse()).toBe(0);
  }, 30_000);

  test('a client that hangs up frees the slot as soon as the scrape is abandoned', async () => {
    const hangUp = new AbortController();
    const abandoned = fetch(`${service.baseUrl}/v1/scrape`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': KEY_A },
      body: JSON.stringify({ url: `${target.origin}/slow?ms=20000` }),
      signal: hangUp.signal,
    }).catch(() => undefined);
    await slotsInUseReach(1, 'the scrape to start');
    hangUp.abort();
    await abandoned;
    await slotsInUseReach(0, 'the slot to free');
    expect((await service.call('POST', '/v1/scrape', { url: `${target.origin}/plain` })).status).toBe(200);
  });

  test('an API process killed (SIGKILL) mid scrape frees its slot within the lease', async () => {
    const port = await freePort();
    const api = spawnCli(['api'], {
      DATABASE_URL: service.databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'true',
      OMNISCRAPE_SYNC_LEASE_SECONDS: String(LEASE_SECONDS),
    });
    try {
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok === true,
        { what: 'the API process to be ready', timeoutMs: 30_000, intervalMs: 100 },
      );
      const doomed = fetch(`http://127.0.0.1:${port}/v1/scrape`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': KEY_A },
        body: JSON.stringify({ url: `${target.origin}/slow?ms=60000`, timeout: 60 }),
      }).catch(() => undefined);
      await slotsInUseReach(1, 'the scrape to start');
      await waitFor(
        async () =>
          (
            await service.query(
              `select 1 from omniscrape.scrape_jobs where api_key_id = $1 and kind = 'sync' and status = 'processing'
                  and heartbeat_at > started_at + interval '500 milliseconds'`,
              [key.id],
            )
          ).length > 0,
        { what: 'the process to renew the lease once', intervalMs: 100 },
      );
      api.kill('SIGKILL');
      await once(api, 'exit');
      await doomed;
      const [{ killed_at }] = await service.query('select now() as killed_at');
      const freedAfterMs = await slotsInUseReach(0, 'the slot to free', 30_000);
      console.log(
        `[reliability] sync slot after SIGKILL of the API process mid scrape: freed ${(freedAfterMs / 1000).toFixed(1)} s later (lease ${LEASE_SECONDS} s)`,
      );
      // The lease was renewed only while the process lived (never after the kill, never ahead of
      // time), and a slot counts for one lease after its last renewal: so it freed within the lease
      // of the kill. Measured on Postgres's clock, which the leases run on, not on this busy machine's.
      const [{ heartbeat_at }] = await service.query(
        `select heartbeat_at from omniscrape.scrape_jobs where api_key_id = $1 and kind = 'sync' and status = 'processing'`,
        [key.id],
      );
      expect(heartbeat_at.getTime()).toBeLessThanOrEqual(killed_at.getTime());
      expect((await service.call('POST', '/v1/scrape', { url: `${target.origin}/plain` })).status).toBe(200);
      const rows = await service.query(
        `select status from omniscrape.scrape_jobs where api_key_id = $1 and kind = 'sync' and status = 'processing'`,
        [key.id],
      );
      expect(rows).toEqual([{ status: 'processing' }]); // the killed one's row: ended later by maintenance
    } finally {
      if (api.exitCode === null && api.signalCode === null) api.kill('SIGKILL');
    }
  }, 60_000);

  test('maintenance ends a sync row only once its lease lapsed and its timeout is long past (SCRAPE_ABANDONED)', async () => {
    const insert = (lease: string) =>
      service.query(
        `insert into omniscrape.scrape_jobs (id, api_key_id, kind, url, host, method, format, timeout_seconds, status, attempts, started_at, heartbeat_at)
         values (gen_random_uuid(), $1, 'sync', 'http://127.0.0.1/', '127.0.0.1', 'GET', 'raw', 30, 'processing', 1, now() - interval '10 minutes', now() - $2::interval)
         returning id`,
        [key.id, lease],
      );
    const [lapsed] = await insert('1 minute');
    const [renewed] = await insert('1 second'); // its process still renews it: still scraping, however old
    await failAbandonedSyncScrapes(service.running.context.store.db, LEASE_SECONDS);
    const status = async (id: string) =>
      (await service.query('select status, error_code from omniscrape.scrape_jobs where id = $1', [id]))[0];
    expect(await status(lapsed.id)).toEqual({ status: 'failed', error_code: 'SCRAPE_ABANDONED' });
    expect(await status(renewed.id)).toEqual({ status: 'processing', error_code: null });
    await service.query(`update omniscrape.scrape_jobs set status = 'failed' where id = $1`, [renewed.id]);
  });
});
