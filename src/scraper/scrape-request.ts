import type { OutputFormat } from './formats';

import { HTTP_METHODS } from '../contract/requests';

export { HTTP_METHODS, MAX_TIMEOUT_SECONDS } from '../contract/requests';
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** A validated scrape request, as the API accepted it (field names are the public contract). */
export interface ScrapeRequest {
  url: string;
  method: HttpMethod;
  headers: Record<string, string>;
  body?: string;
  /** Seconds for the whole scrape, redirects and body included. */
  timeout: number;
  follow_redirects: boolean;
  format: OutputFormat;
  mode: 'auto' | 'http' | 'browser';
  /**
   * Render in the browser (see rendersInBrowser). This and the fields below are absent from jobs
   * queued before the browser engine: absent means false.
   */
  js_rendering?: boolean;
  /** A CSS selector, or milliseconds, to wait for after load (rendering only). */
  wait_for?: string | number;
  screenshot?: boolean;
  screenshot_full_page?: boolean;
}

/** `data` of a successful scrape: what the sync route answers and a completed job stores. */
export interface ScrapedPage {
  content: string;
  status_code: number;
  headers: Record<string, string>;
  final_url: string;
  /** A PNG of the rendered page, base64 (`screenshot: true` only). */
  screenshot?: string;
}

/** Which engine fetched a page: the HTTP client, or headless Chromium. */
export type Engine = 'http' | 'browser';

/** A scraped page and the engine that fetched it (PageScraper's answer). */
export interface Scraped {
  page: ScrapedPage;
  engine: Engine;
}
