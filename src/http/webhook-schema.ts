import { webhook as webhookBody } from '../contract/requests';
import { ScrapeFailure } from '../domain-errors';
import { addressCheck, checkHostBeforeConnect, type TargetPolicy } from '../scraper/address-guard';
import type { JobWebhook } from '../db/webhooks';
import { invalidRequest } from './errors';

export { MAX_WEBHOOK_URL_LENGTH } from '../contract/requests';

/**
 * Validates a submission's `webhook` (`field` names it in the 400). A host that is a blocked
 * address literal (or a localhost name, unless private targets are allowed) is refused here
 * already; names that resolve to blocked addresses are refused at connect time, by the delivery's
 * agent.
 */
export function parseWebhook(input: unknown, field: string, targets: TargetPolicy): JobWebhook {
  const parsed = webhookBody.safeParse(input);
  if (!parsed.success) {
    const messages = parsed.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') return `${field}: unknown field(s): ${issue.keys.join(', ')}`;
      return `${[field, ...issue.path].join('.')}: ${issue.message}`;
    });
    throw invalidRequest(messages.join('; '));
  }
  const webhook = parsed.data;
  try {
    checkHostBeforeConnect(
      new URL(webhook.url).hostname,
      addressCheck(targets),
      !targets.allowPrivateTargets,
    );
  } catch (err) {
    if (!(err instanceof ScrapeFailure)) throw err;
    throw invalidRequest(
      `${field}.url: must not be a loopback, private, link-local, reserved or blocked address (OMNISCRAPE_ALLOW_PRIVATE_TARGETS, OMNISCRAPE_BLOCKED_TARGETS)`,
    );
  }
  return webhook;
}

/** A submit body split into its scrape request fields and its webhook (parsed), if any. */
export function takeWebhook(
  input: unknown,
  field: string,
  targets: TargetPolicy,
): { rest: unknown; webhook?: JobWebhook } {
  if (typeof input !== 'object' || input === null || Array.isArray(input) || !('webhook' in input)) {
    return { rest: input };
  }
  const { webhook, ...rest } = input as Record<string, unknown>;
  return { rest, webhook: parseWebhook(webhook, field, targets) };
}
