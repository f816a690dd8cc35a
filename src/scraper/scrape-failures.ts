import { causes, ScrapeFailure } from '../domain-errors';
import { BLOCKED_ERROR_CODE } from './address-guard';

/**
 * A name that gave no address to connect to: DNS knows it not or failed, or the guard refused every
 * address it has. Clients are told the same for all of them, so a scrape or a webhook cannot be used
 * to learn which internal names exist; the guard's refusals are logged for the operator.
 */
const NO_USABLE_ADDRESS_CODES = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NODATA',
  'EAI_NONAME',
  'ENODATA',
  BLOCKED_ERROR_CODE,
]);

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'ECONNABORTED',
]);
const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);
const PROTOCOL_CODES = new Set([
  'UND_ERR_HEADERS_OVERFLOW',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_EXCEEDED_MAX_SIZE',
  'UND_ERR_INVALID_ARG',
  'Z_DATA_ERROR',
  'Z_BUF_ERROR',
  'ERR_TRAILING_JUNK_AFTER_STREAM_END',
]);

export const NO_USABLE_ADDRESS_MESSAGE =
  'The target could not be reached: its host name did not resolve to an address that can be connected to.';

/**
 * The one text a client reads for a name with no usable address (NO_USABLE_ADDRESS_CODES), whether
 * DNS or the guard was the reason, and whatever the name (the same bytes for every name); undefined
 * for any other error.
 */
export function noUsableAddressMessage(err: unknown): string | undefined {
  for (const e of causes(err)) {
    if (typeof e.code === 'string' && NO_USABLE_ADDRESS_CODES.has(e.code)) return NO_USABLE_ADDRESS_MESSAGE;
  }
  return undefined;
}

/** Maps whatever a scrape threw to one of the documented failure codes. */
export function toScrapeFailure(
  err: unknown,
  deadlinePassed: boolean,
  timeoutSeconds: number,
): ScrapeFailure {
  if (err instanceof ScrapeFailure) return err;
  const codes: string[] = [];
  for (const e of causes(err)) {
    if (typeof e.code === 'string') codes.push(e.code);
    if (e.name === 'HTTPParserError') codes.push('HPE_PARSER'); // undici's parser errors carry no code
  }
  const message = err instanceof Error ? err.message : String(err);
  const noAddress = noUsableAddressMessage(err);
  if (noAddress !== undefined) return new ScrapeFailure('TARGET_UNREACHABLE', noAddress);
  if (deadlinePassed || codes.some((c) => TIMEOUT_CODES.has(c))) {
    return new ScrapeFailure('TARGET_TIMEOUT', `The target did not answer within ${timeoutSeconds} s.`);
  }
  if (
    codes.some(
      (c) =>
        c.startsWith('ERR_TLS') || c.startsWith('ERR_SSL') || /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(c),
    )
  ) {
    return new ScrapeFailure('TARGET_TLS_ERROR', `TLS handshake with the target failed: ${message}`);
  }
  if (
    codes.some(
      (c) =>
        c.startsWith('HPE_') ||
        c.startsWith('Z_') ||
        c.startsWith('ERR__ERROR_FORMAT') ||
        c.startsWith('ERR_BROTLI') ||
        PROTOCOL_CODES.has(c),
    )
  ) {
    return new ScrapeFailure('TARGET_PROTOCOL_ERROR', `The target sent an invalid HTTP response: ${message}`);
  }
  if (codes.some((c) => UNREACHABLE_CODES.has(c))) {
    return new ScrapeFailure('TARGET_UNREACHABLE', `The target could not be reached: ${message}`);
  }
  return new ScrapeFailure('TARGET_UNREACHABLE', `The scrape failed: ${message}`);
}
