import type { PgBoss } from 'pg-boss';
import type { Config } from './config';
import type { QueueCapCheck } from './jobs/key-limits';
import type { SubmitBatcher } from './jobs/submit-batcher';
import type { Logger } from './logger';
import type { Scraper } from './scraper/scraper';
import type { Store } from './store/database';

/** What the roles need from each other, passed in rather than held in module singletons. */
export interface ServiceContext {
  config: Config;
  logger: Logger;
  store: Store;
  boss: PgBoss;
  scraper: Scraper;
  queueCaps: QueueCapCheck;
  submissions: SubmitBatcher;
}
