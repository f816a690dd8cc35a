import { isHtml } from './formats';
import type { ScrapedPage } from './scrape-request';

/** Visible text shorter than this, on a page that loads a script file, is a shell waiting for it. */
export const SHELL_TEXT_CHARS = 50;
/** Pages larger than this are never taken for shells (and are not parsed to find out). */
const MAX_SHELL_BYTES = 512 * 1024;

const NOSCRIPT_ASKS_FOR_JS =
  /<noscript[^>]*>[\s\S]{0,2000}?\b(enable|requires?|needs?|turn on)\b[\s\S]{0,200}?javascript/i;
/** The mount points of the common single-page frameworks, empty as a server leaves them. */
const EMPTY_MOUNT_POINT =
  /<(div|main)\b[^>]*\bid=["']?(root|app|__next|__nuxt|svelte|main-app)["']?[^>]*>\s*<\/\1>/i;

/**
 * Whether a page fetched over HTTP looks built by script, so `mode: "auto"` renders it in the
 * browser: a successful (2xx) HTML page with at least one `<script>` that either has an empty
 * framework mount point (`<div id="root"></div>`, `id="app"`, `id="__next"` …), a `<noscript>`
 * asking for JavaScript, or loads a script file (`<script src>`) and has fewer than
 * SHELL_TEXT_CHARS characters of visible text. Pages with no script, errors, non-HTML bodies and
 * pages over 512 KiB are kept as fetched: a page with text of its own is not rendered because a
 * script might add more.
 */
export function looksScriptBuilt(page: ScrapedPage): boolean {
  if (page.status_code < 200 || page.status_code > 299) return false;
  const html = page.content;
  if (html.length > MAX_SHELL_BYTES || !isHtml(page.headers['content-type'], html)) return false;
  if (!/<script\b/i.test(html)) return false;
  if (EMPTY_MOUNT_POINT.test(html) || NOSCRIPT_ASKS_FOR_JS.test(html)) return true;
  if (!/<script\b[^>]*\bsrc\s*=/i.test(html)) return false;
  return !hasVisibleText(html, SHELL_TEXT_CHARS);
}

/**
 * The page's pieces in order: an element whose content is not shown (`head`, `script`, `style`,
 * `noscript`, `template`) or a comment, whole; any other tag; or a run of text between tags.
 */
const PIECES = /<(head|script|style|noscript|template)\b[\s\S]*?<\/\1\s*>|<!--[\s\S]*?-->|<[^>]*>|[^<]+/gi;

/** Whether the page shows at least `chars` characters of text (whitespace runs count as one); stops as soon as it does. */
function hasVisibleText(html: string, chars: number): boolean {
  let seen = 0;
  for (const [piece] of html.matchAll(PIECES)) {
    if (piece.startsWith('<')) continue;
    seen += piece.replace(/\s+/g, ' ').trim().length;
    if (seen >= chars) return true;
  }
  return false;
}
