/**
 * The OMNISCRAPE_SECRETS_KEY every service and CLI a test starts has (startTestService, runCli,
 * spawnCli), as a deployment has one: a test of a service without one sets it to ''.
 */
export const TEST_SECRETS_KEY = Buffer.alloc(32, 7).toString('base64');
