import { openSealedSecret, sealSecret, UnreadableSecretError } from '../sealed-secrets';
import {
  insertFirstKeyWebhookSecret,
  keySecretContext,
  liveKeyWebhookSecrets,
  rotateKeyWebhookSecret,
} from '../db/key-webhook-secrets';
import type { Db } from '../db/schema';
import { findWebhookTarget, JOB_SECRET_CONTEXT } from '../db/webhooks';
import { generateWebhookSecret, type WebhookSigning } from './webhook-signature';

/**
 * Which secret signs a delivery: the job's own (`webhook.secret` of its submission) if it has one,
 * else its key's webhook secret, made on first need for a key that has none yet (a key older than
 * migration 0013, or provisioned by OMNISCRAPE_API_KEYS). Never anything derived from what the
 * database stores in the clear.
 */
export async function webhookTarget(
  ctx: { store: { db: Db }; config: { secretsKey?: Buffer | undefined } },
  jobId: string,
): Promise<{ url: string; signing: WebhookSigning } | undefined> {
  const { db } = ctx.store;
  const key = ctx.config.secretsKey;
  const target = await findWebhookTarget(db, jobId);
  if (!target) return undefined;
  const { url } = target;
  if (target.secret !== null) return { url, signing: { secrets: [target.secret] } };
  if (key === undefined) {
    const whose = target.sealed_secret === null ? "its key's webhook secret" : 'its own secret';
    return {
      url,
      signing: {
        unsignable: `not sent: it is signed with ${whose}, kept sealed with OMNISCRAPE_SECRETS_KEY, which this worker does not have`,
      },
    };
  }
  try {
    if (target.sealed_secret !== null)
      return {
        url,
        signing: { secrets: [openSealedSecret(key, target.sealed_secret, JOB_SECRET_CONTEXT)] },
      };
    return { url, signing: { secrets: await keyWebhookSecrets(db, key, target.api_key_id) } };
  } catch (err) {
    if (!(err instanceof UnreadableSecretError)) throw err;
    return { url, signing: { unsignable: `not sent: ${err.message}` } };
  }
}

/** The key's secrets that sign now, opened, the current one first; a key without one gets one. */
export async function keyWebhookSecrets(db: Db, secretsKey: Buffer, apiKeyId: string): Promise<string[]> {
  let sealed = await liveKeyWebhookSecrets(db, apiKeyId);
  if (sealed.length === 0) {
    await createKeyWebhookSecret(db, secretsKey, apiKeyId);
    sealed = await liveKeyWebhookSecrets(db, apiKeyId);
  }
  return sealed.map((s) => openSealedSecret(secretsKey, s, keySecretContext(apiKeyId)));
}

/**
 * Gives a key without a webhook secret its first (`keys create` does, in the key's transaction);
 * returns it, or undefined when the key has one already.
 */
export async function createKeyWebhookSecret(
  db: Db,
  secretsKey: Buffer,
  apiKeyId: string,
): Promise<string | undefined> {
  const secret = generateWebhookSecret();
  const sealed = sealSecret(secretsKey, secret, keySecretContext(apiKeyId));
  return (await insertFirstKeyWebhookSecret(db, apiKeyId, sealed)) ? secret : undefined;
}

/**
 * Gives a key a new webhook secret; the one it replaces signs too for `overlapSeconds` (receivers
 * accept either meanwhile, and move to the new one). Returns the new secret, and when the replaced
 * one stops signing (undefined when the key had none).
 */
export async function rotateKeyWebhookSecretOf(
  db: Db,
  secretsKey: Buffer,
  apiKeyId: string,
  overlapSeconds: number,
): Promise<{ secret: string; previousUntil: Date | undefined }> {
  const secret = generateWebhookSecret();
  const sealed = sealSecret(secretsKey, secret, keySecretContext(apiKeyId));
  return { secret, previousUntil: await rotateKeyWebhookSecret(db, apiKeyId, sealed, overlapSeconds) };
}
