import { Agent, buildConnector } from 'undici';
import {
  addressCheck,
  BLOCKED_ERROR_CODE,
  guardedLookup,
  type GuardRefusal,
  type TargetPolicy,
} from './address-guard';

/** How long opening a connection (name lookup included) may take, unless the caller says. */
const CONNECT_TIMEOUT_MS = 10_000;

export interface GuardedAgentOptions extends TargetPolicy {
  /** The built-in refused ranges; tests substitute their own to exercise every check on loopback. */
  isBlockedAddress?: (address: string) => boolean;
  /** Hears of each connection the guard refused (for the operator's log). */
  onRefused?: (refusal: GuardRefusal) => void;
  /** Bytes a socket may buffer before they are read. */
  highWaterMark?: number;
  maxHeaderSize?: number;
  /** How long opening a connection may take; default CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number;
}

/**
 * An undici Agent that can only open sockets to allowed addresses: names resolve to allowed
 * addresses only (guardedLookup), and the address a socket really reached is judged again. Scrapes
 * and webhook deliveries go out through one of these each.
 */
export function guardedAgent(options: GuardedAgentOptions): Agent {
  const isBlocked = addressCheck(options, options.isBlockedAddress);
  const baseConnect = buildConnector({
    timeout: options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
    ...(options.highWaterMark !== undefined && { highWaterMark: options.highWaterMark }),
    ...(isBlocked && { lookup: guardedLookup(isBlocked, options.onRefused) }),
  });
  const connect: buildConnector.connector = (opts, callback) =>
    baseConnect(opts, (err, socket) => {
      if (err || !socket) return callback(err ?? new Error('connect failed'), null);
      // Defence in depth: judge the address the socket really reached (unknown counts as refused).
      if (isBlocked && (!socket.remoteAddress || isBlocked(socket.remoteAddress))) {
        socket.destroy();
        const address = socket.remoteAddress ?? '(unknown)';
        options.onRefused?.({ hostname: opts.hostname, addresses: [address] });
        const blocked: NodeJS.ErrnoException = new Error(`connected address ${address} is not allowed`);
        blocked.code = BLOCKED_ERROR_CODE;
        return callback(blocked, null);
      }
      callback(null, socket);
    });
  return new Agent({
    connect,
    ...(options.maxHeaderSize !== undefined && { maxHeaderSize: options.maxHeaderSize }),
    keepAliveTimeout: 10_000,
  });
}
