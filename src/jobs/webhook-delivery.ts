import type { JobWithMetadata } from 'pg-boss';
import { request, type Agent } from 'undici';
import type { ServiceContext } from '../context';
import { addressCheck, checkHostBeforeConnect, type TargetPolicy } from '../scraper/address-guard';
import { guardedAgent } from '../scraper/guarded-agent';
import { deferWebhookDelivery } from '../db/statements/defer-webhook-delivery';
import { noUsableAddressMessage } from '../scraper/scrape-failures';
import { findJobs } from '../db/statements/find-jobs';
import { recordWebhookDelivery, wasDelivered, type WebhookDelivery } from '../db/webhooks';
import { WEBHOOK_QUEUE } from './queue';
import { ReceiverBreaker } from './receiver-breaker';
import { startRelayPollers } from './relay-pollers';
import { webhookBody } from './webhook-body';
import { signatureHeaders, UnsignableDeliveryError, type WebhookSigning } from './webhook-signature';
import { webhookTarget } from './webhook-signing-secrets';
import type { WebhookJobData } from './webhook-trigger';

/** A receiver's whole answer must arrive within this (connect included). */
export const WEBHOOK_TIMEOUT_MS = 10_000;
/**
 * Opening a connection to a receiver must succeed within this: a receiver that cannot be reached
 * costs a delivery slot 3 s, not the whole WEBHOOK_TIMEOUT_MS.
 */
export const WEBHOOK_CONNECT_TIMEOUT_MS = 3_000;
/** Bytes of a receiver's answer read (and discarded) before the connection is dropped. */
export const MAX_RECEIVER_RESPONSE_BYTES = 64 * 1024;
/**
 * How long after it was queued a delivery may still be deferred by its receiver's open circuit:
 * about the span of its retries (WEBHOOK_RETRY_LIMIT). Past it, the delivery is given up unsent.
 */
export const DEFERRAL_HORIZON_MS = 24 * 3600 * 1000;
/** The error recorded for a delivery given up past DEFERRAL_HORIZON_MS. */
const GIVEN_UP =
  'Not sent: the receiver kept failing for a day and its circuit is open. Redeliver once it answers again.';
/** Most random delay added to a deferral, so the deliveries an open circuit held do not all return at once. */
const MAX_DEFERRAL_SPREAD_MS = 5_000;

/**
 * POSTs a signed body to a receiver through a guarded agent (blocked addresses are refused at
 * connect time); resolves with the receiver's status code, rejects on a network error or timeout,
 * or when the delivery cannot be signed (then nothing is sent).
 */
