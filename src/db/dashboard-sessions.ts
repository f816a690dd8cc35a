import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from './schema';

/** A key as the dashboard sees it: whether it may open the page at all. */
export interface DashboardKey {
  id: string;
  name: string;
  is_admin: boolean;
}

/**
 * Session tokens are random 256-bit secrets, so, as for API keys, a plain SHA-256 is the right
 * digest: the table never holds a token that would sign anyone in.
 */
const digestOf = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

/**
 * The unrevoked key with this hash (hashApiKey), admin or not. Read from Postgres on every
 * dashboard request rather than from the API's key cache: the page is requested rarely, and a
 * revocation then applies at once.
 */
export async function findDashboardKey(db: Db, keyHash: string): Promise<DashboardKey | undefined> {
  return db
    .selectFrom('omniscrape.api_keys')
    .select(['id', 'name', 'is_admin'])
    .where('key_hash', '=', keyHash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
}

/**
 * Starts a session for an admin key and returns its token (to be set as the cookie; only its
 * digest is stored). Expired sessions are deleted here: sign-ins are rare, so this keeps the
 * table small without a scheduled duty.
 */
export async function createDashboardSession(db: Db, apiKeyId: string, ttlSeconds: number): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  await db.transaction().execute(async (trx) => {
    await trx
      .deleteFrom('omniscrape.dashboard_sessions')
      .where('expires_at', '<', sql<Date>`now()`)
      .execute();
    await trx
      .insertInto('omniscrape.dashboard_sessions')
      .values({
        token_hash: digestOf(token),
        api_key_id: apiKeyId,
        expires_at: sql<Date>`now() + make_interval(secs => ${ttlSeconds})`,
      })
      .execute();
  });
  return token;
}

/** The key of an unexpired session, while that key is an unrevoked admin key. */
export async function findDashboardSession(db: Db, token: string): Promise<DashboardKey | undefined> {
  return db
    .selectFrom('omniscrape.dashboard_sessions as s')
    .innerJoin('omniscrape.api_keys as k', 'k.id', 's.api_key_id')
    .select(['k.id', 'k.name', 'k.is_admin'])
    .where('s.token_hash', '=', digestOf(token))
    .where('s.expires_at', '>', sql<Date>`now()`)
    .where('k.revoked_at', 'is', null)
    .where('k.is_admin', '=', true)
    .executeTakeFirst();
}

/** Ends a session (sign-out); a token that names none changes nothing. */
export async function deleteDashboardSession(db: Db, token: string): Promise<void> {
  await db.deleteFrom('omniscrape.dashboard_sessions').where('token_hash', '=', digestOf(token)).execute();
}
