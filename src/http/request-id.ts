import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from '../logger';

declare module 'express-serve-static-core' {
  interface Request {
    /** The request's id: its valid `X-Request-Id`, else a new UUID (answered in X-Request-Id). */
    id: string;
    /** The logger for everything about this request: each line carries `requestId`. */
    log: Logger;
  }
}

/**
 * An incoming X-Request-Id kept as it is: 1–128 characters of letters, digits and `.` `_` `:` `-`,
 * enough for the ids proxies and tracers send (UUIDs, ULIDs, W3C trace ids) and nothing that
 * could split a log line or a header. Any other value is replaced, not refused.
 */
export const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Paths probed every few seconds (health checks, Prometheus): their lines are logged at debug only. */
const PROBE_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Gives every request its id, answered in `X-Request-Id` on every answer (errors included) and
 * carried by every log line about it (`req.log`); the submit paths write it in the job's history
 * row, so a complaint quoting it leads to the job and to the worker's lines about it. Logs one
 * line per request when it ends, as pino-http does.
 */
export function requestIds(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const given = req.get('x-request-id');
    const id = given !== undefined && VALID_REQUEST_ID.test(given) ? given : randomUUID();
    req.id = id;
    // The child logger is made on first use: most requests log nothing at the usual levels.
    let log: Logger | undefined;
    Object.defineProperty(req, 'log', {
      configurable: true,
      enumerable: true,
      get: () => (log ??= logger.child({ requestId: id })),
      set: (value: Logger) => void (log = value),
    });
    res.set('X-Request-Id', id);
    const began = performance.now();
    const level = PROBE_PATHS.has(req.path) ? 'debug' : 'info';
    res.on('close', () => {
      if (!logger.isLevelEnabled(level)) return;
      req.log[level](
        {
          method: req.method,
          path: req.originalUrl,
          status: res.statusCode,
          ms: Math.round(performance.now() - began),
        },
        res.writableFinished ? 'request answered' : 'request closed before its answer was sent',
      );
    });
    next();
  };
}
