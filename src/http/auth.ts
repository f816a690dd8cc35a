import type { RequestHandler } from 'express';
import { unauthorized } from './errors';
import type { ApiKeyCache } from '../jobs/api-key-cache';
import type { ApiKeyIdentity } from '../db/api-keys';
import type { SignInThrottle } from './sign-in-throttle';

declare module 'express-serve-static-core' {
  interface Request {
    apiKey?: ApiKeyIdentity;
  }
}

/** Longer keys are refused before any lookup (generated keys are 36 characters: `osk_` and 24 random bytes in base64url). */
export const MAX_KEY_LENGTH = 256;

/**
 * Requires a valid, unrevoked `X-API-Key`; the key is looked up by its hash, never stored plain.
 * An unknown key counts as a failed sign-in of the client's address (SignInThrottle.signIn).
 */
export function requireApiKey(keys: ApiKeyCache, signIns: SignInThrottle): RequestHandler {
  return async (req, _res, next) => {
    const key = req.get('x-api-key');
    if (!key) throw unauthorized('Missing X-API-Key header.');
    const identity = await signIns.signIn(req, key, (hash) => keys.find(hash));
    if (!identity) throw unauthorized('Invalid API key.');
    req.apiKey = identity;
    next();
  };
}

export function apiKeyOf(req: { apiKey?: ApiKeyIdentity }): ApiKeyIdentity {
  if (!req.apiKey) throw unauthorized('Missing X-API-Key header.');
  return req.apiKey;
}
