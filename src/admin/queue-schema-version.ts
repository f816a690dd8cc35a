import { sql } from 'kysely';
import type { Db } from '../db/schema';

/**
 * The version pg-boss recorded for its schema `schema` (its `version` table), or null when pg-boss
 * is not installed there. Reads only, so a runtime role can ask before pg-boss starts.
 */
export async function installedQueueSchemaVersion(db: Db, schema: string): Promise<number | null> {
  const { rows } = await sql<{ installed: boolean }>`
    select to_regclass(${`${schema}.version`}) is not null as installed`.execute(db);
  if (!rows[0]?.installed) return null;
  const version = await sql<{ version: number }>`
    select version::int as version from ${sql.id(schema, 'version')}`.execute(db);
  return version.rows[0]?.version ?? null;
}
