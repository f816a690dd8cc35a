import fs from 'node:fs';
import { Option, type Command } from 'commander';
import { screenshotPng, type AsyncScrapeRequest, type ScrapeResult } from '../client';
import { fail, fileProblem } from './common';

export const MODES = ['auto', 'http', 'browser'] as const;

/** The rendering flags as commander parses them; the API checks how they go together. */
export interface RenderOptions {
  render?: boolean;
  mode?: (typeof MODES)[number];
  waitFor?: string | number;
  /** The file the PNG is written to (`screenshot: true`). */
  screenshot?: string;
  fullPage?: boolean;
}

/** `--wait-for`: all digits is a number of milliseconds, anything else a CSS selector. */
export const waitForValue = (value: string): string | number => (/^\d+$/.test(value) ? Number(value) : value);

/** Adds `--render`, `--mode`, `--wait-for` and, with `screenshot`, `--screenshot FILE` and `--full-page`. */
export function addRenderOptions(command: Command, { screenshot }: { screenshot: boolean }): Command {
  command
    .option('--render', 'render the page in headless Chromium (js_rendering: true)')
    .addOption(
      new Option(
        '--mode <mode>',
        'the engine (the API default: auto): http never renders, browser always does, auto renders a page that looks built by script',
      ).choices(MODES),
    )
    .addOption(
      new Option(
        '--wait-for <selector|ms>',
        'with rendering: after load, wait for this CSS selector, or this many milliseconds (all digits)',
      ).argParser(waitForValue),
    );
  if (screenshot)
    command
      .option('--screenshot <file>', 'with rendering: write a PNG of the rendered page to this file')
      .option('--full-page', 'with --screenshot: the whole page, not the viewport');
  return command;
}

/** The request fields the flags ask for; none when no flag is given, so the API's defaults apply. */
export function renderFieldsOf(options: RenderOptions): Partial<AsyncScrapeRequest> {
  return {
    ...(options.render ? { js_rendering: true } : {}),
    ...(options.mode ? { mode: options.mode } : {}),
    ...(options.waitFor !== undefined ? { wait_for: options.waitFor } : {}),
    ...(options.screenshot !== undefined ? { screenshot: true } : {}),
    ...(options.fullPage ? { screenshot_full_page: true } : {}),
  };
}

/** Writes the result's screenshot to `file`; a result without one, or a file not written, ends with one line. */
export function writeScreenshot(result: ScrapeResult | undefined, file: string): void {
  const png = screenshotPng(result);
  if (png === undefined) return fail(`the answer has no screenshot; nothing was written to ${file}`);
  try {
    fs.writeFileSync(file, png);
  } catch (err) {
    fail(`--screenshot ${fileProblem(err, file) ?? (err as Error).message}`);
  }
}
