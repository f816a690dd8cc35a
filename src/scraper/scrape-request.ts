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
  mode: 'auto' | 'http';
}

/** `data` of a successful scrape: what the sync route answers and a completed job stores. */
export interface ScrapedPage {
  content: string;
  status_code: number;
  headers: Record<string, string>;
  final_url: string;
}
