import type { OutputFormat } from './formats';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** The longest a scrape may take; the API refuses more, and the queue's job expiry is set above it. */
export const MAX_TIMEOUT_SECONDS = 300;

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
