import * as nodeCrypto from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { Webhook } from 'standardwebhooks';
import { localSecretsKey } from '../src/cli/local-secrets-key';
import { ConfigError, loadConfig } from '../src/config';
import { runCli } from './helpers/cli';
import { KEY_A, startTestService, type TestService } from './helpers/service';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { waitFor } from './helpers/wait';

interface Delivery {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Deliveries to the receiver's /hook, by the job id they carry. */
const received = new Map<string, Delivery[]>();

let service: TestService;
let receiver: TargetServer;

beforeAll(async () => {
  receiver = await startTargetServer({
    '/hook': async (req, res) => {
      let body = '';
      for await (const chunk of req) body += chunk;
      const jobId = String(req.headers['x-omniscrape-job-id']);
      received.set(jobId, [...(received.get(jobId) ?? []), { headers: req.headers, body }]);
      res.end('thanks');
    },
  });
  service = await startTestService({ tuning: { webhookPollSeconds: 0.5 } });
});
afterAll(async () => {
  await service?.stop();
  await receiver?.close();
});

const cli = (args: string[], env: Record<string, string> = {}) =>
  runCli(args, { DATABASE_URL: service.databaseUrl, ...env });

/** Submits a job of `key` whose webhook is the receiver's; resolves with its first delivery. */
async function deliveredJob(
  key: string,
  webhook: { secret?: string } = {},
  on: TestService = service,
): Promise<{ jobId: string; delivery: Delivery }> {
  const res = await on.call(
    'POST',
    '/v1/scrape/async',
    { url: `${receiver.origin}/plain`, webhook: { url: `${receiver.origin}/hook`, ...webhook } },
    key,
  );
  expect(res.status).toBe(202);
  const jobId: string = res.body.job_id;
  const delivery = await waitFor(() => received.get(jobId)?.[0], { what: `the delivery of job ${jobId}` });
  return { jobId, delivery };
}

/** What a receiver using the standardwebhooks library does: `new Webhook(secret).verify(body, headers)`. */
function standardValid(delivery: Delivery, secret: string, options?: { format: 'raw' }): boolean {
  try {
    new Webhook(secret, options).verify(delivery.body, delivery.headers as Record<string, string>);
    return true;
  } catch {
    return false;
  }
}

/**
 * The verifier of X-Omniscrape-Signature in docs/api.md, run as printed there (the ```js block that
 * defines verifyOmniscrapeWebhook).
 */
const documentedVerifier: (rawBody: string, header: string, secret: string) => boolean = (() => {
  const page = fs.readFileSync(path.join(__dirname, '..', 'docs', 'api.md'), 'utf8');
  const block =
    /```js\n(const crypto = require\('node:crypto'\);[\s\S]*?function verifyOmniscrapeWebhook[\s\S]*?)```/.exec(
      page,
    );
  if (!block) throw new Error('docs/api.md has no ```js block defining verifyOmniscrapeWebhook');
  const requireCrypto = (name: string) => {
    if (name !== 'node:crypto') throw new Error(`the verifier of docs/api.md requires ${name}`);
    return nodeCrypto;
  };
  return vm.runInNewContext(`${block[1]}\nverifyOmniscrapeWebhook`, { require: requireCrypto, Buffer });
})();
const omniscrapeValid = (delivery: Delivery, secret: string) =>
  documentedVerifier(delivery.body, String(delivery.headers['x-omniscrape-signature']), secret);

/** `omniscrape keys create NAME --json`, as an operator runs it. */
async function createKey(name: string): Promise<{ key: string; webhook_secret: string }> {
  const created = await cli(['keys', 'create', name, '--json']);
  expect(created.code).toBe(0);
  return JSON.parse(created.stdout);
}

const storedDigest = async (name: string): Promise<string> =>
  (await service.query('select key_hash from omniscrape.api_keys where name = $1', [name]))[0].key_hash;

describe("a key's webhook signing secret", () => {
  test('keys create shows it once beside the key; a delivery verifies with it (standardwebhooks too), never with the stored digest', async () => {
    const { key, webhook_secret: secret } = await createKey('signer');
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const plain = await cli(['keys', 'create', 'signer-plain']);
    expect(plain.stdout.trim()).toMatch(/^osk_[A-Za-z0-9_-]{32}$/);
    expect(plain.stderr).toMatch(/webhook signing secret: whsec_/);

    const { jobId, delivery } = await deliveredJob(key);
    expect(delivery.headers['webhook-id']).toBe(`msg_${jobId}`);
    expect(Number(delivery.headers['webhook-timestamp'])).toBeCloseTo(Date.now() / 1000, -2);
    expect(delivery.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(standardValid(delivery, secret)).toBe(true);
    expect(omniscrapeValid(delivery, secret)).toBe(true);

    // What a reader of the database has: the key's digest signs nothing.
    const digest = await storedDigest('signer');
    expect(omniscrapeValid(delivery, digest)).toBe(false);
    expect(standardValid(delivery, digest, { format: 'raw' })).toBe(false);
    expect(standardValid(delivery, (await createKey('another')).webhook_secret)).toBe(false);

    // An operator reads it again (as for a key provisioned by OMNISCRAPE_API_KEYS).
    const shown = await cli(['keys', 'webhook-secret', 'signer']);
    expect(shown.stdout.trim()).toBe(secret);
  });

  test('the database holds key secrets and submissions’ own secrets sealed, not as given', async () => {
    const { webhook_secret: secret } = await createKey('sealed');
    const [row] = await service.query(
      `select s.sealed_secret from omniscrape.key_webhook_secrets s
         join omniscrape.api_keys k on k.id = s.api_key_id where k.name = 'sealed'`,
    );
    expect(row.sealed_secret).toMatch(/^v1:[^:]+:[^:]+:[^:]+$/);
    expect(row.sealed_secret).not.toContain(secret.slice('whsec_'.length, 20));

    const own = 'my-own-webhook-secret';
    const { jobId } = await deliveredJob(KEY_A, { secret: own });
    const [hook] = await service.query(
      'select secret, sealed_secret from omniscrape.job_webhooks where job_id = $1',
      [jobId],
    );
    expect(hook.secret).toBeNull();
    expect(hook.sealed_secret).toMatch(/^v1:/);
    expect(hook.sealed_secret).not.toContain(own);
  });

  test('a job with its own secret is signed with it, in both forms', async () => {
    const own = 'my-own-webhook-secret';
    const { delivery } = await deliveredJob(KEY_A, { secret: own });
    expect(omniscrapeValid(delivery, own)).toBe(true);
    expect(standardValid(delivery, own, { format: 'raw' })).toBe(true);
    expect(standardValid(delivery, (await cli(['keys', 'webhook-secret', 'alpha'])).stdout.trim())).toBe(
      false,
    );

    // A secret in Standard Webhooks' own form is used as such (its decoded bytes).
    const standard = `whsec_${nodeCrypto.randomBytes(32).toString('base64')}`;
    const { delivery: second } = await deliveredJob(KEY_A, { secret: standard });
    expect(standardValid(second, standard)).toBe(true);
    expect(omniscrapeValid(second, standard)).toBe(true);
  });

  test('a key provisioned by OMNISCRAPE_API_KEYS gets its secret when first needed, and keys webhook-secret shows it', async () => {
    const { delivery } = await deliveredJob(KEY_A);
    const shown = await cli(['keys', 'webhook-secret', 'alpha']);
    expect(shown.code).toBe(0);
    const secret = shown.stdout.trim();
    expect(secret).toMatch(/^whsec_/);
    expect(standardValid(delivery, secret)).toBe(true);
    expect(omniscrapeValid(delivery, await storedDigest('alpha'))).toBe(false);
    expect((await cli(['keys', 'webhook-secret', 'nobody'])).stderr).toContain(
      'no active key named "nobody"',
    );
  });

  test('after a rotation both secrets sign until the overlap ends, then only the new one', async () => {
    const { key, webhook_secret: old } = await createKey('rotating');
    const rotated = await cli(['keys', 'rotate-webhook-secret', 'rotating', '--json']);
    expect(rotated.code).toBe(0);
    const { webhook_secret: next, previous_signs_until: until } = JSON.parse(rotated.stdout);
    expect(next).toMatch(/^whsec_/);
    expect(next).not.toBe(old);
    // The default overlap: 24 hours.
    expect(Date.parse(until) - Date.now()).toBeGreaterThan(23 * 3600_000);

    const { delivery: during } = await deliveredJob(key);
    expect(String(during.headers['x-omniscrape-signature']).match(/v1=/g)).toHaveLength(2);
    expect(String(during.headers['webhook-signature']).split(' ')).toHaveLength(2);
    for (const secret of [old, next]) {
      expect(standardValid(during, secret)).toBe(true);
      expect(omniscrapeValid(during, secret)).toBe(true);
    }

    // The overlap's end, without waiting a day.
    await service.query(
      `update omniscrape.key_webhook_secrets set retires_at = now()
        where retires_at is not null and api_key_id = (select id from omniscrape.api_keys where name = 'rotating')`,
    );
    const { delivery: after } = await deliveredJob(key);
    expect(standardValid(after, next)).toBe(true);
    expect(omniscrapeValid(after, next)).toBe(true);
    expect(standardValid(after, old)).toBe(false);
    expect(omniscrapeValid(after, old)).toBe(false);

    // With --overlap-hours 0 the replaced secret stops at once.
    const now = JSON.parse(
      (await cli(['keys', 'rotate-webhook-secret', 'rotating', '--overlap-hours', '0', '--json'])).stdout,
    );
    const { delivery: third } = await deliveredJob(key);
    expect(standardValid(third, now.webhook_secret)).toBe(true);
    expect(standardValid(third, next)).toBe(false);
    expect((await cli(['keys', 'rotate-webhook-secret', 'rotating', '--overlap-hours', '-1'])).code).toBe(1);
  });
});

describe('the secrets key', () => {
  test('without OMNISCRAPE_SECRETS_KEY a delivery to be signed with its key’s secret is not sent and says why; one with its own secret is', async () => {
    const keyless = await startTestService({
      env: { OMNISCRAPE_SECRETS_KEY: '' },
      tuning: { webhookPollSeconds: 0.5, webhookRetryDelaySeconds: 3600 },
    });
    try {
      const res = await keyless.call('POST', '/v1/scrape/async', {
        url: `${receiver.origin}/plain`,
        webhook: { url: `${receiver.origin}/hook` },
      });
      const jobId: string = res.body.job_id;
      const [attempt] = await waitFor(
        async () => {
          const list = (await keyless.call('GET', `/v1/jobs/${jobId}/webhooks`)).body.data;
          return list.length > 0 && list;
        },
        { what: 'the failed attempt to be recorded' },
      );
      expect(attempt).toMatchObject({ succeeded: false, status_code: null });
      expect(attempt.error).toContain('OMNISCRAPE_SECRETS_KEY');
      expect(received.get(jobId)).toBeUndefined();

      const { delivery } = await deliveredJob(KEY_A, { secret: 'given-without-a-key' }, keyless);
      expect(omniscrapeValid(delivery, 'given-without-a-key')).toBe(true);

      const created = await runCli(['keys', 'create', 'no-secret-yet'], {
        DATABASE_URL: keyless.databaseUrl,
        OMNISCRAPE_SECRETS_KEY: '',
      });
      expect(created.code).toBe(0);
      expect(created.stderr).toContain('no webhook signing secret yet: OMNISCRAPE_SECRETS_KEY is not set');
    } finally {
      await keyless.stop();
    }
  });

  test('a setting that is not 32 bytes is refused, naming it; local mode keeps its own in the data folder, mode 600', () => {
    expect(() => loadConfig({ OMNISCRAPE_SECRETS_KEY: 'too-short' })).toThrow(ConfigError);
    expect(() => loadConfig({ OMNISCRAPE_SECRETS_KEY: 'too-short' })).toThrow(/OMNISCRAPE_SECRETS_KEY/);
    expect(loadConfig({ OMNISCRAPE_SECRETS_KEY: 'ab'.repeat(32) }).secretsKey).toEqual(
      Buffer.alloc(32, 0xab),
    );

    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-secrets-'));
    try {
      const config = loadConfig({ OMNISCRAPE_DATA_DIR: dataDir });
      const made = localSecretsKey(config);
      expect(made).toHaveLength(32);
      expect(fs.statSync(path.join(dataDir, 'secrets-key')).mode & 0o777).toBe(0o600);
      expect(localSecretsKey(config)).toEqual(made);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
