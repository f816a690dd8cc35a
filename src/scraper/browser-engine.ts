import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core';
import { BROWSER_VIEWPORT } from '../contract/requests';
import { ScrapeFailure } from '../domain-errors';
import type { Logger } from '../logger';
import { addressCheck, checkHostBeforeConnect, type GuardRefusal, type TargetPolicy } from './address-guard';
import { BrowserLost, renderTimedOut, toRenderFailure } from './browser-failures';
import type { BrowserObserver, RenderTrigger } from './browser-observer';
import { chromiumProxyArgs, startBrowserProxy, type BrowserProxy } from './browser-proxy';
import { FairSlots } from './fair-slots';
import { isHtml, renderContent } from './formats';
import type { BudgetHold } from './memory-budget';
import { decodeBody } from './read-body';
import type { ScrapedPage, ScrapeRequest } from './scrape-request';

/** A Chromium that takes longer than this to open a context has hung: it is killed and started again. */
const HANG_MS = 15_000;
/** How long a Chromium with no page to render is kept before it is closed (it starts again on demand). */
const IDLE_CLOSE_MS = 5 * 60_000;
/** How long `close` lets Chromium end on its own before it is killed. */
const CLOSE_GRACE_MS = 5_000;
/** The most JavaScript heap one renderer may take, in MiB. */
export const MAX_PAGE_HEAP_MB = 512;
/** Most bytes of a screenshot (PNG); a larger one fails the scrape with TARGET_TOO_LARGE. */
export const MAX_SCREENSHOT_BYTES = 8 * 1024 * 1024;
/** A `screenshot_full_page` is cut at this height (Chromium's own texture limit is 16,384 px). */
export const MAX_SCREENSHOT_HEIGHT = 16_384;

/**
 * Chromium's switches. All its traffic goes through the in-process SOCKS proxy, loopback included
 * (`<-loopback>` removes Chromium's implicit bypass); the proxy applies the address guard on the
 * address it connects to. What could leave another way is turned off: WebRTC's UDP that does not go
 * through the proxy, QUIC, DNS prefetch, and Chromium's own background traffic.
 */
function chromiumArgs(proxy: BrowserProxy): string[] {
  return [
    ...chromiumProxyArgs(proxy),
    '--disable-quic',
    '--dns-prefetch-disable',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-domain-reliability',
    '--disable-sync',
    '--no-pings',
    '--metrics-recording-only',
    // Containers often give /dev/shm 64 MiB, which Chromium outgrows: its shared memory goes to /tmp.
    '--disable-dev-shm-usage',
    // A page's script heap: a page that wants more crashes its own renderer, not the machine.
    `--js-flags=--max-old-space-size=${MAX_PAGE_HEAP_MB}`,
  ];
}

/** Runs in every frame before the page's scripts: no WebRTC or WebTransport objects to open sockets with. */
const NO_PEER_CONNECTIONS = `for (const name of ['RTCPeerConnection', 'webkitRTCPeerConnection', 'RTCDataChannel', 'WebTransport']) {
  try { Object.defineProperty(globalThis, name, { value: undefined, configurable: false, writable: false }); } catch {}
}`;

export interface BrowserEngineOptions extends TargetPolicy {
  chromiumPath: string;
  /** Chromium's sandbox around its page processes (off only where Chromium refuses it: as root). */
  sandbox: boolean;
  /** Pages rendered at once (OMNISCRAPE_BROWSER_CONCURRENCY); more wait, in turns between keys. */
  concurrency: number;
  /** Cap on a rendered page's content (the HTTP engine's body cap). */
  maxBodyBytes: number;
  /** The built-in refused ranges; tests substitute their own to exercise every check on loopback. */
  isBlockedAddress?: (address: string) => boolean;
  onRefused?: (refusal: GuardRefusal) => void;
  observer?: BrowserObserver;
  logger?: Pick<Logger, 'info' | 'warn'>;
  /** How long opening a context may take before Chromium counts as hung (default HANG_MS). */
  hangMs?: number;
}

/** One render: what may stop it, when it must end, the memory it holds, whose it is, and why it is rendered. */
export interface RenderOptions {
  signal?: AbortSignal;
  /** `performance.now()` by which the render must have ended (the request's `timeout` from its start). */
  deadline: number;
  hold?: BudgetHold;
  owner: string;
  trigger: RenderTrigger;
}

