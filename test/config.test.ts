import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig, SETTING_VARIABLES } from '../src/config';

/** The Settings table of docs/operations.md: variable → default as written there ("—": none). */
function documentedSettings(): Map<string, string> {
  const lines = readFileSync(path.join(__dirname, '..', 'docs', 'operations.md'), 'utf8').split('\n');
  const header = lines.findIndex((line) => /^\|\s*variable\s*\|\s*default\s*\|/.test(line));
  expect(header).toBeGreaterThan(-1);
  const rows = new Map<string, string>();
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    const [variable, defaultValue] = line
      .split('|')
      .slice(1, 3)
      .map((cell) => cell.trim().replace(/^`(.*)`$/, '$1'));
    rows.set(variable!, defaultValue!);
  }
  return rows;
}

describe('settings', () => {
  test('the Settings table of docs/operations.md lists every variable the service reads, and only those', () => {
    expect([...documentedSettings().keys()].sort()).toEqual(SETTING_VARIABLES.map((s) => s.env).sort());
  });

  test('each default in the Settings table of docs/operations.md is the default the service applies', () => {
    const table = documentedSettings();
    const unset = loadConfig({});
    for (const { field, env } of SETTING_VARIABLES) {
      const documented = table.get(env);
      if (documented === '—') {
        // No default: the setting is simply absent.
        expect({ env, value: unset[field] }).toEqual({
          env,
          value: Array.isArray(unset[field]) ? [] : undefined,
        });
      } else {
        // Setting the variable to its documented default changes nothing.
        expect({ env, value: loadConfig({ [env]: documented })[field] }).toEqual({
          env,
          value: unset[field],
        });
      }
    }
  });

  test('unset variables take their defaults; set ones are parsed into their fields', () => {
    expect(loadConfig({})).toMatchObject({
      port: 8080,
      host: undefined,
      blockedTargets: [],
      databaseUrl: undefined,
      reportingDatabaseUrl: undefined,
      directDatabaseUrl: undefined,
      preparedStatements: true,
      apiKeys: [],
      allowPrivateTargets: false,
      resultTtlSeconds: 86_400,
      historyDays: 90,
      workerBodyBudgetBytes: 8 * 1024 * 1024,
      maintenancePollSeconds: 30,
      apiPoolSize: 20,
      workerPoolSize: 10,
      bossPoolSize: undefined,
      reportingPoolSize: 4,
      migrationDatabaseUrl: undefined,
    });
    expect(
      loadConfig({
        PORT: '0',
        OMNISCRAPE_REPORTING_DATABASE_URL: 'postgres://reader@replica.internal:5432/omniscrape',
        OMNISCRAPE_DIRECT_DATABASE_URL: 'postgres://omniscrape@db.internal:5432/omniscrape',
        OMNISCRAPE_PREPARED_STATEMENTS: 'false',
        OMNISCRAPE_API_KEYS: 'a:12345678901234567890, b:abcdefghijklmnopqrst',
        OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'yes',
        OMNISCRAPE_BLOCKED_TARGETS: '10.1.2.3/8, 192.0.2.7,fd00:ec2::/32,::ffff:10.0.0.0/104',
        OMNISCRAPE_WORKER_BODY_BUDGET_MB: '0.5',
        OMNISCRAPE_LOG_LEVEL: '',
        OMNISCRAPE_MIGRATION_DATABASE_URL: 'postgres://owner@db.internal:5432/omniscrape',
        OMNISCRAPE_DB_POOL_SIZE: '2',
        OMNISCRAPE_PGBOSS_POOL_SIZE: '3',
      }),
    ).toMatchObject({
      port: 0,
      reportingDatabaseUrl: 'postgres://reader@replica.internal:5432/omniscrape',
      directDatabaseUrl: 'postgres://omniscrape@db.internal:5432/omniscrape',
      preparedStatements: false,
      apiKeys: [
        { name: 'a', key: '12345678901234567890' },
        { name: 'b', key: 'abcdefghijklmnopqrst' },
      ],
      allowPrivateTargets: true,
      // Each range as its network's CIDR; a mapped IPv6 range as the IPv4 range it maps.
      blockedTargets: ['10.0.0.0/8', '192.0.2.7/32', 'fd00:ec2::/32', '10.0.0.0/8'],
      workerBodyBudgetBytes: 512 * 1024,
      logLevel: 'info',
      migrationDatabaseUrl: 'postgres://owner@db.internal:5432/omniscrape',
      apiPoolSize: 2,
      bossPoolSize: 3,
    });
  });

  test('bad values throw one ConfigError naming every bad variable', () => {
    const bad = {
      PORT: '70000',
      OMNISCRAPE_HEARTBEAT_SECONDS: '5',
      OMNISCRAPE_API_KEYS: 'bob:nineteen-characters',
      OMNISCRAPE_REPORTING_DATABASE_URL: 'replica host',
      OMNISCRAPE_WORKER_DB_POOL_SIZE: '0',
      OMNISCRAPE_BLOCKED_TARGETS: '10.0.0.0/8,10.0.0.0/33',
    };
    expect(() => loadConfig(bad)).toThrow(ConfigError);
    const message = (() => {
      try {
        loadConfig(bad);
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    })();
    expect(message).toMatch(/^invalid settings:\n {2}PORT: /);
    expect(message).toContain('\n  OMNISCRAPE_HEARTBEAT_SECONDS: ');
    expect(message).toContain(
      '\n  OMNISCRAPE_API_KEYS: entry "bob" must be name:key with a key of 20+ characters',
    );
    expect(message).toContain('\n  OMNISCRAPE_REPORTING_DATABASE_URL: ');
    expect(message).toContain('\n  OMNISCRAPE_WORKER_DB_POOL_SIZE: ');
    expect(message).toContain(
      '\n  OMNISCRAPE_BLOCKED_TARGETS: "10.0.0.0/33" is not an IPv4 or IPv6 address or CIDR range',
    );
  });

  test('a worker may run up to 10,000 scrapes at once, and no more', () => {
    expect(loadConfig({ OMNISCRAPE_WORKER_CONCURRENCY: '5000' }).workerConcurrency).toBe(5000);
    expect(loadConfig({ OMNISCRAPE_WORKER_CONCURRENCY: '10000' }).workerConcurrency).toBe(10_000);
    expect(() => loadConfig({ OMNISCRAPE_WORKER_CONCURRENCY: '10001' })).toThrow(
      /invalid settings:\n {2}OMNISCRAPE_WORKER_CONCURRENCY: /,
    );
  });

  test('tuning no variable reaches is set through the second argument, and checked too', () => {
    expect(loadConfig({}, { maintenancePollSeconds: 1 }).maintenancePollSeconds).toBe(1);
    expect(() => loadConfig({}, { maintenancePollSeconds: 0.1 })).toThrow(
      /invalid settings:\n {2}maintenancePollSeconds: /,
    );
  });
});
