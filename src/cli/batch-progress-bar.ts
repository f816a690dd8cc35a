import cliProgress from 'cli-progress';
import type { ScrapeManyProgress } from '../client';

/** How far `omniscrape batch` is, shown on stderr while it runs. */
export interface ProgressView {
  update(progress: ScrapeManyProgress): void;
  /** Ends the display (a last plain line when not on a terminal); later updates are ignored. */
  stop(): void;
}

export interface ProgressOptions {
  total: number;
  stream: NodeJS.WriteStream;
  /** A live bar when true; else a plain line every `everyMs`. */
  tty: boolean;
  everyMs: number;
  now?: () => number;
}

/** `42s`, `3m05s`, `1h02m`. */
export function duration(totalSeconds: number): string {
  const s = Math.max(0, Math.round(totalSeconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

interface Figures {
  done: number;
  failed: number;
  /** Jobs ended per second since the start. */
  rate: string;
  eta: string;
}

function figures(progress: ScrapeManyProgress, startedAt: number, now: number): Figures {
  const elapsed = (now - startedAt) / 1000;
  const rate = elapsed > 0 ? progress.done / elapsed : 0;
  const left = progress.total - progress.done;
  const eta = left === 0 ? '0s' : rate > 0 ? duration(left / rate) : '?';
  return { done: progress.done, failed: progress.failed, rate: rate.toFixed(1), eta };
}

/** The plain line: the same figures as the bar, for logs and pipes. */
export function progressLine(total: number, f: Figures): string {
  return `omniscrape batch: ${f.done}/${total} done, ${f.failed} failed, ${f.rate}/s, ETA ${f.eta}\n`;
}

export function startProgress(options: ProgressOptions): ProgressView {
  const now = options.now ?? Date.now;
  const startedAt = now();
  let latest: ScrapeManyProgress = { total: options.total, done: 0, failed: 0 };
  let stopped = false;

  if (options.tty) {
    const bar = new cliProgress.SingleBar(
      {
        stream: options.stream,
        format: '{bar} {value}/{total} done | {failed} failed | {rate}/s | ETA {left}',
        barsize: 30,
        hideCursor: true,
        fps: 10,
      },
      cliProgress.Presets.shades_classic,
    );
    const payload = () => {
      const { rate, eta: left, failed } = figures(latest, startedAt, now());
      return { rate, left, failed };
    };
    bar.start(options.total, 0, payload());
    // The rate and ETA move with time too, not only when a job ends.
    const ticker = setInterval(() => bar.update(latest.done, payload()), 1000).unref();
    return {
      update(progress) {
        if (stopped) return;
        latest = progress;
        bar.update(progress.done, payload());
      },
      stop() {
        if (stopped) return;
        stopped = true;
        clearInterval(ticker);
        bar.update(latest.done, payload());
        bar.stop();
      },
    };
  }

  const write = () => options.stream.write(progressLine(options.total, figures(latest, startedAt, now())));
  const timer = setInterval(write, options.everyMs).unref();
  return {
    update(progress) {
      if (!stopped) latest = progress;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      write();
    },
  };
}
