import pino from 'pino';
import type { Config } from './config';

export type Logger = pino.Logger;

export function createLogger(config: Pick<Config, 'logLevel'>, name = 'omniscrape'): Logger {
  return pino({ name, level: config.logLevel });
}
