// The dashboard's two HTML pages. They carry no inline script or style (the Content-Security-Policy
// of dashboard-router.ts forbids both): static/dashboard/dashboard.js fills the page from
// GET /dashboard/data, and the sign-in form works without any script.
import { NAMED_RANGES, type DashboardRange } from './dashboard-range';

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

function layout(title: string, body: string, scripts: string[] = []): string {
  const scriptTags = scripts.map((src) => `<script src="/dashboard/assets/${src}" defer></script>`).join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/dashboard/assets/dashboard.css">
<link rel="icon" href="/dashboard/assets/favicon.svg">
${scriptTags}
</head>
<body>
${body}
</body>
</html>
`;
}

/** The form that takes an admin key once; `message` says why the last try failed. */
export function signInPage(message?: string): string {
  return layout(
    'omniscrape · sign in',
    `<main class="sign-in">
<h1>omniscrape dashboard</h1>
${message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/dashboard/sign-in">
<label for="key">Admin API key</label>
<input id="key" name="key" type="password" autocomplete="off" required maxlength="256" autofocus>
<button type="submit">Sign in</button>
</form>
<p class="hint">Create one with <code>omniscrape keys create NAME --admin</code>.</p>
</main>`,
  );
}

function rangeForm(range: DashboardRange): string {
  const options = Object.keys(NAMED_RANGES)
    .map((name) => `<option value="${name}"${name === range.name ? ' selected' : ''}>last ${name}</option>`)
    .join('');
  const custom = range.name
    ? ''
    : `<option selected disabled>${escapeHtml(range.from.toISOString())} – ${escapeHtml(range.to.toISOString())}</option>`;
  return `<form method="get" action="/dashboard" class="range">
<select name="range" id="range" aria-label="time range">${custom}${options}</select>
<button type="submit">Show</button>
</form>`;
}

const table = (id: string, caption: string, columns: string[]) =>
  `<table id="${id}"><caption>${caption}</caption>
<thead><tr>${columns.map((c) => `<th>${c}</th>`).join('')}</tr></thead><tbody></tbody></table>`;

const percentileRow = (figure: string, label: string) =>
  `<tr><th>${label}</th>${['p50', 'p95', 'p99'].map((p) => `<td data-figure="${figure}-${p}">…</td>`).join('')}</tr>`;

/** The page's frame: the figures are filled in, and refreshed, by dashboard.js. */
export function dashboardPage(range: DashboardRange): string {
  return layout(
    'omniscrape · dashboard',
    `<header>
<h1>omniscrape</h1>
${rangeForm(range)}
<p id="status" role="status">loading…</p>
<form method="post" action="/dashboard/sign-out"><button type="submit">Sign out</button></form>
</header>
<main>
<section class="wide">
<h2>Jobs per <span id="bucket-label">minute</span> by status <small>(by creation time, status now; UTC)</small></h2>
<div class="chart"><canvas id="jobs-chart" aria-label="jobs per bucket by status" role="img"></canvas></div>
</section>
<section>
<h2>Latency <small>(jobs created in the range, ms)</small></h2>
<table id="latency"><thead><tr><th></th><th>p50</th><th>p95</th><th>p99</th></tr></thead>
<tbody>${percentileRow('queue_ms', 'submit → start')}${percentileRow('run_ms', 'start → finish')}</tbody></table>
<h2>Engines <small>(scrapes created in the range)</small></h2>
<dl id="engines"><dt>rendered (browser)</dt><dd data-figure="rendered">…</dd><dt>fetched (HTTP)</dt><dd data-figure="fetched">…</dd></dl>
</section>
<section>
<h2>Queue now</h2>
<dl id="queue-depth"><dt>queued</dt><dd data-figure="queued">…</dd><dt>processing</dt><dd data-figure="processing">…</dd></dl>
</section>
<section>
${table('slowest-hosts', 'Slowest hosts (last 24 h, by p95 run time)', ['host', 'jobs', 'p95 ms', 'success'])}
</section>
<section>
${table('failing-hosts', 'Most failing hosts (last 24 h)', ['host', 'jobs', 'success', 'top error', 'last failure'])}
</section>
<section class="wide">
${table('usage', 'Usage per key (UTC days of the range)', ['key', 'jobs', 'completed', 'failed', 'timed out', 'cancelled', 'charged'])}
</section>
<section class="wide">
${table('failures', 'Latest failures', ['created', 'key', 'host', 'status', 'code', 'HTTP', 'url'])}
</section>
</main>`,
    ['chart.umd.min.js', 'dashboard.js'],
  );
}
