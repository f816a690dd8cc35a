import { checkHostBeforeConnect, isBlockedAddress } from '../src/scraper/address-guard';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, type TestService } from './helpers/service';

describe('which target addresses are refused by default', () => {
  test.each([
    '127.0.0.1', '127.8.9.10', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1',
    '169.254.169.254', '0.0.0.0', '224.0.0.1', '255.255.255.255', '240.0.0.1',
    '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '::ffff:169.254.169.254',
  ])('%s is blocked', (address) => {
    expect(isBlockedAddress(address)).toBe(true);
  });

  test.each(['93.184.216.34', '8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('%s is allowed', (address) => {
    expect(isBlockedAddress(address)).toBe(false);
  });

  test.each(['localhost', 'LOCALHOST.', 'api.localhost', '127.0.0.1', '[::1]', '[::ffff:7f00:1]'])('host %s is refused before connecting', (host) => {
    expect(() => checkHostBeforeConnect(host)).toThrow(expect.objectContaining({ code: 'TARGET_BLOCKED' }));
  });
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
