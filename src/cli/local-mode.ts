import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config';
import { generateApiKey } from '../store/api-keys';
import { startEmbeddedPostgres, type RunningPostgres } from '../store/embedded-postgres';

/**
 * Local mode: with no DATABASE_URL, `serve` (what `npm start` runs) starts an embedded Postgres
 * with its data in the git-ignored OMNISCRAPE_DATA_DIR, and records its URL there so other
 * commands in the checkout (`keys create`, `cleanup`, …) find it while it runs.
 */
const STATE_FILE = 'embedded-postgres.json';
const LOCAL_KEY_FILE = 'local-api-key';
export const LOCAL_KEY_NAME = 'local';

export async function startLocalPostgres(config: Config, log: (line: string) => void): Promise<RunningPostgres> {
  const dataDir = path.resolve(config.dataDir);
  fs.mkdirSync(dataDir, { recursive: true });
  fs.chmodSync(dataDir, 0o755); // the server runs as the `postgres` user when we are root
  const server = await startEmbeddedPostgres({
    dataDir: path.join(dataDir, 'postgres'),
    port: config.embeddedPostgresPort,
    persistent: true,
    onLog: (line) => {
      if (/ERROR|FATAL|PANIC/.test(line)) log(line.trim());
    },
  });
  fs.writeFileSync(path.join(dataDir, STATE_FILE), JSON.stringify({ url: server.url, pid: process.pid }));
  return {
    ...server,
    async stop() {
      fs.rmSync(path.join(dataDir, STATE_FILE), { force: true });
      await server.stop();
    },
  };
}

/** The URL of the embedded Postgres a running `npm start` holds in this data dir, if any. */
export function runningLocalPostgresUrl(config: Config): string | undefined {
  try {
    const state = JSON.parse(fs.readFileSync(path.join(path.resolve(config.dataDir), STATE_FILE), 'utf8'));
    process.kill(state.pid, 0);
    return typeof state.url === 'string' ? state.url : undefined;
  } catch {
    return undefined;
  }
}

/** The key printed for local use: made once, kept (mode 600) in the data dir, reused after. */
export function localApiKey(config: Config): string {
  const file = path.join(path.resolve(config.dataDir), LOCAL_KEY_FILE);
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    const key = generateApiKey();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, key + '\n', { mode: 0o600 });
    return key;
  }
}
