import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config';
import { StartupFailure } from '../startup-failure';
import { generateApiKey } from '../db/api-keys';
import { startEmbeddedPostgres, type RunningPostgres } from '../postgres-server/embedded-postgres';
import { writePrivateFile } from '../postgres-server/private-files';

/** Where a running `serve` records its embedded Postgres's URL and its own pid (see startLocalPostgres). */
const STATE_FILE = 'embedded-postgres.json';
const LOCAL_KEY_FILE = 'local-api-key';
export const POSTGRES_PASSWORD_FILE = 'postgres-password';
export const LOCAL_KEY_NAME = 'local';

/**
 * Local mode: with no DATABASE_URL, `serve` (what `npm start` runs) starts an embedded Postgres
 * with its data in the git-ignored OMNISCRAPE_DATA_DIR, and records its URL there so other
 * commands in the checkout (`keys create`, `cleanup`, …) find it while it runs. Every file there
 * that holds a secret (the URL holds the password) is mode 600.
 */
export async function startLocalPostgres(
  config: Config,
  log: (line: string) => void,
): Promise<RunningPostgres> {
  const dataDir = path.resolve(config.dataDir);
  try {
    fs.mkdirSync(dataDir, { recursive: true });
    // As root the server runs as the `postgres` user, who must enter this folder to reach its data
    // in it; the secrets in it are mode 600, so entering (and listing) is all anyone else can do.
    if (process.getuid?.() === 0) fs.chmodSync(dataDir, 0o755);
    fs.accessSync(dataDir, fs.constants.W_OK);
  } catch (err) {
    throw notWritable(config, err);
  }
  let server: RunningPostgres;
  try {
    server = await startEmbeddedPostgres({
      dataDir: path.join(dataDir, 'postgres'),
      passwordFile: path.join(dataDir, POSTGRES_PASSWORD_FILE),
      port: config.embeddedPostgresPort,
      persistent: true,
      onLog: (line) => {
        if (/ERROR|FATAL|PANIC|postgres user|password/.test(line)) log(line.trim());
      },
    });
  } catch (err) {
    throw withWayOut(config, err);
  }
  try {
    writePrivateFile(path.join(dataDir, STATE_FILE), JSON.stringify({ url: server.url, pid: process.pid }));
  } catch (err) {
    await server.stop();
    throw notWritable(config, err);
  }
  return {
    ...server,
    async stop(options) {
      fs.rmSync(path.join(dataDir, STATE_FILE), { force: true });
      await server.stop(options);
    },
  };
}

function notWritable(config: Config, err: unknown): StartupFailure {
  const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new StartupFailure(
    `cannot write the data folder ${path.resolve(config.dataDir)} (${reason}): set OMNISCRAPE_DATA_DIR to a folder you can write, or DATABASE_URL to use your own Postgres`,
    'NOT_WRITABLE',
    { cause: err },
  );
}

/** The runner's failures, with the setting that gets the user out of them. */
function withWayOut(config: Config, err: unknown): unknown {
  if (!(err instanceof StartupFailure)) return err;
  if (err.code === 'PORT_IN_USE') {
    return new StartupFailure(
      `${err.message}: set OMNISCRAPE_EMBEDDED_PG_PORT to a free port, or stop what listens on ${config.embeddedPostgresPort}`,
      err.code,
      { cause: err },
    );
  }
  if (err.code === 'NOT_WRITABLE' && err.message.includes(path.resolve(config.dataDir)))
    return notWritable(config, err.cause ?? err);
  return err;
}

/** The URL of the embedded Postgres a running `npm start` holds in this data dir, if any. */
export function runningLocalPostgresUrl(config: Config): string | undefined {
  try {
    const state = JSON.parse(
      fs.readFileSync(path.join(path.resolve(config.dataDir), STATE_FILE), 'utf8'),
    ) as {
      url?: unknown;
      pid?: unknown;
    };
    if (typeof state.pid !== 'number') return undefined;
    process.kill(state.pid, 0);
    return typeof state.url === 'string' ? state.url : undefined;
  } catch {
    // No state file (nothing running), unreadable (another user's), or its process is gone: none to use.
    return undefined;
  }
}

/** Where the local key is kept, as the banner names it (relative to the checkout by default). */
export function localApiKeyFile(config: Config): string {
  return path.join(config.dataDir, LOCAL_KEY_FILE);
}

/** The key for local use: made once, kept (mode 600) in the data dir, reused after; never printed. */
export function localApiKey(config: Config): string {
  const file = path.resolve(localApiKeyFile(config));
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    // No key kept yet (the first start in this data dir): make one.
    const key = generateApiKey();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, key + '\n', { mode: 0o600 });
    return key;
  }
}
