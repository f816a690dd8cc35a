import fs from 'node:fs';
import path from 'node:path';
import { migrations } from '../migrations';
import { blockingStatements } from './helpers/migration-rules';

/**
 * The last migration written before the rule (docs/production-postgres.md, "Online migrations"): 0001–0011 ran on
 * installs already and are history; what they leave is checked by online-migrations.test.ts.
 */
const LAST_BEFORE_THE_RULE = '0011_admin_keys_and_sessions';

const source = (name: string) =>
  fs.readFileSync(path.join(__dirname, '..', 'migrations', `${name}.ts`), 'utf8');

test('every migration after 0011 changes a table only in ways that lock it for a moment', () => {
  const later = Object.keys(migrations).filter((name) => name > LAST_BEFORE_THE_RULE);
  const findings = later.flatMap((name) => blockingStatements(source(name)).map((f) => `${name}, ${f}`));
  expect(findings).toEqual([]);
});

test("the rule finds what the early migrations did: 0006's index and check constraint built under lock", () => {
  expect(blockingStatements(source('0006_cancelled_status'))).toEqual([
    expect.stringMatching(/^line \d+: "\.createIndex\(" → build the index CONCURRENTLY in a deferred step/),
    expect.stringMatching(/^line \d+: "add constraint" → add the constraint NOT VALID/),
  ]);
  expect(blockingStatements(source('0003_job_heartbeats'))).toEqual([]);
});

test('the deferred steps, and a statement marked `// online:` with its reason, are let through', () => {
  // 0010's backfill, its index built and dropped CONCURRENTLY pass; what is left is two indexes on
  // daily_usage_rollup, a table 0010 creates (under the rule, each would carry an online: reason).
  const onItsOwnTable = expect.stringContaining('"create index" → build the index CONCURRENTLY');
  expect(blockingStatements(source('0010_reporting'))).toEqual([onItsOwnTable, onItsOwnTable]);
  expect(source('0010_reporting')).toMatch(/create index daily_usage_rollup_key_day_idx/);
  const marked = `export async function up(db) {
    await db.schema.createTable('t').execute();
    // online: t is created above, so empty
    await db.schema.createIndex('t_idx').on('t').column('c').execute();
  }`;
  expect(blockingStatements(marked)).toEqual([]);
  expect(blockingStatements(marked.replace('// online: t is created above, so empty', ''))).toHaveLength(1);
});
