import dns from 'node:dns';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { ScrapeFailure } from '../errors';

/**
 * Which addresses a scrape may connect to. Only globally routable unicast addresses pass;
 * loopback, private (RFC 1918), CGNAT, link-local (cloud metadata at 169.254.169.254), multicast,
 * unspecified and reserved ranges are refused, for IPv4 and IPv6 alike. IPv4-mapped IPv6
 * (::ffff:127.0.0.1) is judged as the IPv4 address it carries; the WHATWG URL parser has already
 * turned decimal, octal and hex IPv4 spellings into dotted form before we see a host.
 */
export function isBlockedAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return true;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6') {
    const v6 = parsed as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) {
      parsed = v6.toIPv4Address();
    } else if (v6.parts.slice(0, 6).every((part) => part === 0)) {
      // IPv4-compatible (::a.b.c.d, deprecated): ipaddr.js calls it unicast, but it embeds IPv4.
      return true;
    }
  }
  return parsed.range() !== 'unicast';
}

export function blockedTarget(what: string): ScrapeFailure {
  return new ScrapeFailure(
    'TARGET_BLOCKED',
    `Target ${what} is not allowed: it is a loopback, private, link-local or reserved address.`,
  );
}

/** Marks a lookup or connect refusal so the scraper can tell it from a network error. */
export const BLOCKED_ERROR_CODE = 'OMNISCRAPE_TARGET_BLOCKED';

function blockedNetworkError(host: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${host} resolves only to addresses that are not allowed`);
  err.code = BLOCKED_ERROR_CODE;
  return err;
}

/** Refuses a URL's host before any connection when it is an address literal or a localhost name. */
export function checkHostBeforeConnect(
  hostname: string,
  isBlocked: (address: string) => boolean = isBlockedAddress,
): void {
  const bare = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  const lower = bare.toLowerCase().replace(/\.$/, '');
  if (lower === 'localhost' || lower.endsWith('.localhost')) throw blockedTarget(hostname);
  if (net.isIP(bare) && isBlocked(bare)) throw blockedTarget(hostname);
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;

/**
 * A `net.connect` lookup that drops blocked addresses from the answer, so the socket can only be
 * opened to an allowed one. Resolution happens here, once, for the connection itself: there is
 * no second lookup a rebinding DNS server could answer differently.
 */
export function guardedLookup(isBlocked: (address: string) => boolean = isBlockedAddress) {
  return (hostname: string, options: dns.LookupOptions, callback: LookupCallback): void => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const allowed = addresses.filter((a) => !isBlocked(a.address));
      if (allowed.length === 0) return callback(blockedNetworkError(hostname), []);
      if (options.all) return callback(null, allowed);
      const first = allowed[0]!;
      callback(null, first.address, first.family);
    });
  };
}
