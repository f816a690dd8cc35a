import { sql } from 'kysely';
import type { Db } from './schema';

// A key's webhook signing secrets (migration 0013), each sealed (src/sealed-secrets.ts): the row
// with no `retires_at` is the current one; a row a rotation replaced signs too until its `retires_at`.

/** What a key's sealed secrets are bound to (sealSecret's `context`): they open for this key only. */
export const keySecretContext = (apiKeyId: string) => `key_webhook_secrets:${apiKeyId}`;

/** The key's sealed secrets that sign now, the current one first. */
export async function liveKeyWebhookSecrets(db: Db, apiKeyId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('omniscrape.key_webhook_secrets')
    .select('sealed_secret')
    .where('api_key_id', '=', apiKeyId)
    .where((eb) => eb.or([eb('retires_at', 'is', null), eb('retires_at', '>', sql<Date>`now()`)]))
    .orderBy(sql`retires_at is null`, 'desc')
    .orderBy('id', 'desc')
    .execute();
  return rows.map((r) => r.sealed_secret);
}

/**
 * Records the key's first secret; false when it has one already (another process made it first,
 * and that one stands).
 */
export async function insertFirstKeyWebhookSecret(
  db: Db,
  apiKeyId: string,
  sealed: string,
): Promise<boolean> {
  const row = await db
    .insertInto('omniscrape.key_webhook_secrets')
    .values({ api_key_id: apiKeyId, sealed_secret: sealed })
    .onConflict((oc) => oc.column('api_key_id').where('retires_at', 'is', null).doNothing())
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Makes `sealed` the key's current secret. The one it replaces signs on for `overlapSeconds`; one
 * replaced earlier still overlapping stops now (at most two secrets sign at once). The key's row is
 * locked meanwhile, so two rotations of a key run one after the other. Returns when the replaced
 * secret stops signing, or undefined when the key had none.
 */
export async function rotateKeyWebhookSecret(
  db: Db,
  apiKeyId: string,
  sealed: string,
  overlapSeconds: number,
): Promise<Date | undefined> {
  return db.transaction().execute(async (trx) => {
    await trx.selectFrom('omniscrape.api_keys').select('id').where('id', '=', apiKeyId).forUpdate().execute();
    await trx
      .deleteFrom('omniscrape.key_webhook_secrets')
      .where('api_key_id', '=', apiKeyId)
      .where('retires_at', 'is not', null)
      .execute();
    const replaced = await trx
      .updateTable('omniscrape.key_webhook_secrets')
      .set({ retires_at: sql<Date>`now() + make_interval(secs => ${overlapSeconds})` })
      .where('api_key_id', '=', apiKeyId)
      .where('retires_at', 'is', null)
      .returning('retires_at')
      .executeTakeFirst();
    await trx
      .insertInto('omniscrape.key_webhook_secrets')
      .values({ api_key_id: apiKeyId, sealed_secret: sealed })
      .execute();
    return replaced?.retires_at ?? undefined;
  });
}

/** The id of the unrevoked key named `name`, if any. */
export async function activeKeyIdByName(db: Db, name: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('omniscrape.api_keys')
    .select('id')
    .where('name', '=', name)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row?.id;
}
