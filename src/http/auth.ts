import type { RequestHandler } from 'express';
import { tooManyFailedSignIns, unauthorized } from './errors';
import type { ApiKeyCache } from '../jobs/api-key-cache';
import { hashApiKey, type ApiKeyIdentity } from '../store/api-keys';
import { clientAddress, type SignInThrottle } from './sign-in-throttle';

declare module 'express-serve-static-core' {
  interface Request {
    apiKey?: ApiKeyIdentity;
  }
}

/** Longer keys are refused before any lookup (generated keys are 52 characters). */
export const MAX_KEY_LENGTH = 256;

/**
 * Requires a valid, unrevoked `X-API-Key`; the key is looked up by its hash, never stored plain.
 * An unknown key counts as a failed sign-in of the client's address; an address past its failures
 * is answered 429 before any lookup, except with a key this process has seen valid (a client
 * behind the same address as a guesser keeps working).
 */
export function requireApiKey(keys: ApiKeyCache, signIns: SignInThrottle): RequestHandler {
  return async (req, _res, next) => {
    const key = req.get('x-api-key');
    if (!key) throw unauthorized('Missing X-API-Key header.');
    const hash = key.length > MAX_KEY_LENGTH ? undefined : hashApiKey(key);
    const address = clientAddress(req);
    const wait = await signIns.retryAfterSeconds(address);
    if (wait > 0 && !(hash !== undefined && keys.wasValid(hash))) throw tooManyFailedSignIns(wait);
    const identity = hash === undefined ? undefined : await keys.find(hash);
    if (!identity) {
      await signIns.failed(address);
      throw unauthorized('Invalid API key.');
    }
    req.apiKey = identity;
    next();
  };
}

export function apiKeyOf(req: { apiKey?: ApiKeyIdentity }): ApiKeyIdentity {
  if (!req.apiKey) throw unauthorized('Missing X-API-Key header.');
  return req.apiKey;
}
