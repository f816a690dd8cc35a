import { Writable } from 'node:stream';
import pino from 'pino';
import type { Logger } from '../../src/logger';

/** A logger whose lines (parsed JSON) a test can read; warnings and worse by default. */
export function capturingLogger(level: pino.Level = 'warn'): { logger: Logger; lines: any[] } {
  const lines: any[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: pino({ level }, sink), lines };
}
