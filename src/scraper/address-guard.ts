import dns from 'node:dns';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { ScrapeFailure } from '../domain-errors';

/**
 * Cloud platform endpoints that are ordinary unicast addresses, so the range check below would let
 * them through. The other well-known metadata endpoints fall in ranges refused already:
 * 169.254.169.254 (AWS, GCP, Azure, Oracle, DigitalOcean, OpenStack), 169.254.170.2 (AWS ECS task
 * metadata) and 169.254.0.23 (Tencent) are link-local; 100.100.100.200 (Alibaba) is CGNAT;
 * fd00:ec2::254 (AWS IMDS over IPv6) is unique-local; 192.0.0.192 (Oracle's older endpoint) is
 * reserved.
 */
const PLATFORM_ENDPOINTS = new Set([
  // Azure's WireServer: VM agent, instance health, DNS; it answers any VM of the host.
  '168.63.129.16',
]);

/**
 * Which addresses a scrape may connect to. Only globally routable unicast addresses pass;
 * loopback, private (RFC 1918), CGNAT, link-local (cloud metadata at 169.254.169.254), multicast,
 * unspecified and reserved ranges are refused, for IPv4 and IPv6 alike, and the platform endpoints
 * above. IPv4-mapped IPv6 (::ffff:127.0.0.1) is judged as the IPv4 address it carries; the WHATWG
 * URL parser has already turned decimal, octal and hex IPv4 spellings into dotted form before we
 * see a host.
 */
export function isBlockedAddress(address: string): boolean {
  const parsed = parseAddress(address);
  if (!parsed) return true;
  // IPv4-compatible (::a.b.c.d, deprecated): ipaddr.js calls it unicast, but it embeds IPv4.
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).parts.slice(0, 6).every((part) => part === 0))
    return true;
  return parsed.range() !== 'unicast' || PLATFORM_ENDPOINTS.has(parsed.toString());
}

/** An address as the guard judges it (IPv4-mapped IPv6 as its IPv4), or undefined when it is none. */
function parseAddress(address: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (!ipaddr.isValid(address)) return undefined;
  const parsed = ipaddr.parse(address);
  if (parsed instanceof ipaddr.IPv6 && parsed.isIPv4MappedAddress()) return parsed.toIPv4Address();
  return parsed;
}

/** Which targets scrapes and webhook deliveries may reach: the two settings that say so. */
export interface TargetPolicy {
  /** OMNISCRAPE_ALLOW_PRIVATE_TARGETS: the built-in ranges (isBlockedAddress) are lifted. */
  allowPrivateTargets: boolean;
  /** OMNISCRAPE_BLOCKED_TARGETS: the operator's CIDRs, refused whatever allowPrivateTargets says. */
  blockedTargets?: readonly string[];
}

/**
 * The address check a policy asks for, or undefined when any address may be reached (private
 * targets allowed and no ranges of the operator's). `isReserved` stands for the built-in ranges;
 * tests substitute their own to exercise every check on loopback.
 */
export function addressCheck(
  policy: TargetPolicy,
  isReserved: (address: string) => boolean = isBlockedAddress,
): ((address: string) => boolean) | undefined {
  const ranges = parsedRanges(policy.blockedTargets ?? []);
  if (policy.allowPrivateTargets && ranges.length === 0) return undefined;
  const inRanges = (address: string) => {
    const parsed = parseAddress(address);
    return (
      parsed !== undefined &&
      ranges.some(([net, bits]) => parsed.kind() === net.kind() && parsed.match(net, bits))
    );
  };
  if (policy.allowPrivateTargets) return inRanges;
  return (address) => isReserved(address) || inRanges(address);
}

/** Each list of ranges parsed once (a batch checks thousands of webhook hosts against one config's). */
const parsedLists = new WeakMap<readonly string[], [ipaddr.IPv4 | ipaddr.IPv6, number][]>();

function parsedRanges(cidrs: readonly string[]): [ipaddr.IPv4 | ipaddr.IPv6, number][] {
  let ranges = parsedLists.get(cidrs);
  if (!ranges) parsedLists.set(cidrs, (ranges = cidrs.map((cidr) => ipaddr.parseCIDR(cidr))));
  return ranges;
}

export function blockedTarget(what: string): ScrapeFailure {
  return new ScrapeFailure(
    'TARGET_BLOCKED',
    `Target ${what} is not allowed: it is a loopback, private, link-local, reserved or blocked address.`,
  );
}

/** Marks a lookup or connect refusal so the scraper can tell it from a network error. */
export const BLOCKED_ERROR_CODE = 'OMNISCRAPE_TARGET_BLOCKED';

/** A refusal by the guard, for the operator's log: the name asked for and the addresses it had. */
export interface GuardRefusal {
  hostname: string;
  addresses: string[];
}

function blockedNetworkError(hostname: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${hostname} resolves only to addresses that are not allowed`);
  err.code = BLOCKED_ERROR_CODE;
  return err;
}

/**
 * Refuses a URL's host before any connection when it is an address literal `isBlocked` refuses, or
 * (with the built-in ranges in force) a localhost name; no `isBlocked` (addressCheck's answer when
 * any address may be reached): nothing is refused. Both answer TARGET_BLOCKED: the client wrote
 * the address itself, so saying so probes nothing.
 */
export function checkHostBeforeConnect(
  hostname: string,
  isBlocked: ((address: string) => boolean) | undefined,
  refuseLocalhostNames = true,
): void {
  if (!isBlocked) return;
  const bare = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  const lower = bare.toLowerCase().replace(/\.$/, '');
  if (refuseLocalhostNames && (lower === 'localhost' || lower.endsWith('.localhost')))
    throw blockedTarget(hostname);
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
 * no second lookup a rebinding DNS server could answer differently. `onRefused` hears of each
 * name refused, for the operator's log (clients are told only that the name did not resolve).
 */
export function guardedLookup(
  isBlocked: (address: string) => boolean = isBlockedAddress,
  onRefused?: (refusal: GuardRefusal) => void,
) {
  return (hostname: string, options: dns.LookupOptions, callback: LookupCallback): void => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const allowed = addresses.filter((a) => !isBlocked(a.address));
      if (allowed.length === 0) {
        onRefused?.({ hostname, addresses: addresses.map((a) => a.address) });
        return callback(blockedNetworkError(hostname), []);
      }
      if (options.all) return callback(null, allowed);
      const first = allowed[0]!;
      callback(null, first.address, first.family);
    });
  };
}
