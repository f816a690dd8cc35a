import { checkHostBeforeConnect, isBlockedAddress } from '../src/scraper/address-guard';
import { Scraper } from '../src/scraper/scraper';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, type TestService } from './helpers/service';
import { fakeDns, PUBLIC_AND_PRIVATE_NAMES } from './helpers/fake-dns';

describe('which target addresses are refused by default', () => {
  test.each([
    '127.0.0.1',
    '127.8.9.10',
    '10.0.0.1',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '100.64.0.1',
    '169.254.169.254',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '240.0.0.1',
    '::1',
    '::',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '::ffff:169.254.169.254',
    // Cloud metadata and platform endpoints.
    '168.63.129.16',
    '::ffff:168.63.129.16',
    '169.254.170.2',
    '100.100.100.200',
    'fd00:ec2::254',
    '192.0.0.192',
  ])('%s is blocked', (address) => {
    expect(isBlockedAddress(address)).toBe(true);
  });

  test.each([
    '93.184.216.34',
    '8.8.8.8',
    '1.1.1.1',
    '168.63.129.17',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
  ])('%s is allowed', (address) => {
    expect(isBlockedAddress(address)).toBe(false);
  });

  test.each(['localhost', 'LOCALHOST.', 'api.localhost', '127.0.0.1', '[::1]', '[::ffff:7f00:1]'])(
    'host %s is refused before connecting',
    (host) => {
      expect(() => checkHostBeforeConnect(host, isBlockedAddress)).toThrow(
        expect.objectContaining({ code: 'TARGET_BLOCKED' }),
      );
    },
  );
});

describe('the default gateway refuses private targets', () => {
  let service: TestService;
  let target: TargetServer;
  beforeAll(async () => {
    target = await startTargetServer();
    service = await startTestService({ env: { OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'false' } });
  });
  afterAll(async () => {
    await service?.stop();
    await target?.close();
  });

  test.each([
    (port: string) => `http://127.0.0.1:${port}/page`,
    (port: string) => `http://localhost:${port}/page`,
    (port: string) => `http://0x7f.0.0.1:${port}/page`,
    (port: string) => `http://2130706433:${port}/page`,
    (port: string) => `http://0177.0.0.1:${port}/page`,
    (port: string) => `http://[::ffff:127.0.0.1]:${port}/page`,
  ])('%p answers 502 TARGET_BLOCKED and the target sees no request', async (urlFor) => {
    const port = new URL(target.origin).port;
    const res = await service.call('POST', '/v1/scrape', { url: urlFor(port) });
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ success: false, code: 'TARGET_BLOCKED', billing: { charged: 0 } });
    expect(target.hits.get('/page') ?? 0).toBe(0);
  });
});

describe('the address guard on names, redirect hops and connections', () => {
  // Loopback stands in for the internet here: 127.0.0.1 plays a public address and 127.0.0.2 a
  // private one, so every check runs for real without leaving the machine.
  const policy = (address: string) => address !== '127.0.0.1';
  let publicTarget: TargetServer;
  let privateTarget: TargetServer;
  let scraper: Scraper;
  const request = (url: string) => ({
    url,
    method: 'GET' as const,
    headers: {},
    timeout: 5,
    follow_redirects: true,
    format: 'raw' as const,
    mode: 'auto' as const,
  });

  beforeAll(async () => {
    privateTarget = await startTargetServer({}, '127.0.0.2');
    publicTarget = await startTargetServer();
    scraper = new Scraper({
      allowPrivateTargets: false,
      maxBodyBytes: 1024 * 1024,
      isBlockedAddress: policy,
    });
    // A resolver that knows two names: one public, one private (as a rebinding attacker would serve).
    fakeDns(PUBLIC_AND_PRIVATE_NAMES);
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await scraper?.close();
    await publicTarget?.close();
    await privateTarget?.close();
  });

  test('a name that resolves to a public address is scraped', async () => {
    const page = await scraper.scrape(
      request(`http://public.test:${new URL(publicTarget.origin).port}/plain`),
    );
    expect(page.content).toBe('just text');
  });

  test('a name that resolves only to a private address is refused without connecting, in the words of a name that does not resolve', async () => {
    const port = new URL(privateTarget.origin).port;
    const refused = scraper.scrape(request(`http://private.test:${port}/page`));
    await expect(refused).rejects.toMatchObject({
      code: 'TARGET_UNREACHABLE',
      message:
        'The target could not be reached: its host name did not resolve to an address that can be connected to.',
    });
    expect(privateTarget.hits.size).toBe(0);
  });

  test.each([
    ['an address', 'TARGET_BLOCKED', () => `${privateTarget.origin}/page`],
    ['a name', 'TARGET_UNREACHABLE', () => `http://private.test:${new URL(privateTarget.origin).port}/page`],
  ])('a redirect hop to %s that is private is refused (%s)', async (_what, code, location) => {
    const url = `${publicTarget.origin}/redirect?to=${encodeURIComponent(location())}`;
    await expect(scraper.scrape(request(url))).rejects.toMatchObject({ code });
    expect(publicTarget.hits.get('/redirect')).toBeGreaterThan(0);
    expect(privateTarget.hits.size).toBe(0);
  });

  test('IPv4-compatible IPv6 addresses (::a.b.c.d) are refused too', () => {
    expect(isBlockedAddress('::7f00:1')).toBe(true);
    expect(isBlockedAddress('::a00:1')).toBe(true);
  });
});