export async function postWebhook(
  agent: Agent,
  target: { url: string; signing: WebhookSigning; policy: TargetPolicy },
  jobId: string,
  body: string,
): Promise<number> {
  const { policy } = target;
  checkHostBeforeConnect(new URL(target.url).hostname, addressCheck(policy), !policy.allowPrivateTargets);
  const signed = signatureHeaders(target.signing, jobId, body, Math.floor(Date.now() / 1000));
  const response = await request(target.url, {
    method: 'POST',
    dispatcher: agent,
    signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
    headers: {
      'content-type': 'application/json',
      'user-agent': 'omniscrape-webhooks',
      'x-omniscrape-job-id': jobId,
      ...signed,
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

/** `at`, plus up to a fifth of the wait (at most MAX_DEFERRAL_SPREAD_MS) at random. */
function spreadOut(at: number): Date {
  const wait = Math.max(at - Date.now(), 0);
  return new Date(at + Math.random() * Math.min(MAX_DEFERRAL_SPREAD_MS, wait / 5));
}

/** What a worker process's deliveries share: its agent and what it knows of failing receivers. */
interface Deliveries {
  ctx: ServiceContext;
  agent: Agent;
  breaker: ReceiverBreaker;
}

/**
 * One delivery attempt of a job's end: skipped when it was delivered already (a redelivery
 * excepted), deferred unsent while its receiver's circuit is open, recorded whatever happens once
 * sent, and thrown when it failed so pg-boss retries it later.
 */
async function deliver(
  { ctx, agent, breaker }: Deliveries,
  job: JobWithMetadata<WebhookJobData>,
): Promise<void> {
  const { db } = ctx.store;
  const { jobId, redelivery } = job.data;
  if (!redelivery && (await wasDelivered(db, jobId))) return;
  const target = await webhookTarget(ctx, jobId);
  if (!target) return; // the job is gone: nothing left to report
  const receiver = ReceiverBreaker.receiverOf(target.url);
  const admission = breaker.admit(receiver);
  const record = (outcome: Pick<WebhookDelivery, 'succeeded' | 'status_code' | 'error' | 'duration_ms'>) =>
    recordWebhookDelivery(db, jobId, {
      attempt: job.retryCount + 1,
      redelivery: redelivery === true,
      ...outcome,
    });
  if (!admission.send) {
    if (Date.now() - job.createdOn.getTime() < DEFERRAL_HORIZON_MS) {
      // No attempt is counted: the retries measure sends, not waits (deferWebhookDelivery).
      await deferWebhookDelivery(db, WEBHOOK_QUEUE, job, spreadOut(admission.retryAt));
    } else {
      await record({ succeeded: false, status_code: null, error: GIVEN_UP, duration_ms: 0 });
    }
    return;
  }
  // Read only for a delivery that is sent: a deferred one costs no read of its result.
  const [view] = await findJobs(db, [jobId]);
  if (!view) return;
  const began = performance.now();
  let statusCode: number | null = null;
  let error: string | null = null;
  let unsignable = false;
  try {
    statusCode = await postWebhook(
      agent,
      { ...target, policy: ctx.config },
      jobId,
      webhookBody(view, ctx.config.webhookMaxBodyBytes),
    );
  } catch (err) {
    // The client reads this error: a name with no usable address reads alike whatever the reason.
    error = noUsableAddressMessage(err) ?? (err instanceof Error ? err.message : String(err));
    unsignable = err instanceof UnsignableDeliveryError;
  }
  const succeeded = statusCode !== null && statusCode >= 200 && statusCode < 300;
  if (!succeeded && error === null) error = `The receiver answered HTTP ${statusCode}.`;
  // A delivery that could not be signed was never sent: it says nothing of its receiver.
  if (!unsignable) breaker.record(receiver, succeeded);
  await record({
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

/**
 * Sends webhook deliveries from this worker process until stopped: OMNISCRAPE_WEBHOOK_CONCURRENCY
 * at once, of which one key's take at most OMNISCRAPE_WEBHOOK_CONCURRENCY_PER_KEY. Each delivery
 * is queued in its key's pg-boss group, and pg-boss's localGroupConcurrency leaves a key at its cap
 * out of the worker's fetch (a group found over it after a racing fetch is restored unstarted), so
 * one key's backlog of hanging receivers never holds the slots another key's deliveries need.
 * A delivery queued without a group is not capped (pg-boss caps groups only).
 */
export async function startWebhookDeliveries(ctx: ServiceContext): Promise<WebhookDeliveries> {
  const { config } = ctx;
  const agent = guardedAgent({
    allowPrivateTargets: config.allowPrivateTargets,
    blockedTargets: config.blockedTargets,
    onRefused: (refusal) =>
      ctx.logger.info(refusal, 'webhook receiver refused: its name resolves only to blocked addresses'),
    connectTimeoutMs: WEBHOOK_CONNECT_TIMEOUT_MS,
  });
  const breaker = new ReceiverBreaker({
    failures: config.webhookBreakerFailures,
    openMs: config.webhookBreakerOpenSeconds * 1000,
    probeWaitMs: WEBHOOK_TIMEOUT_MS,
  });
  const pollers = await startRelayPollers<JobWithMetadata<WebhookJobData>>(
    ctx.boss,
    WEBHOOK_QUEUE,
    {
      pollers: config.webhookConcurrency,
      pollSeconds: config.webhookPollSeconds,
      options: {
        localGroupConcurrency: Math.min(config.webhookConcurrencyPerKey, config.webhookConcurrency),
        // createdOn: when the delivery was queued (DEFERRAL_HORIZON_MS).
        includeMetadata: true,
      },
    },
    (job) => deliver({ ctx, agent, breaker }, job),
  );
  return {
    async stop() {
      pollers.stop();
      await ctx.boss.offWork(WEBHOOK_QUEUE, { wait: true });
      await agent.close();
    },
  };
}
