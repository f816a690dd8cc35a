import { createHmac } from 'node:crypto';
import type { Job } from 'pg-boss';
import { request, type Agent } from 'undici';
import type { ServiceContext } from '../context';
import { addressCheck, checkHostBeforeConnect, type TargetPolicy } from '../scraper/address-guard';
import { guardedAgent } from '../scraper/guarded-agent';
import { noUsableAddressMessage } from '../scraper/scrape-failures';
import { findJobs } from '../store/statements/find-job-for-key';
import { findWebhookTarget, recordWebhookDelivery, wasDelivered } from '../store/webhooks';
import { jobBody } from './job-view';
import { WEBHOOK_QUEUE } from './queue';
import type { WebhookJobData } from './webhook-trigger';

/** A receiver's whole answer must arrive within this (connect included). */
export const WEBHOOK_TIMEOUT_MS = 10_000;
/** Bytes of a receiver's answer read (and discarded) before the connection is dropped. */
export const MAX_RECEIVER_RESPONSE_BYTES = 64 * 1024;
/**
 * Deliveries one worker process sends at once. Their own pg-boss worker and agent, apart from the
 * scrape claim loop: a slow receiver ties up only these, never a scrape slot.
 */
const DELIVERY_CONCURRENCY = 4;

/** `X-Omniscrape-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export function webhookSignature(signingKey: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', signingKey).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/**
 * POSTs a signed body to a receiver through a guarded agent (blocked addresses are refused at
 * connect time); resolves with the receiver's status code, rejects on a network error or timeout.
 */
export async function postWebhook(
  agent: Agent,
  target: { url: string; signingKey: string; policy: TargetPolicy },
  jobId: string,
  body: string,
): Promise<number> {
  const { policy } = target;
  checkHostBeforeConnect(new URL(target.url).hostname, addressCheck(policy), !policy.allowPrivateTargets);
  const response = await request(target.url, {
    method: 'POST',
    dispatcher: agent,
    signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
    headers: {
      'content-type': 'application/json',
      'user-agent': 'omniscrape-webhooks',
      'x-omniscrape-job-id': jobId,
      'x-omniscrape-signature': webhookSignature(target.signingKey, body, Math.floor(Date.now() / 1000)),
    },
    body,
  });
  let read = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    read += chunk.length;
    if (read >= MAX_RECEIVER_RESPONSE_BYTES) break; // leaving the loop destroys the body
  }
  return response.statusCode;
}

/**
 * One delivery attempt of a job's end: skipped when it was delivered already (a redelivery
 * excepted), recorded whatever happens, and thrown when it failed so pg-boss retries it later.
 */
async function deliver(ctx: ServiceContext, agent: Agent, job: Job<WebhookJobData>): Promise<void> {
  const { db } = ctx.store;
  const { jobId, redelivery } = job.data;
  if (!redelivery && (await wasDelivered(db, jobId))) return;
  const [target, [view]] = await Promise.all([findWebhookTarget(db, jobId), findJobs(db, [jobId])]);
  if (!target || !view) return; // the job is gone: nothing left to report
  const began = performance.now();
  let statusCode: number | null = null;
  let error: string | null = null;
  try {
    statusCode = await postWebhook(agent, { ...target, policy: ctx.config }, jobId, jobBody(view));
  } catch (err) {
    // The client reads this error: a name with no usable address reads alike whatever the reason.
    error = noUsableAddressMessage(err) ?? (err instanceof Error ? err.message : String(err));
  }
  const succeeded = statusCode !== null && statusCode >= 200 && statusCode < 300;
  if (!succeeded && error === null) error = `The receiver answered HTTP ${statusCode}.`;
  await recordWebhookDelivery(db, jobId, {
    attempt: job.retryCount + 1,
    redelivery: redelivery === true,
    succeeded,
    status_code: statusCode,
    error,
    duration_ms: Math.round(performance.now() - began),
  });
  if (!succeeded) throw new Error(`webhook delivery of job ${jobId} failed: ${error}`);
}

export interface WebhookDeliveries {
  stop(): Promise<void>;
}

/** Sends webhook deliveries from this worker process until stopped. */
export async function startWebhookDeliveries(ctx: ServiceContext): Promise<WebhookDeliveries> {
  const agent = guardedAgent({
    allowPrivateTargets: ctx.config.allowPrivateTargets,
    blockedTargets: ctx.config.blockedTargets,
    onRefused: (refusal) =>
      ctx.logger.info(refusal, 'webhook receiver refused: its name resolves only to blocked addresses'),
  });
  const poll = ctx.config.webhookPollSeconds;
  await ctx.boss.work<WebhookJobData>(
    WEBHOOK_QUEUE,
    {
      localConcurrency: DELIVERY_CONCURRENCY,
      pollingIntervalSeconds: poll,
      notifyPollingIntervalSeconds: poll,
    },
    async ([job]) => {
      if (job) await deliver(ctx, agent, job);
    },
  );
  return {
    async stop() {
      await ctx.boss.offWork(WEBHOOK_QUEUE, { wait: true });
      await agent.close();
    },
  };
}
