import { ESLint } from 'eslint';
import path from 'node:path';

// The rooms' arrows as eslint.config.mjs holds them: an import from a lower room to a higher one
// fails lint (and so `npm test`), one the layout allows passes. Each case lints a line of text as if
// it were the named file, so nothing is written to src/.

const eslint = new ESLint({ cwd: path.join(__dirname, '..') });

async function restrictedImports(file: string, specifier: string): Promise<string[]> {
  const text = `import * as probe from '${specifier}';\nexport { probe };\n`;
  const [result] = await eslint.lintText(text, { filePath: file });
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

const forbidden: [file: string, specifier: string][] = [
  ['src/db/pool.ts', '../http/app'],
  ['src/db/statements/find-jobs.ts', '../../jobs/queue'],
  ['src/db/pool.ts', '../admin/migrate'],
  ['src/scraper/scraper.ts', '../db/pool'],
  ['src/scraper/scraper.ts', '../service'],
  ['src/contract/requests.ts', '../config'],
  ['src/client/client.ts', '../http/app'],
  ['src/jobs/submit.ts', '../http/app'],
  ['src/jobs/submit.ts', '../maintenance/maintenance'],
  ['src/http/app.ts', '../cli/common'],
  ['src/http/app.ts', '../admin/migrate'],
  ['src/maintenance/maintenance.ts', '../jobs/queue'],
  ['src/metrics/service-metrics.ts', '../jobs/queue'],
  ['src/admin/migrate.ts', '../cli/common'],
  ['src/postgres-server/embedded-postgres.ts', '../db/pool'],
  ['src/config.ts', './service'],
];

const allowed: [file: string, specifier: string][] = [
  ['src/db/pool.ts', '../contract/errors'],
  ['src/client/client.ts', '../contract/requests'],
  ['src/jobs/submit.ts', '../db/pool'],
  ['src/http/app.ts', '../jobs/queue'],
  ['src/maintenance/maintenance.ts', '../db/pool'],
  ['src/admin/migrate.ts', '../jobs/queue'],
  ['src/cli/common.ts', '../admin/migrate'],
];

describe('the rooms of src/ import downwards only', () => {
  test.each(forbidden)('%s importing %s fails lint', async (file, specifier) => {
    expect(await restrictedImports(file, specifier)).toHaveLength(1);
  });

  test.each(allowed)('%s importing %s passes', async (file, specifier) => {
    expect(await restrictedImports(file, specifier)).toEqual([]);
  });
});