/** A running Chromium: the Browser playwright drives, and its process id (to kill it when it hangs). */
interface LiveBrowser {
  browser: Browser;
  pid: number | undefined;
}

/**
 * Renders pages in headless Chromium (Debian's `chromium`, driven by playwright-core). One Chromium
 * per process, started on the first render and closed after IDLE_CLOSE_MS without one; each render
 * gets a fresh browser context (its own cookies, storage and cache, thrown away after it), so
 * nothing of one job — or one key — reaches another. Chromium that crashes or hangs is started
 * again and the render tried once more; a render is bounded by its request's `timeout`, the body
 * cap and MAX_SCREENSHOT_BYTES.
 */
export class BrowserEngine {
  readonly #slots: FairSlots;

  readonly #isBlocked: ((address: string) => boolean) | undefined;

  #proxy: Promise<BrowserProxy> | undefined;

  #live: Promise<LiveBrowser> | undefined;

  #inFlight = 0;

  #idleTimer: NodeJS.Timeout | undefined;

  #closed = false;

  constructor(private readonly options: BrowserEngineOptions) {
    this.#slots = new FairSlots(options.concurrency);
    this.#isBlocked = addressCheck(options, options.isBlockedAddress);
  }

  /** Pages being rendered now, and renders waiting for a slot. */
  get load(): { rendering: number; waiting: number } {
    return { rendering: this.#slots.inUse, waiting: this.#slots.waiting };
  }

  /** Chromium's process id while one runs (tests kill it to prove a render survives a crash). */
  async chromiumPid(): Promise<number | undefined> {
    return (await this.#live)?.pid;
  }

  /** Renders one page; rejects with a ScrapeFailure, or an Error when Chromium was lost twice. */
  async render(
    req: ScrapeRequest,
    { signal, deadline, hold, owner, trigger }: RenderOptions,
  ): Promise<ScrapedPage> {
    if (this.#closed) throw new Error('the browser engine is closed');
    checkHostBeforeConnect(new URL(req.url).hostname, this.#isBlocked, !this.options.allowPrivateTargets);
    const timeLeft = () => Math.max(1, Math.round(deadline - performance.now()));
    const timeout = AbortSignal.timeout(timeLeft());
    const abort = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const release = await this.#slots.acquire(owner, abort).catch(() => {
      // The target was never asked: say that the time went waiting for the browser.
      throw new ScrapeFailure(
        'TARGET_TIMEOUT',
        timeout.aborted
          ? `No browser slot became free within ${req.timeout} s: this process renders ${this.options.concurrency} pages at once (OMNISCRAPE_BROWSER_CONCURRENCY), and they were all taken.`
          : 'The render was stopped before a browser slot became free.',
      );
    });
    const began = performance.now();
    let ok = false;
    this.#began();
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          const page = await this.#renderOnce(req, abort, timeLeft, hold);
          ok = true;
          return page;
        } catch (err) {
          if (timeout.aborted) {
            throw err instanceof ScrapeFailure && err.code === 'TARGET_TIMEOUT'
              ? err
              : renderTimedOut(req.timeout);
          }
          const failure = toRenderFailure(err, req.timeout);
          if (!(failure instanceof BrowserLost) || abort.aborted) throw failure;
          if (attempt >= 2)
            throw new Error(`Chromium was lost twice while rendering the page: ${failure.message}`, {
              cause: err,
            });
          this.options.logger?.warn(
            { url: req.url, err: failure.message },
            'Chromium was lost during a render; rendering it again',
          );
        }
      }
    } finally {
      release();
      this.#ended();
      this.options.observer?.rendered({ ok, seconds: (performance.now() - began) / 1000, trigger });
    }
  }

  /** Stops rendering: refuses new renders, closes Chromium (killing it if it does not end) and the proxy. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    await this.#closeBrowser();
    const proxy = this.#proxy;
    this.#proxy = undefined;
    if (proxy) await (await proxy.catch(() => undefined))?.close();
  }

  async #renderOnce(
    req: ScrapeRequest,
    abort: AbortSignal,
    timeLeft: () => number,
    hold: BudgetHold | undefined,
  ): Promise<ScrapedPage> {
    const live = await this.#browser();
    const context = await this.#newContext(live, req);
    // Closing the context ends whatever it is doing (navigation, waits, screenshot) at once.
    const stop = () => void context.close().catch(() => undefined);
    abort.addEventListener('abort', stop, { once: true });
    if (abort.aborted) stop(); // it ended while Chromium was starting or the context opening
    try {
      const page = await context.newPage();
      const response = await page.goto(req.url, { waitUntil: 'load', timeout: timeLeft() });
      if (!response)
        throw new ScrapeFailure('TARGET_PROTOCOL_ERROR', 'The browser got no response for the page.');
      await this.#waitFor(page, req, timeLeft);
      const { content, bytes } = await this.#content(page, response, req);
      const screenshot = req.screenshot ? await this.#screenshot(page, req, timeLeft) : undefined;
      // The page is held (as the HTTP engine's body is) until its result is stored.
      await hold?.reserveTo(hold.heldBytes + bytes + (screenshot?.length ?? 0), abort, timeLeft() / 2);
      return {
        content,
        status_code: response.status(),
        headers: await response.allHeaders(),
        final_url: page.url(),
        ...(screenshot && { screenshot }),
      };
    } catch (err) {
      // Whatever the page's calls said, a Chromium that went away is the reason.
      if (!live.browser.isConnected()) throw new BrowserLost('Chromium ended during the render');
      throw err;
    } finally {
      abort.removeEventListener('abort', stop);
      await context.close().catch(() => undefined);
    }
  }

  /** A fresh context for one render; a Chromium that cannot open one within HANG_MS has hung. */
  async #newContext(live: LiveBrowser, req: ScrapeRequest): Promise<BrowserContext> {
    const headers = Object.fromEntries(Object.entries(req.headers).map(([n, v]) => [n.toLowerCase(), v]));
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#killHung(live);
        reject(new BrowserLost('Chromium did not answer'));
      }, this.options.hangMs ?? HANG_MS);
    });
    try {
      const context = await Promise.race([
        live.browser.newContext({
          viewport: BROWSER_VIEWPORT,
          acceptDownloads: false,
          serviceWorkers: 'block',
          ...(headers['user-agent'] && { userAgent: headers['user-agent'] }),
          ...(headers['accept-language'] && {
            extraHTTPHeaders: { 'accept-language': headers['accept-language'] },
          }),
        }),
        hung,
      ]);
      await context.addInitScript(NO_PEER_CONNECTIONS);
      if (headers['cookie']) await context.addCookies(cookiesOf(headers['cookie'], req.url));
      return context;
    } finally {
      clearTimeout(timer);
    }
  }

  async #waitFor(page: Page, req: ScrapeRequest, timeLeft: () => number): Promise<void> {
    if (req.wait_for === undefined) return;
    if (typeof req.wait_for === 'number') return page.waitForTimeout(Math.min(req.wait_for, timeLeft()));
    try {
      await page.waitForSelector(req.wait_for, { state: 'attached', timeout: timeLeft() });
    } catch (err) {
      if (err instanceof Error && err.name === 'TimeoutError')
        throw renderTimedOut(req.timeout, req.wait_for);
      // An invalid selector is the client's input: its message names it.
      if (err instanceof Error && /is not a valid selector|Unexpected token|SyntaxError/i.test(err.message))
        throw new ScrapeFailure(
          'TARGET_PROTOCOL_ERROR',
          `wait_for: ${JSON.stringify(req.wait_for)} is not a valid CSS selector.`,
        );
      throw err;
    }
  }

  /** The rendered DOM of an HTML page (the body as sent for anything else), in the requested format. */
  async #content(
    page: Page,
    response: Response,
    req: ScrapeRequest,
  ): Promise<{ content: string; bytes: number }> {
    const contentType = (await response.headerValue('content-type')) ?? undefined;
    const text = isHtml(contentType, '<html>')
      ? await page.content()
      : decodeBody(await response.body(), contentType);
    const bytes = Buffer.byteLength(text);
    if (bytes > this.options.maxBodyBytes)
      throw new ScrapeFailure(
        'TARGET_TOO_LARGE',
        `The rendered page is larger than ${this.options.maxBodyBytes} bytes.`,
      );
    const content = renderContent(text, contentType ?? 'text/html', req.format);
    return { content, bytes: content === text ? bytes : bytes + Buffer.byteLength(content) };
  }

  async #screenshot(page: Page, req: ScrapeRequest, timeLeft: () => number): Promise<string> {
    const height = req.screenshot_full_page
      ? Math.min(MAX_SCREENSHOT_HEIGHT, Number(await page.evaluate('document.documentElement.scrollHeight')))
      : BROWSER_VIEWPORT.height;
    const png = await page.screenshot({
      type: 'png',
      fullPage: req.screenshot_full_page === true,
      ...(req.screenshot_full_page && { clip: { x: 0, y: 0, width: BROWSER_VIEWPORT.width, height } }),
      timeout: timeLeft(),
    });
    if (png.length > MAX_SCREENSHOT_BYTES)
      throw new ScrapeFailure(
        'TARGET_TOO_LARGE',
        `The screenshot is larger than ${MAX_SCREENSHOT_BYTES} bytes.`,
      );
    return png.toString('base64');
  }

  #browser(): Promise<LiveBrowser> {
    this.#live ??= this.#launch().catch((err: unknown) => {
      this.#live = undefined;
      throw err;
    });
    return this.#live;
  }

  async #launch(): Promise<LiveBrowser> {
    this.#proxy ??= startBrowserProxy({
      allowPrivateTargets: this.options.allowPrivateTargets,
      blockedTargets: this.options.blockedTargets,
      isBlockedAddress: this.options.isBlockedAddress,
      onRefused: this.options.onRefused,
    });
    const proxy = await this.#proxy;
    const browser = await chromium.launch({
      executablePath: this.options.chromiumPath,
      headless: true,
      chromiumSandbox: this.options.sandbox,
      args: chromiumArgs(proxy),
      // The service decides when Chromium ends (close()), not playwright's own signal handlers.
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
    const live: LiveBrowser = { browser, pid: await browserPid(browser) };
    browser.on('disconnected', () => {
      if (!this.#closed) this.#forget(live, 'crashed');
    });
    this.options.logger?.info({ pid: live.pid }, 'Chromium started');
    return live;
  }

  #killHung(live: LiveBrowser): void {
    this.#forget(live, 'hung');
    kill(live.pid);
  }

  /**
   * A Chromium that crashed or hung is no longer the current one (the next render starts another),
   * once: its end and a kill after a hang report one restart between them.
   */
  #forget(live: LiveBrowser, reason: 'crashed' | 'hung'): void {
    void this.#live
      ?.then((current) => {
        if (current !== live) return;
        this.#live = undefined;
        this.options.observer?.restarted(reason);
        this.options.logger?.warn(
          { pid: live.pid, reason },
          reason === 'crashed'
            ? 'Chromium ended unexpectedly; it starts again with the next render'
            : 'Chromium stopped answering; it is killed and starts again with the next render',
        );
      })
      .catch(() => undefined);
  }

  async #closeBrowser(): Promise<void> {
    const live = await this.#live?.catch(() => undefined);
    this.#live = undefined;
    if (!live) return;
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        kill(live.pid);
        resolve();
      }, CLOSE_GRACE_MS);
    });
    await Promise.race([live.browser.close().catch(() => undefined), killed]);
    clearTimeout(timer);
  }

  #began(): void {
    clearTimeout(this.#idleTimer);
    this.options.observer?.pagesInFlight(++this.#inFlight);
  }

  #ended(): void {
    this.options.observer?.pagesInFlight(--this.#inFlight);
    if (this.#inFlight > 0 || this.#closed) return;
    this.#idleTimer = setTimeout(() => {
      if (this.#inFlight === 0) void this.#closeBrowser();
    }, IDLE_CLOSE_MS);
    this.#idleTimer.unref();
  }
}

/** SIGKILL to a Chromium, which may have ended already. */
function kill(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // it has ended already
  }
}

/** Chromium's own process id, from the DevTools protocol. */
async function browserPid(browser: Browser): Promise<number | undefined> {
  const cdp = await browser.newBrowserCDPSession();
  try {
    const { processInfo } = (await cdp.send('SystemInfo.getProcessInfo')) as {
      processInfo: { type: string; id: number }[];
    };
    return processInfo.find((p) => p.type === 'browser')?.id;
  } finally {
    await cdp.detach().catch(() => undefined);
  }
}

/** A Cookie header as cookies of the page's host only (the browser sends them nowhere else). */
function cookiesOf(header: string, url: string): { name: string; value: string; url: string }[] {
  return header
    .split(';')
    .map((pair) => pair.trim())
    .filter((pair) => pair.includes('='))
    .map((pair) => {
      const at = pair.indexOf('=');
      return { name: pair.slice(0, at).trim(), value: pair.slice(at + 1).trim(), url };
    });
}
