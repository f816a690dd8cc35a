import { webhook as webhookBody } from '../contract/requests';
import { ScrapeFailure } from '../errors';
import { checkHostBeforeConnect } from '../scraper/address-guard';
import type { JobWebhook } from '../store/webhooks';
import { invalidRequest } from './errors';

export { MAX_WEBHOOK_URL_LENGTH } from '../contract/requests';

/**
 * Validates a submission's `webhook` (`field` names it in the 400). A host that is a blocked
 * address literal or a localhost name is refused here already, unless private targets are allowed;
 * names that resolve to blocked addresses are refused at connect time, by the delivery's agent.
 */
export function parseWebhook(input: unknown, field: string, allowPrivateTargets: boolean): JobWebhook {
  const parsed = webhookBody.safeParse(input);
  if (!parsed.success) {
    const messages = parsed.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') return `${field}: unknown field(s): ${issue.keys.join(', ')}`;
      return `${[field, ...issue.path].join('.')}: ${issue.message}`;
    });
    throw invalidRequest(messages.join('; '));
  }
  const webhook = parsed.data;
  if (!allowPrivateTargets) {
    try {
      checkHostBeforeConnect(new URL(webhook.url).hostname);
    } catch (err) {
      if (!(err instanceof ScrapeFailure)) throw err;
      throw invalidRequest(
        `${field}.url: must not be a loopback, private, link-local or reserved address (OMNISCRAPE_ALLOW_PRIVATE_TARGETS)`,
      );
    }
  }
  return webhook;
}

/** A submit body split into its scrape request fields and its webhook (parsed), if any. */
export function takeWebhook(
  input: unknown,
  field: string,
  allowPrivateTargets: boolean,
): { rest: unknown; webhook?: JobWebhook } {
  if (typeof input !== 'object' || input === null || Array.isArray(input) || !('webhook' in input)) {
    return { rest: input };
  }
  const { webhook, ...rest } = input as Record<string, unknown>;
  return { rest, webhook: parseWebhook(webhook, field, allowPrivateTargets) };
}
