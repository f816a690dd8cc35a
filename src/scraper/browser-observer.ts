/** What the browser engine tells the metrics (metrics/service-metrics.ts implements it). */
export interface BrowserObserver {
  /**
   * A render ended: whether it produced a page, how long it took (slot wait excluded), and why the
   * browser was used (`requested`: js_rendering or mode "browser"; `auto`: mode "auto" found a shell).
   */
  rendered(end: { ok: boolean; seconds: number; trigger: RenderTrigger }): void;
  /** Chromium was started again after it crashed (its process ended) or hung (stopped answering). */
  restarted(reason: 'crashed' | 'hung'): void;
  /** Pages this process is rendering now. */
  pagesInFlight(count: number): void;
}

export type RenderTrigger = 'requested' | 'auto';
