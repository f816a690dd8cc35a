import { InvalidArgumentError, type Command } from 'commander';
import { OmniscrapeError } from '../client';
import { ConfigError, directDatabaseUrl, loadConfig, type Config } from '../config';
import { migrateToLatestOver } from '../admin/migrate';
import { openStore, type Store } from '../db/pool';
import { runningLocalPostgresUrl } from './local-mode';
import { explainStartupError } from './startup-errors';

export const print = (line = '') => process.stdout.write(line + '\n');
/** `1 URL`, `2 URLs`. */
export const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;
/** Ends the command with one line on stderr (`omniscrape: …`) and exit code 1. */
export const fail = (message: string): never => {
  process.stderr.write(`omniscrape: ${message}\n`);
  process.exit(1);
};

/**
 * A refusal of the API as one line: its code and message (and the HTTP status), or why the
 * gateway could not be reached.
 */
function apiFailureLine(err: OmniscrapeError): string {
  if (err.code === 'NETWORK_ERROR')
    return `${err.message} (is the gateway running? OMNISCRAPE_URL says where)`;
  if (err.status === 0) return `${err.code}: ${err.message}`;
  return `${err.code}: ${err.message} (HTTP ${err.status})`;
}

/**
 * The end of every command that failed: one line. A refusal of the API says its code and message;
 * a failure we recognise (StartupFailure, or an error explainStartupError knows) says its cause and way out; anything else is a bug or a case
 * not foreseen, whose message is still one line, and whose stack OMNISCRAPE_LOG_LEVEL=debug shows.
 */
export function failWith(err: unknown): never {
  const explained = explainStartupError(err);
  const debug = ['debug', 'trace'].includes(process.env.OMNISCRAPE_LOG_LEVEL ?? '');
  if (debug) process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  if (err instanceof OmniscrapeError) return fail(apiFailureLine(err));
  if (explained) return fail(explained.message);
  const message = err instanceof Error ? err.message : String(err);
  return fail(`${message.split('\n')[0]}${debug ? '' : ' (OMNISCRAPE_LOG_LEVEL=debug shows where)'}`);
}

/**
 * Runs the first contact with a database; its failures come out explained, naming the server
 * (never the password) and the variable to check (`setting`, default DATABASE_URL).
 */
export async function connecting<T>(databaseUrl: string, fn: () => Promise<T>, setting?: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw explainStartupError(err, { databaseUrl, setting }) ?? err;
  }
}

export function config(): Config {
  try {
    return loadConfig();
  } catch (err) {
    // Not logged: there is no logger before the settings are read, and the message names each bad one.
    return fail(
      err instanceof ConfigError
        ? err.message.replace(/:?\n\s+/g, (m) => (m.startsWith(':') ? ': ' : '; '))
        : String(err),
    );
  }
}

/** DATABASE_URL, else the embedded Postgres of a running `npm start` in this checkout. */
export function databaseUrlFor(cfg: Config): string {
  return (
    cfg.databaseUrl ??
    runningLocalPostgresUrl(cfg) ??
    fail('DATABASE_URL is not set, and no embedded Postgres from `npm start` is running in this folder.')
  );
}

export async function withStore<T>(cfg: Config, fn: (store: Store) => Promise<T>): Promise<T> {
  const url = databaseUrlFor(cfg);
  const store = openStore(url, { max: 2, applicationName: 'omniscrape-cli' });
  try {
    const direct = directDatabaseUrl(cfg, url);
    const setting = direct === url ? undefined : 'OMNISCRAPE_DIRECT_DATABASE_URL';
    await connecting(direct, () => migrateToLatestOver(store.db, { pooled: url, direct }), setting);
    return await fn(store);
  } finally {
    await store.close();
  }
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of 1 or more');
  return n;
}

/**
 * Makes a command's bad input one line like its other refusals: no help text, and commander's
 * suggestion for a mistyped option joined to its error line. Subcommands added later inherit it.
 */
export function oneLineErrors(command: Command): Command {
  return command.showHelpAfterError(false).configureOutput({
    outputError: (text, write) =>
      write(`omniscrape: ${text.replace(/^error: /, '').replace(/\n(?=.)/g, ' ')}`),
  });
}

/** An unreadable or unwritable file, in one line; undefined for another error. */
export function fileProblem(err: unknown, file: string): string | undefined {
  const e = err as NodeJS.ErrnoException;
  const said: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EISDIR: 'is a directory',
    ENOTDIR: 'a part of the path is not a directory',
  };
  return e.code && said[e.code] ? `${e.path ?? file}: ${said[e.code]}` : undefined;
}
