import type { Command } from 'commander';
import { generateApiKey, insertApiKey, listApiKeys, revokeApiKey, updateApiKeyLimits } from '../db/api-keys';
import { MAX_WEBHOOK_URL_LENGTH } from '../http/webhook-schema';
import { createKeyWebhookSecret } from '../jobs/webhook-signing-secrets';
import { config, fail, positiveInt, print, withStore } from './common';
import { addWebhookSecretCommands, secretsKeyOf, NO_SECRETS_KEY } from './webhook-secret-commands';

/** A limit flag: a whole number, or `default` (back to the service default; no quota for --monthly-quota). */
function limitValue(value: string): number | null {
  if (value === 'default' || value === 'none') return null;
  return positiveInt(value);
}

/** `--webhook`: an http(s) URL, or `none` (no default webhook). */
function webhookValue(value: string): string | null {
  if (value === 'none') return null;
  const url = URL.parse(value);
  if (
    !url ||
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    value.length > MAX_WEBHOOK_URL_LENGTH
  ) {
    fail(
      `--webhook: must be an absolute http:// or https:// URL of at most ${MAX_WEBHOOK_URL_LENGTH} characters, or none`,
    );
  }
  return value;
}

function withLimitOptions(command: Command): Command {
  return command
    .option(
      '--concurrency <n>',
      'scrapes processing at once, sync and async together (default: OMNISCRAPE_DEFAULT_CONCURRENCY)',
      limitValue,
    )
    .option(
      '--max-queued <n>',
      'async jobs waiting at once (default: OMNISCRAPE_DEFAULT_MAX_QUEUED)',
      limitValue,
    )
    .option('--monthly-quota <n>', 'successful scrapes per calendar month, UTC (default: none)', limitValue)
    .option(
      '--webhook <url>',
      "where the key's jobs report their end when a submission names no webhook (`none`: nowhere)",
      webhookValue,
    );
}

type LimitOptions = {
  concurrency?: number | null;
  maxQueued?: number | null;
  monthlyQuota?: number | null;
  webhook?: string | null;
};
type CreateOptions = LimitOptions & { admin?: boolean; json?: boolean };

const settingsOf = ({ webhook, ...limits }: LimitOptions) => ({ ...limits, webhookUrl: webhook });

/** The `keys` commands: create, limits, revoke, list. */
export function addKeysCommands(program: Command): void {
  const keys = program.command('keys').description('manage API keys');
  withLimitOptions(keys.command('create <name>'))
    .option('--admin', 'an admin key: it may open the operator dashboard (GET /dashboard)')
    .option('--json', 'print {"name", "key", "webhook_secret"} as one JSON line')
    .description('create a key and print it once (only its hash is stored), with its webhook signing secret')
    .action(async (name: string, { admin, json, ...limits }: CreateOptions) => {
      const cfg = config();
      const secretsKey = secretsKeyOf(cfg);
      const key = generateApiKey();
      // The key and its webhook secret in one transaction: no key is left without its secret.
      const created = await withStore(cfg, (store) =>
        store.db.transaction().execute(async (trx) => {
          const identity = await insertApiKey(trx, name, key, {
            ...settingsOf(limits),
            admin: admin === true,
          });
          if (!identity) return undefined;
          return {
            webhookSecret: secretsKey && (await createKeyWebhookSecret(trx, secretsKey, identity.id)),
          };
        }),
      );
      if (!created) return fail(`a key named "${name}" already exists`);
      const { webhookSecret } = created;
      if (json) print(JSON.stringify({ name, key, webhook_secret: webhookSecret ?? null }));
      else print(key);
      process.stderr.write(`created key "${name}"; it is shown only this once.\n`);
      if (!json)
        process.stderr.write(
          webhookSecret
            ? `webhook signing secret: ${webhookSecret}\n`
            : `no webhook signing secret yet: ${NO_SECRETS_KEY}; once it is, \`omniscrape keys webhook-secret ${name}\` makes and prints it\n`,
        );
    });
  withLimitOptions(keys.command('limits <name>'))
    .description("change a key's limits (a value of `default` restores the service default)")
    .action(async (name: string, limits: LimitOptions) => {
      const updated = await withStore(config(), (store) =>
        updateApiKeyLimits(store.db, name, settingsOf(limits)),
      );
      if (!updated) fail(`no key named "${name}"`);
      print(`updated the limits of key "${name}" (they apply to jobs submitted from now on)`);
    });
  keys
    .command('revoke <name>')
    .description('revoke a key: requests with it are refused at once')
    .action(async (name: string) => {
      const revoked = await withStore(config(), (store) => revokeApiKey(store.db, name));
      if (!revoked) fail(`no active key named "${name}"`);
      print(`revoked key "${name}"`);
    });
  addWebhookSecretCommands(keys);
  keys
    .command('list')
    .description('list keys (names and prefixes, never the keys)')
    .action(async () => {
      const rows = await withStore(config(), (store) => listApiKeys(store.db));
      const or = (value: number | null, fallback: string) => (value === null ? fallback : String(value));
      for (const row of rows) {
        const limits = `concurrency ${or(row.concurrency_limit, 'default')}, max queued ${or(row.max_queued, 'default')}, monthly quota ${or(row.monthly_quota, 'none')}`;
        const webhook = row.webhook_url ? `, webhook ${row.webhook_url}` : '';
        const admin = row.is_admin ? '\tadmin' : '';
        const revoked = row.revoked_at ? `\trevoked ${new Date(row.revoked_at).toISOString()}` : '';
        print(
          `${row.name}\t${row.key_prefix}…\tcreated ${row.created_at.toISOString()}\t${limits}${webhook}${admin}${revoked}`,
        );
      }
    });
}
