import { InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import { OmniscrapeClient, type AsyncScrapeRequest } from '../client';
import { MAX_TIMEOUT_SECONDS } from '../contract/requests';
import { fail } from './common';
import { renderFieldsOf, type RenderOptions } from './render-options';

/** The settings of the commands that call a gateway's API (not the service's own settings). */
const apiSettings = z.object({
  OMNISCRAPE_URL: z
    .string()
    .default('http://localhost:8080')
    .refine((value) => {
      const url = URL.parse(value);
      return url !== null && (url.protocol === 'http:' || url.protocol === 'https:');
    }, 'must be the gateway’s http:// or https:// address, e.g. http://localhost:8080'),
  OMNISCRAPE_KEY: z
    .string({
      error:
        'is not set: export OMNISCRAPE_KEY=<an API key> (next to `npm start`: $(cat .data/local-api-key))',
    })
    .min(1, 'is empty'),
});

/** How long a command waits for a job to end: as long as it takes (Ctrl-C stops it). */
export const WAIT_UNTIL_ENDED_MS = 24 * 60 * 60_000;

/** The client of OMNISCRAPE_URL with OMNISCRAPE_KEY; a missing or bad setting is one line and exit 1. */
export function apiClient(env: NodeJS.ProcessEnv = process.env): OmniscrapeClient {
  const parsed = apiSettings.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return fail(`${String(issue.path[0])} ${issue.message}`);
  }
  return new OmniscrapeClient({ baseUrl: parsed.data.OMNISCRAPE_URL, apiKey: parsed.data.OMNISCRAPE_KEY });
}

export const FORMATS = ['raw', 'text', 'markdown'] as const;

export const formatOption = () =>
  new Option('--format <format>', 'how the content comes back').choices(FORMATS).default('raw');

export function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > MAX_TIMEOUT_SECONDS)
    throw new InvalidArgumentError(`must be a number of seconds, above 0 and at most ${MAX_TIMEOUT_SECONDS}`);
  return n;
}

export const timeoutOption = () =>
  new Option('--timeout <seconds>', 'seconds for the whole scrape (the API default: 30)').argParser(seconds);

export interface ScrapeOptions extends RenderOptions {
  format: (typeof FORMATS)[number];
  timeout?: number;
}

export function scrapeRequestOf(url: string, options: ScrapeOptions): AsyncScrapeRequest {
  return {
    url,
    format: options.format,
    ...(options.timeout ? { timeout: options.timeout } : {}),
    ...renderFieldsOf(options),
  };
}
