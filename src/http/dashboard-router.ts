import express, { type Router } from 'express';
import path from 'node:path';
import type { ServiceContext } from '../context';
import { requireDashboardAdmin, signIn, signOut, type DashboardKeys } from './dashboard-auth';
import { dashboardFigures } from './dashboard-data';
import { dashboardPage, signInPage } from './dashboard-page';
import { parseDashboardRange } from './dashboard-range';
import { packageRoot } from './package-root';
import { pageSecurityHeaders } from './page-security';
import type { SignInThrottle } from './sign-in-throttle';

/**
 * The one handle the dashboard reads the reporting views through: the reporting database
 * (OMNISCRAPE_REPORTING_DATABASE_URL, a replica) when set, else the main one. Keys and sessions are
 * not read through it: they are written on the primary, and a replica lags.
 */
const reportingReads = (ctx: ServiceContext) => ctx.reporting;

/** The pages need nothing beyond their own files (dashboard-page.ts). */
const securityHeaders = pageSecurityHeaders(
  {},
  {
    // Not no-referrer: under it a browser's form posts say `Origin: null`, which the sign-in refuses.
    'Referrer-Policy': 'same-origin',
    'Cache-Control': 'no-store',
  },
);

/**
 * The files the pages load, by name. Chart.js is served from its own npm package's build (no
 * CDN: the page works offline); the package's exports name no dist file, so it is found beside
 * its main entry.
 */
function assetFiles(): Map<string, string> {
  const staticDir = path.join(packageRoot(__dirname), 'static', 'dashboard');
  return new Map([
    ['chart.umd.min.js', path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js')],
    ['dashboard.js', path.join(staticDir, 'dashboard.js')],
    ['dashboard.css', path.join(staticDir, 'dashboard.css')],
    ['favicon.svg', path.join(staticDir, 'favicon.svg')],
  ]);
}

/** GET /dashboard and its data, assets, sign-in and sign-out: for admin keys (dashboard-auth.ts). */
export function dashboardRouter(ctx: ServiceContext, signIns: SignInThrottle): Router {
  const db = ctx.store.db;
  const keys: DashboardKeys = { db, signIns };
  const assets = assetFiles();
  const router = express.Router();
  router.use(securityHeaders);

  router.get('/assets/:name', (req, res, next) => {
    const file = assets.get(req.params.name);
    if (!file) {
      next();
      return;
    }
    // Public code, the same for everyone: cacheable, unlike the pages.
    res.set('Cache-Control', 'public, max-age=300').sendFile(file);
  });
  router.get('/sign-in', (_req, res) => {
    res.type('html').send(signInPage());
  });
  router.post('/sign-in', express.urlencoded({ extended: false, limit: '4kb' }), signIn(keys));
  router.post('/sign-out', signOut(db));

  router.get('/', requireDashboardAdmin(keys, 'redirect'), (req, res) => {
    // Parsed before the type is set: a bad range's 400 is answered as JSON.
    const range = parseDashboardRange(req.query);
    res.type('html').send(dashboardPage(range));
  });
  router.get('/data', requireDashboardAdmin(keys, 'refuse'), async (req, res) => {
    const figures = await dashboardFigures(reportingReads(ctx), parseDashboardRange(req.query));
    res.json({ success: true, data: figures });
  });
  return router;
}
