import dns from 'node:dns';

/** What a fake name resolves to: an address, or the word `missing` (ENOTFOUND) or `hanging` (no answer, ever). */
export type FakeAnswer = string;

/**
 * Makes `dns.lookup` (what the address guard resolves names through) answer the given names as
 * told, and every other name as the real resolver does: a name that resolves to a private address,
 * as a rebinding attacker would serve one, without a DNS server. Undone by `jest.restoreAllMocks()`.
 */
export function fakeDns(names: Record<string, FakeAnswer>): void {
  const realLookup = dns.lookup;
  jest.spyOn(dns, 'lookup').mockImplementation(((hostname: string, options: any, callback: any) => {
    if (typeof options === 'function') [options, callback] = [{}, options];
    const answer = names[hostname];
    if (answer === undefined) return (realLookup as any)(hostname, options, callback);
    if (answer === 'hanging') return;
    if (answer === 'missing') {
      const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
      err.code = 'ENOTFOUND';
      return callback(err);
    }
    const family = answer.includes(':') ? 6 : 4;
    return options.all ? callback(null, [{ address: answer, family }]) : callback(null, answer, family);
  }) as any);
}

/** The two names of the guard tests: loopback's 127.0.0.1 plays a public address, 127.0.0.2 a private one. */
export const PUBLIC_AND_PRIVATE_NAMES = { 'public.test': '127.0.0.1', 'private.test': '127.0.0.2' };
