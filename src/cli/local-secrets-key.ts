import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config';
import { generateSecretsKey, parseSecretsKey } from '../sealed-secrets';
import { StartupFailure } from '../startup-failure';

/**
 * Local mode's OMNISCRAPE_SECRETS_KEY: made at the first `serve` without DATABASE_URL, kept (mode
 * 600) in the data folder beside the local API key and the Postgres password, and used by every
 * later start and by the commands run in the checkout (`keys create`, …). The database folder
 * beside it holds only what this key sealed, so copying the database alone signs nothing.
 */
export const LOCAL_SECRETS_KEY_FILE = 'secrets-key';

const fileOf = (config: Config) => path.join(path.resolve(config.dataDir), LOCAL_SECRETS_KEY_FILE);

/** The kept key, if there is one; a file that holds no key is a failure that names it. */
export function readLocalSecretsKey(config: Config): Buffer | undefined {
  const file = fileOf(config);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const key = parseSecretsKey(text);
  if (!key)
    throw new StartupFailure(
      `${file} does not hold a secrets key (32 bytes, base64): restore it, or set OMNISCRAPE_SECRETS_KEY`,
    );
  return key;
}

/** The kept key, made now at the first start in this data folder. */
export function localSecretsKey(config: Config): Buffer {
  const kept = readLocalSecretsKey(config);
  if (kept) return kept;
  const file = fileOf(config);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  try {
    // `wx`: two starts at once cannot each keep a key of their own; the second reads the first's.
    fs.writeFileSync(file, generateSecretsKey() + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return readLocalSecretsKey(config)!;
}
