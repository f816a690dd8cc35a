import { LRUCache } from 'lru-cache';

/** The longest a receiver's circuit stays open at once, however often it failed. */
export const MAX_OPEN_MS = 3600 * 1000;
/** Receivers whose failures one worker process remembers; the longest-quiet one is forgotten first. */
export const MAX_TRACKED_RECEIVERS = 10_000;

export interface ReceiverBreakerOptions {
  /** Failed deliveries in a row that open a receiver's circuit. */
  failures: number;
  /** How long it stays open the first time; each opening without a success in between doubles it. */
  openMs: number;
  /** How long a delivery waits while another one probes a receiver whose circuit just closed halfway. */
  probeWaitMs: number;
  maxReceivers?: number;
  now?: () => number;
}

/** Whether a delivery may be sent now, and if not, from when. */
export type Admission = { send: true } | { send: false; retryAt: number };

interface ReceiverState {
  /** Failed deliveries in a row. */
  failures: number;
  /** Openings since the last success: the next open period is openMs · 2^(openings − 1). */
  openings: number;
  /** Until when nothing is sent (ms since the epoch); 0 while closed. */
  openUntil: number;
  /** Until when the one delivery let through after an open period is in flight (0: none is). */
  probingUntil: number;
}

/**
 * A circuit breaker per webhook receiver (a URL origin): after `failures` failed deliveries in a
 * row its circuit opens, and deliveries to it are not sent until `openMs` has passed (doubling with
 * each opening, at most an hour). Then one delivery is let through as a probe, the others wait: a
 * success closes the circuit, a failure opens it again for twice as long. What a caller does with
 * a delivery it may not send (defer it) is the caller's business.
 *
 * State is per process: each worker learns a receiver's failures on its own, so with W workers a
 * failing receiver sees up to W times the probes. Memory is bounded: a receiver is forgotten on its
 * first success, and at most `maxReceivers` failing ones are remembered (the one touched longest
 * ago goes first; forgetting one only costs it `failures` more attempts).
 */
export class ReceiverBreaker {
  /** Touched (in LRU order) only by `record`: `admit` peeks. */
  readonly #receivers: LRUCache<string, ReceiverState>;
  readonly #now: () => number;

  constructor(private readonly options: ReceiverBreakerOptions) {
    this.#now = options.now ?? Date.now;
    this.#receivers = new LRUCache({ max: options.maxReceivers ?? MAX_TRACKED_RECEIVERS });
  }

  /** The receiver a URL names: its origin. */
  static receiverOf(url: string): string {
    return new URL(url).origin;
  }

  /** Receivers remembered now (failing ones). */
  get size(): number {
    return this.#receivers.size;
  }

  /** Whether a delivery to `receiver` may go now; a yes to a half-open receiver makes it the probe. */
  admit(receiver: string): Admission {
    const state = this.#receivers.peek(receiver);
    if (!state || state.failures < this.options.failures) return { send: true };
    const now = this.#now();
    if (now < state.openUntil) return { send: false, retryAt: state.openUntil };
    if (now < state.probingUntil) return { send: false, retryAt: state.probingUntil };
    state.probingUntil = now + this.options.probeWaitMs;
    return { send: true };
  }

  /** The outcome of a delivery that was sent. */
  record(receiver: string, succeeded: boolean): void {
    if (succeeded) {
      this.#receivers.delete(receiver);
      return;
    }
    const state = this.#receivers.get(receiver) ?? {
      failures: 0,
      openings: 0,
      openUntil: 0,
      probingUntil: 0,
    };
    state.failures += 1;
    state.probingUntil = 0;
    const now = this.#now();
    // A delivery sent before the circuit opened and failing after leaves the open period as it is.
    if (state.failures >= this.options.failures && now >= state.openUntil) {
      state.openings += 1;
      const openMs = Math.min(this.options.openMs * 2 ** Math.min(state.openings - 1, 30), MAX_OPEN_MS);
      state.openUntil = now + openMs;
    }
    this.#receivers.set(receiver, state);
  }
}
