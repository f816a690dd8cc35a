import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium (package `chromium`), installed by scripts/chromium.sh; playwright-core brings no browser of its own. */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless Chromium, driven by playwright-core. */
export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`Debian's chromium is not installed: run sh scripts/chromium.sh (as root)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Chromium's sandbox refuses to run as root (as the tests and CI do here): --no-sandbox.
    chromiumSandbox: false,
  });
}
