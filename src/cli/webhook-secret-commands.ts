import { InvalidArgumentError, type Command } from 'commander';
import type { Config } from '../config';
import { keyWebhookSecrets, rotateKeyWebhookSecretOf } from '../jobs/webhook-signing-secrets';
import { activeKeyIdByName } from '../db/key-webhook-secrets';
import { config, fail, print, withStore } from './common';
import { readLocalSecretsKey } from './local-secrets-key';

/** Hours a rotated key secret signs beside its successor, unless --overlap-hours says otherwise. */
export const DEFAULT_OVERLAP_HOURS = 24;
const MAX_OVERLAP_HOURS = 30 * 24;

export const NO_SECRETS_KEY =
  'OMNISCRAPE_SECRETS_KEY is not set (webhook secrets are kept sealed with it; docs/security.md)';

/** OMNISCRAPE_SECRETS_KEY, else (without DATABASE_URL) the one `npm start` keeps in the data folder. */
export function secretsKeyOf(cfg: Config): Buffer | undefined {
  return cfg.secretsKey ?? (cfg.databaseUrl === undefined ? readLocalSecretsKey(cfg) : undefined);
}

function overlapHours(value: string): number {
  const hours = Number(value);
  if (value.trim() === '' || !Number.isFinite(hours) || hours < 0 || hours > MAX_OVERLAP_HOURS)
    throw new InvalidArgumentError(`must be a number of hours from 0 to ${MAX_OVERLAP_HOURS}`);
  return hours;
}

/**
 * `keys webhook-secret` and `keys rotate-webhook-secret`: an operator's commands, as every `keys`
 * command is (they need the database and the secrets key, which no API client has).
 */
export function addWebhookSecretCommands(keys: Command): void {
  keys
    .command('webhook-secret <name>')
    .description(
      "print a key's webhook signing secret (made now if it has none yet: a key of OMNISCRAPE_API_KEYS, or older than this release)",
    )
    .action(async (name: string) => {
      const cfg = config();
      const secretsKey = secretsKeyOf(cfg) ?? fail(`cannot read webhook secrets: ${NO_SECRETS_KEY}`);
      const secrets = await withStore(cfg, async (store) => {
        const id = await activeKeyIdByName(store.db, name);
        return id && keyWebhookSecrets(store.db, secretsKey, id);
      });
      if (!secrets) return fail(`no active key named "${name}"`);
      print(secrets[0]);
      if (secrets.length > 1)
        process.stderr.write('the previous secret still signs too (its overlap has not ended)\n');
    });
  keys
    .command('rotate-webhook-secret <name>')
    .description(
      'give a key a new webhook signing secret and print it; the previous one signs too until the overlap ends',
    )
    .option(
      '--overlap-hours <h>',
      `hours the previous secret keeps signing beside the new one (0: it stops now)`,
      overlapHours,
      DEFAULT_OVERLAP_HOURS,
    )
    .option('--json', 'print {"name", "webhook_secret", "previous_signs_until"} as one JSON line')
    .action(async (name: string, options: { overlapHours: number; json?: boolean }) => {
      const cfg = config();
      const secretsKey = secretsKeyOf(cfg) ?? fail(`cannot make a webhook secret: ${NO_SECRETS_KEY}`);
      const rotated = await withStore(cfg, async (store) => {
        const id = await activeKeyIdByName(store.db, name);
        return id && rotateKeyWebhookSecretOf(store.db, secretsKey, id, options.overlapHours * 3600);
      });
      if (!rotated) return fail(`no active key named "${name}"`);
      const until = rotated.previousUntil?.toISOString() ?? null;
      if (options.json)
        print(JSON.stringify({ name, webhook_secret: rotated.secret, previous_signs_until: until }));
      else print(rotated.secret);
      process.stderr.write(
        until
          ? `new webhook secret of key "${name}"; deliveries carry signatures by both until ${until}\n`
          : `new webhook secret of key "${name}" (it had none before)\n`,
      );
    });
}
