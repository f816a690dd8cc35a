import { rendersInBrowser } from '../contract/requests';
import { ScrapeFailure } from '../domain-errors';
import type { BudgetHold } from './memory-budget';
import type { Scraped, ScrapeRequest } from './scrape-request';
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
 * Picks the engine for each scrape: the HTTP engine (Scraper), or headless Chromium when the
 * request asks for rendering (`js_rendering`, `mode: "browser"`).
 */
export class PageScraper {
  constructor(readonly http: Scraper) {}

  /** Whether this process can render pages (OMNISCRAPE_BROWSER_CONCURRENCY above 0). */
  get canRender(): boolean {
    return false;
  }

  async scrape(req: ScrapeRequest, { signal, hold }: ScrapeOptions): Promise<Scraped> {
    if (rendersInBrowser(req)) {
      throw new ScrapeFailure('TARGET_PROTOCOL_ERROR', 'This gateway has no browser engine.');
    }
    try {
      return { page: await this.http.scrape(req, signal, hold), engine: 'http' };
    } catch (err) {
      if (err instanceof ScrapeFailure) err.engine = 'http';
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}
