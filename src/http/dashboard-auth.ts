import type { Request, RequestHandler } from 'express';
import {
  createDashboardSession,
  deleteDashboardSession,
  findDashboardKey,
  findDashboardSession,
  type DashboardKey,
} from '../db/dashboard-sessions';
import type { Db } from '../db/schema';
import { signInPage } from './dashboard-page';
import { forbidden, HttpError, unauthorized } from './errors';
import type { SignInThrottle } from './sign-in-throttle';

export const DASHBOARD_PATH = '/dashboard';
export const SIGN_IN_PATH = `${DASHBOARD_PATH}/sign-in`;
export const SESSION_COOKIE = 'omniscrape_dashboard';
/** How long a sign-in lasts: a working day, after which the key is asked for again. */
export const SESSION_TTL_SECONDS = 12 * 3_600;

const NOT_ADMIN = 'The dashboard is for admin keys only (omniscrape keys create NAME --admin).';
/** The token's shape (base64url of 32 random bytes): anything else in the cookie is not ours. */
const SESSION_COOKIE_PATTERN = new RegExp(`(?:^|;)\\s*${SESSION_COOKIE}=([A-Za-z0-9_-]{43})\\s*(?:;|$)`);

const sessionTokenOf = (req: Request) => SESSION_COOKIE_PATTERN.exec(req.get('cookie') ?? '')?.[1];

/** What a dashboard sign-in reads keys through, and the throttle it shares with the API. */
export interface DashboardKeys {
  db: Db;
  signIns: SignInThrottle;
}

/** The key's row, or undefined for an unknown key (a failed sign-in: SignInThrottle.signIn). */
const keyByValue = ({ db, signIns }: DashboardKeys, req: Request, key: string) =>
  signIns.signIn(req, key, (hash) => findDashboardKey(db, hash));

/**
 * Lets through an admin key in `X-API-Key` (a plain key: 403, an unknown one: 401) or a signed-in
 * session's cookie. Without either, a page request is sent to the sign-in form (`redirect`) and a
 * data request is refused with 401 (`refuse`), which the page's script turns into that redirect.
 */
export function requireDashboardAdmin(
  keys: DashboardKeys,
  whenSignedOut: 'redirect' | 'refuse',
): RequestHandler {
  const { db } = keys;
  return async (req, res, next) => {
    const key = req.get('x-api-key');
    if (key !== undefined) {
      const found = await keyByValue(keys, req, key);
      if (!found) throw unauthorized('Invalid API key.');
      if (!found.is_admin) throw forbidden(NOT_ADMIN);
      next();
      return;
    }
    const token = sessionTokenOf(req);
    if (token !== undefined && (await findDashboardSession(db, token))) {
      next();
      return;
    }
    if (whenSignedOut === 'refuse')
      throw unauthorized('Sign in at /dashboard/sign-in, or send an admin key in X-API-Key.');
    res.redirect(303, SIGN_IN_PATH);
  };
}

/**
 * Refuses a form post from another site (CSRF). A browser says where a request comes from in
 * Sec-Fetch-Site, which no page can forge; an older one only in Origin (or Referer), which must then
 * name this host. The session cookie is SameSite=Strict, so other sites cannot send it; this check
 * covers the sign-in itself, which carries no cookie yet. Returns whether the browser reached us
 * over HTTPS (through a proxy, too: its Origin says so).
 */
function checkSameOrigin(req: Request): { https: boolean } {
  const claimed = req.get('origin') ?? req.get('referer');
  const origin = claimed === undefined ? null : URL.parse(claimed);
  const site = req.get('sec-fetch-site');
  const sameOrigin =
    site !== undefined ? site === 'same-origin' : origin !== null && origin.host === req.get('host');
  if (!sameOrigin)
    throw forbidden('Form posts from another site are refused: open the sign-in form on this host.');
  return { https: req.secure || origin?.protocol === 'https:' };
}

/**
 * POST /dashboard/sign-in: takes the key once (form field `key`) and answers a session cookie,
 * whose token is random and stored only as a digest. A wrong key gets the form again, and after
 * too many from one address, the form with 429 until its window ends; the key is never written back
 * into a page.
 */
export function signIn(keys: DashboardKeys): RequestHandler {
  return async (req, res) => {
    const { https } = checkSameOrigin(req);
    const body = req.body as { key?: unknown } | undefined;
    let found: DashboardKey | undefined;
    try {
      found = await keyByValue(keys, req, typeof body?.key === 'string' ? body.key.trim() : '');
    } catch (err) {
      if (!(err instanceof HttpError) || err.code !== 'TOO_MANY_FAILED_SIGN_INS') throw err;
      res.status(429).set(err.headers).type('html').send(signInPage(err.message));
      return;
    }
    if (!found?.is_admin) {
      res
        .status(found ? 403 : 401)
        .type('html')
        .send(signInPage(found ? NOT_ADMIN : 'This key is unknown or revoked.'));
      return;
    }
    const token = await createDashboardSession(keys.db, found.id, SESSION_TTL_SECONDS);
    res.cookie(SESSION_COOKIE, token, {
      httpOnly: true,
      sameSite: 'strict',
      secure: https,
      path: DASHBOARD_PATH,
      maxAge: SESSION_TTL_SECONDS * 1000,
    });
    res.redirect(303, DASHBOARD_PATH);
  };
}

/** POST /dashboard/sign-out: ends the session in Postgres (its cookie stops working everywhere) and clears the cookie. */
export function signOut(db: Db): RequestHandler {
  return async (req, res) => {
    checkSameOrigin(req);
    const token = sessionTokenOf(req);
    if (token !== undefined) await deleteDashboardSession(db, token);
    res.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'strict', path: DASHBOARD_PATH });
    res.redirect(303, SIGN_IN_PATH);
  };
}
