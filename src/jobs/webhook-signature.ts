import { createHmac, randomBytes } from 'node:crypto';

/** Standard Webhooks' prefix of a secret given as base64 bytes. */
const STANDARD_SECRET_PREFIX = 'whsec_';
/** Random bytes of a key's webhook secret (Standard Webhooks asks for 24 to 64). */
const WEBHOOK_SECRET_BYTES = 32;

/** A new webhook signing secret for a key, in Standard Webhooks' form: `whsec_<base64 of 32 bytes>`. */
export const generateWebhookSecret = (): string =>
  STANDARD_SECRET_PREFIX + randomBytes(WEBHOOK_SECRET_BYTES).toString('base64');

/**
 * How a delivery is signed: with these secrets (the current one first; two while a rotated key
 * secret overlaps its successor), or not at all, for the reason given, in which case it is not sent.
 */
export type WebhookSigning = { secrets: readonly string[] } | { unsignable: string };

/**
 * Thrown by signatureHeaders for a delivery that cannot be signed: nothing is sent, and the
 * receiver is not at fault (a delivery breaker should not count it against the receiver).
 */
export class UnsignableDeliveryError extends Error {}

/**
 * The HMAC key of `webhook-signature` for a secret: a `whsec_` secret's base64-decoded bytes (what
 * `new Webhook(secret)` of the standardwebhooks libraries uses), any other secret's UTF-8 bytes
 * (`new Webhook(secret, { format: 'raw' })`).
 */
function standardKey(secret: string): Buffer {
  return secret.startsWith(STANDARD_SECRET_PREFIX)
    ? Buffer.from(secret.slice(STANDARD_SECRET_PREFIX.length), 'base64')
    : Buffer.from(secret, 'utf8');
}

/**
 * The signature headers of a delivery of `body`, one signature per secret:
 * - `X-Omniscrape-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">[,v1=…]`, keyed
 *   with the secret's text as printed;
 * - Standard Webhooks: `webhook-id` (`msg_<job id>`, the same for every attempt and redelivery of
 *   the job's end, so receivers can drop duplicates), `webhook-timestamp` (unix seconds) and
 *   `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">[ v1,…]`.
 * Throws when the delivery cannot be signed.
 */
export function signatureHeaders(
  signing: WebhookSigning,
  jobId: string,
  body: string,
  unixSeconds: number,
): Record<string, string> {
  if ('unsignable' in signing) throw new UnsignableDeliveryError(signing.unsignable);
  const messageId = `msg_${jobId}`;
  const hmac = (key: string | Buffer, text: string) => createHmac('sha256', key).update(text);
  const omniscrape = signing.secrets.map((s) => `v1=${hmac(s, `${unixSeconds}.${body}`).digest('hex')}`);
  const standard = signing.secrets.map(
    (s) => `v1,${hmac(standardKey(s), `${messageId}.${unixSeconds}.${body}`).digest('base64')}`,
  );
  return {
    'x-omniscrape-signature': [`t=${unixSeconds}`, ...omniscrape].join(','),
    'webhook-id': messageId,
    'webhook-timestamp': String(unixSeconds),
    'webhook-signature': standard.join(' '),
  };
}
