import type { ScrapeResult } from './client';

/**
 * The PNG of a scrape asked with `screenshot: true`, decoded from its base64 `data.screenshot`;
 * undefined for a failure or an answer without one. A job's is `screenshotPng(job.result)`.
 */
export function screenshotPng(result: ScrapeResult | undefined): Buffer | undefined {
  if (!result?.success || result.data.screenshot === undefined) return undefined;
  return Buffer.from(result.data.screenshot, 'base64');
}
