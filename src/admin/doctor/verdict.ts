/**
 * One line of `omniscrape doctor`: a check, and what it found. `fail`: the service would break
 * (the command exits non-zero); `warn`: it runs, but something may go wrong under load or at scale;
 * the message then says what to do.
 */
export interface Verdict {
  level: 'ok' | 'warn' | 'fail';
  check: string;
  message: string;
}

export const ok = (check: string, message: string): Verdict => ({ level: 'ok', check, message });
export const warn = (check: string, message: string): Verdict => ({ level: 'warn', check, message });
export const fail = (check: string, message: string): Verdict => ({ level: 'fail', check, message });

/** `ok   postgres version: 18.4: supported`, the level padded so the checks line up. */
export const formatVerdict = (v: Verdict): string => `${v.level.padEnd(4)} ${v.check}: ${v.message}`;
