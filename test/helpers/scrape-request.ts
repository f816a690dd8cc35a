import type { ScrapeRequest } from '../../src/scraper/scrape-request';

/** A scrape request as the API validates it (every default filled in), for jobs a test queues itself. */
export const scrapeRequest = (url: string): ScrapeRequest => ({
  url,
  method: 'GET',
  headers: {},
  timeout: 30,
  follow_redirects: true,
  format: 'raw',
  mode: 'auto',
});
