import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/*
 * Secrets the service must use again later (webhook signing secrets) are kept in the database
 * sealed: AES-256-GCM under OMNISCRAPE_SECRETS_KEY, which lives in the environment (or, in local
 * mode, in a mode-600 file of the data folder), never in the database. A dump, a replica or a role
 * that can read the tables sees only `v1:<iv>:<tag>:<ciphertext>` (base64 each), which signs nothing.
 * Each value is bound to what it is for (`context`, GCM's associated data: a key's secret to its
 * key), so a sealed value copied where it does not belong does not open there.
 */

/** Bytes of OMNISCRAPE_SECRETS_KEY (AES-256). */
export const SECRETS_KEY_BYTES = 32;
const IV_BYTES = 12;
const FORMAT = 'v1';

/** A secrets key as the setting gives it: 64 hex digits, or base64 (standard or URL-safe) of 32 bytes. */
export function parseSecretsKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(trimmed)
    ? Buffer.from(trimmed, 'hex')
    : /^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)
      ? Buffer.from(trimmed, 'base64')
      : undefined;
  return bytes?.length === SECRETS_KEY_BYTES ? bytes : undefined;
}

/** A new secrets key, as base64 (what local mode keeps in its data folder). */
export const generateSecretsKey = (): string => randomBytes(SECRETS_KEY_BYTES).toString('base64');

/** `plaintext` sealed under `key` for the row named by `context`. */
export function sealSecret(key: Buffer, plaintext: string, context: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(context, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [FORMAT, iv, cipher.getAuthTag(), ciphertext]
    .map((part) => (typeof part === 'string' ? part : part.toString('base64')))
    .join(':');
}

/** Thrown when a sealed value does not open: another key sealed it, or it was altered. */
export class UnreadableSecretError extends Error {}

/** The plaintext of a value sealSecret made with `key` for `context`. */
export function openSealedSecret(key: Buffer, sealed: string, context: string): string {
  const [format, iv, tag, ciphertext] = sealed.split(':');
  if (format !== FORMAT || iv === undefined || tag === undefined || ciphertext === undefined)
    throw new UnreadableSecretError('a stored secret is not in a format this release reads');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'), {
      authTagLength: 16,
    })
      .setAAD(Buffer.from(context, 'utf8'))
      .setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64')), decipher.final()]).toString(
      'utf8',
    );
  } catch (err) {
    throw new UnreadableSecretError(
      'a stored secret does not open with OMNISCRAPE_SECRETS_KEY (it was sealed with another key, or altered)',
      { cause: err },
    );
  }
}
