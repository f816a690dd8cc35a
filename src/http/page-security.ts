import type { RequestHandler } from 'express';

/**
 * The CSP of a page that runs and loads nothing but this origin's own files: no inline script or
 * style, no frames, forms post only here.
 */
const OWN_FILES_ONLY = {
  'default-src': "'none'",
  'script-src': "'self'",
  'style-src': "'self'",
  'img-src': "'self'",
  'connect-src': "'self'",
  'form-action': "'self'",
  'frame-ancestors': "'none'",
  'base-uri': "'none'",
};

/** Sets a page's security headers: OWN_FILES_ONLY with `csp`'s directives in place of its own, and `headers`. */
export function pageSecurityHeaders(
  csp: Partial<typeof OWN_FILES_ONLY> = {},
  headers: Record<string, string> = {},
): RequestHandler {
  const policy = Object.entries({ ...OWN_FILES_ONLY, ...csp })
    .map(([directive, sources]) => `${directive} ${sources}`)
    .join('; ');
  return (_req, res, next) => {
    res.set({
      'Content-Security-Policy': policy,
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      ...headers,
    });
    next();
  };
}
