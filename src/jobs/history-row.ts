import type { ScrapeRequest } from '../scraper/scrape-request';
import type { NewScrapeJob } from '../db/schema';

/** What a job's history row records of its request: the same for an async job and a sync scrape. */
export function requestColumns(
  id: string,
  apiKeyId: string,
  request: ScrapeRequest,
): Pick<NewScrapeJob, 'id' | 'api_key_id' | 'url' | 'host' | 'method' | 'format' | 'timeout_seconds'> {
  return {
    id,
    api_key_id: apiKeyId,
    url: request.url,
    host: new URL(request.url).hostname,
    method: request.method,
    format: request.format,
    timeout_seconds: request.timeout,
  };
}
