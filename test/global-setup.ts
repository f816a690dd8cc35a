import { serverVersion, startTestPostgres } from './helpers/postgres-server';

export default async function globalSetup(): Promise<void> {
  const postgres = await startTestPostgres();
  // Test files run in worker processes started after this, so they inherit the variable.
  process.env.OMNISCRAPE_TEST_ADMIN_URL = postgres.url;
  (globalThis as any).__omniscrapeTestPostgres = postgres;
  const version = /^PostgreSQL \S+/.exec(await serverVersion(postgres.url))?.[0];
  console.log(`\n[omniscrape tests] ${version} from ${postgres.source}`);
}
