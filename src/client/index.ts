/** The package's `omniscrape/client` entry: depends on the API contract and undici, never the server. */
export { OmniscrapeClient } from './client';
export type {
  AsyncScrapeRequest,
  BatchAccepted,
  ClientOptions,
  Job,
  JobAccepted,
  ListJobsQuery,
  ScrapeRequest,
  ScrapeResult,
} from './client';
export { OmniscrapeError } from './errors';
export { screenshotPng } from './screenshot';
export { ScrapeManyAbortedError } from './scrape-many';
export type { ScrapeManyOptions, ScrapeManyProgress } from './scrape-many';
export type { ErrorBody } from './errors';
export type { ErrorCode } from '../contract/errors';
