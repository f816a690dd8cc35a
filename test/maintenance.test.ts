import { waitFor } from './helpers/wait';
import { ABANDONED_SYNC_SCRAPES_QUEUE } from '../src/maintenance/abandoned-sync-scrapes';
import { HISTORY_RETENTION_QUEUE } from '../src/maintenance/history-retention';
import { PURGE_IDEMPOTENCY_KEYS_QUEUE } from '../src/maintenance/idempotency-key-purge';
import { PURGE_RESULTS_QUEUE } from '../src/maintenance/result-purge';
import { scheduleDuty } from '../src/maintenance/scheduled-duty';
import { startTestService, type TestService } from './helpers/service';

let service: TestService;
beforeAll(async () => {
  // A queued duty is picked up within half a second (the default looks every 30 s).
  service = await startTestService({ tuning: { maintenancePollSeconds: 0.5 } });
});
afterAll(() => service?.stop());

describe('maintenance duties', () => {
  test('each duty has a pg-boss schedule of its own', async () => {
    const { boss } = service.running.context;
    for (const queue of [
      PURGE_RESULTS_QUEUE,
      ABANDONED_SYNC_SCRAPES_QUEUE,
      PURGE_IDEMPOTENCY_KEYS_QUEUE,
      HISTORY_RETENTION_QUEUE,
    ]) {
      expect((await boss.getSchedules(queue)).map((s) => s.cron)).toEqual([service.config.purgeCron]);
    }
  });

  test('a slot of the reaper ends an abandoned sync scrape SCRAPE_ABANDONED', async () => {
    const [key] = await service.query(`select id from omniscrape.api_keys where name = 'alpha'`);
    const [row] = await service.query(
      `insert into omniscrape.scrape_jobs (id, api_key_id, kind, url, host, method, format, timeout_seconds, status, attempts, started_at, heartbeat_at)
       values (gen_random_uuid(), $1, 'sync', 'http://127.0.0.1/', '127.0.0.1', 'GET', 'raw', 30, 'processing', 1, now() - interval '10 minutes', now() - interval '10 minutes')
       returning id`,
      [key.id],
    );
    await service.running.context.boss.send(ABANDONED_SYNC_SCRAPES_QUEUE, {}); // what its cron slot does
    await waitFor(
      async () => {
        const [{ error_code }] = await service.query(
          'select error_code from omniscrape.scrape_jobs where id = $1',
          [row.id],
        );
        return error_code === 'SCRAPE_ABANDONED';
      },
      { what: 'the reaper to end the abandoned row', timeoutMs: 15_000, intervalMs: 100 },
    );
  });

  test('stopping a duty whose run hangs does not hang', async () => {
    const { boss, logger } = service.running.context;
    const queue = 'test-hanging-duty';
    await boss.createQueue(queue);
    let markStarted!: () => void;
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    const duty = await scheduleDuty(
      { boss, logger },
      {
        name: 'hanging duty',
        queue,
        cron: '0 0 1 1 *',
        // A statement stuck on a lost connection: it ignores the stop.
        run: () => {
          markStarted();
          return new Promise<void>(() => undefined);
        },
      },
      { stopTimeoutMs: 200, pollSeconds: 0.5 },
    );
    await boss.send(queue, {});
    await started;
    await expect(duty.stop()).resolves.toBeUndefined();
    await boss.unschedule(queue);
  });
});
