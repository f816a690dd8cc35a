import { headersRenderable, rendersInBrowser } from '../contract/requests';
import { ScrapeFailure } from '../domain-errors';
import type { BrowserEngine } from './browser-engine';
import { looksScriptBuilt } from './script-built';
import { renderContent } from './formats';
import type { BudgetHold } from './memory-budget';
import type { Engine, Scraped, ScrapeRequest } from './scrape-request';
import type { Scraper } from './scraper';

/** How one scrape runs: what may stop it, the memory it holds, and whose it is. */
export interface ScrapeOptions {
  /** Aborts the scrape (the client left, the claim was lost, the process is stopping). */
  signal?: AbortSignal;
  /** The memory budget's hold for this page (workers); released by the caller. */
  hold?: BudgetHold;
  /** The API key the scrape is for: browser slots are shared fairly between keys. */
  owner: string;
}

/**
 * Picks the engine for each scrape, for sync and async scrapes alike:
 * - `js_rendering: true` or `mode: "browser"`: headless Chromium (BrowserEngine);
 * - `mode: "http"`: the HTTP engine (Scraper);
 * - `mode: "auto"`: the HTTP engine, then Chromium when the page looks built by script
 *   (looksScriptBuilt) and time is left; without a browser engine, the HTTP page as it is.
 * The request's `timeout` covers both engines together.
 */
export class PageScraper {
  constructor(
    readonly http: Scraper,
    /** The browser engine, or why this process has none (said in the API's 400 and a job's failure). */
    browser: BrowserEngine | string,
  ) {
    if (typeof browser === 'string') this.noRendering = browser;
    else this.browser = browser;
  }

  readonly browser?: BrowserEngine;

  /** Why this process renders no pages; undefined when it can. */
  readonly noRendering?: string;

  async scrape(req: ScrapeRequest, { signal, hold, owner }: ScrapeOptions): Promise<Scraped> {
    const deadline = performance.now() + req.timeout * 1000;
    if (rendersInBrowser(req)) {
      if (!this.browser) throw withEngine(noBrowser(this.noRendering), 'browser');
      return this.#render(this.browser, req, { signal, hold, owner, deadline, trigger: 'requested' });
    }
    // Only a page the browser can fetch the same way is re-rendered: GET, redirects followed, and
    // headers the browser can carry (RENDER_HEADERS).
    const auto =
      req.mode === 'auto' &&
      this.browser !== undefined &&
      req.method === 'GET' &&
      req.follow_redirects &&
      headersRenderable(req.headers);
    let page;
    try {
      // mode "auto" looks at the page as sent before choosing; it is rendered in its format after.
      page = await this.http.scrape(auto ? { ...req, format: 'raw' } : req, signal, hold);
    } catch (err) {
      throw withEngine(err, 'http');
    }
    if (auto && this.browser && looksScriptBuilt(page) && deadline - performance.now() > 1000) {
      // The raw page is released with the hold as a whole; the render reserves its own bytes on top.
      return this.#render(this.browser, req, {
        signal,
        hold,
        owner,
        deadline,
        trigger: 'auto',
      });
    }
    if (auto && req.format !== 'raw') {
      const content = renderContent(page.content, page.headers['content-type'], req.format);
      // Text or markdown is a second copy of the page, held with it until the result is stored.
      await hold?.reserveTo(hold.heldBytes + Buffer.byteLength(content), signal);
      page = { ...page, content };
    }
    return { page, engine: 'http' };
  }

  async close(): Promise<void> {
    await Promise.all([this.http.close(), this.browser?.close()]);
  }

  async #render(
    browser: BrowserEngine,
    req: ScrapeRequest,
    options: Parameters<BrowserEngine['render']>[1],
  ): Promise<Scraped> {
    try {
      return { page: await browser.render(req, options), engine: 'browser' };
    } catch (err) {
      throw withEngine(err, 'browser');
    }
  }
}

/** A scrape failure marked with the engine it came from (recorded in the history); anything else as it is. */
function withEngine(err: unknown, engine: Engine): unknown {
  if (err instanceof ScrapeFailure) err.engine = engine;
  return err;
}

/** The API refuses rendering without a browser; a job queued where one was, run where none is, ends here. */
const noBrowser = (why: string | undefined) =>
  new ScrapeFailure('TARGET_PROTOCOL_ERROR', `This worker renders no pages: ${why ?? 'it has no browser'}.`);
