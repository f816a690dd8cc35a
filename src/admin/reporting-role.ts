import { createHmac, createHash, pbkdf2Sync, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../db/schema';

/** The reporting interface's schema (migration 0010): the only thing a reporting role may read. */
export const REPORTING_SCHEMA = 'omniscrape_reporting';

/** PBKDF2 rounds of a SCRAM-SHA-256 verifier: Postgres's own default (scram_iterations). */
const SCRAM_ITERATIONS = 4096;

/**
 * A password as SCRAM clients (libpq, pg) and Postgres prepare it before hashing: SASLprep's mapping
 * steps (RFC 4013), non-ASCII spaces to a space, the characters "mapped to nothing" dropped, NFKC.
 */
const saslPrepared = (password: string) =>
  password
    .replace(/[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g, ' ')
    .replace(/\u00AD|\u034F|\u1806|[\u180B-\u180D]|\u200C|\u200D|\u2060|[\uFE00-\uFE0F]|\uFEFF/g, '')
    .normalize('NFKC');

/**
 * The SCRAM-SHA-256 verifier Postgres stores for a password (RFC 5802, 7677), computed here as
 * psql's \password does: CREATE ROLE then carries the verifier, so the password itself never
 * reaches the server, its statement log or pg_stat_statements.
 */
export function scramVerifier(password: string, salt = randomBytes(16)): string {
  const salted = pbkdf2Sync(saslPrepared(password), salt, SCRAM_ITERATIONS, 32, 'sha256');
  const storedKey = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest());
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${SCRAM_ITERATIONS}:${salt.toString('base64')}$${storedKey.digest('base64')}:${serverKey.toString('base64')}`;
}

/**
 * Lets a role read the reporting views, and only them: USAGE on the schema, SELECT on its views,
 * and SELECT on the views later migrations create there (default privileges of the role running
 * this, who should be the one that runs the migrations). The views read the history with their
 * owner's rights, so nothing is granted in schema `omniscrape` or `pgboss`. With `password`, the
 * role is first created, able to log in and to do nothing else; all in one transaction.
 */
export async function grantReporting(db: Db, role: string, create?: { password: string }): Promise<void> {
  const schema = sql.id(REPORTING_SCHEMA);
  const grantee = sql.id(role);
  await db.transaction().execute(async (trx) => {
    if (create)
      await sql`create role ${grantee} login password ${sql.lit(scramVerifier(create.password))}`.execute(
        trx,
      );
    await sql`grant usage on schema ${schema} to ${grantee}`.execute(trx);
    await sql`grant select on all tables in schema ${schema} to ${grantee}`.execute(trx);
    await sql`alter default privileges in schema ${schema} grant select on tables to ${grantee}`.execute(trx);
  });
}

/** The views a granted role reads (what `reporting grant` reports it granted). */
export async function reportingViews(db: Db): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select table_name as name from information_schema.views
     where table_schema = ${REPORTING_SCHEMA} order by table_name`.execute(db);
  return rows.map((r) => r.name);
}
