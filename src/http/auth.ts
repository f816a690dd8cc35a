import type { RequestHandler } from 'express';
import { unauthorized } from './errors';
import type { ApiKeyCache } from '../jobs/api-key-cache';
import { hashApiKey, type ApiKeyIdentity } from '../store/api-keys';

declare module 'express-serve-static-core' {
  interface Request {
    apiKey?: ApiKeyIdentity;
  }
}

/** Longer keys are refused before any lookup (generated keys are 52 characters). */
export const MAX_KEY_LENGTH = 256;

/** Requires a valid, unrevoked `X-API-Key`; the key is looked up by its hash, never stored plain. */
export function requireApiKey(keys: ApiKeyCache): RequestHandler {
  return async (req, _res, next) => {
    const key = req.get('x-api-key');
    if (!key) throw unauthorized('Missing X-API-Key header.');
    if (key.length > MAX_KEY_LENGTH) throw unauthorized('Invalid API key.');
    const identity = await keys.find(hashApiKey(key));
    if (!identity) throw unauthorized('Invalid API key.');
    req.apiKey = identity;
    next();
  };
}

export function apiKeyOf(req: { apiKey?: ApiKeyIdentity }): ApiKeyIdentity {
  if (!req.apiKey) throw unauthorized('Missing X-API-Key header.');
  return req.apiKey;
}
