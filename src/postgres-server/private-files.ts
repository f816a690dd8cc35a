import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { StartupFailure } from '../startup-failure';

// Small file helpers of the server runner: its password and state files are its own, written whole.

/** Writes a file only its owner can read, whole or not at all (written beside it, then renamed). */
export function writePrivateFile(file: string, content: string): void {
  const staging = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    fs.writeFileSync(staging, content, { mode: 0o600 });
    fs.renameSync(staging, file);
  } catch (err) {
    fs.rmSync(staging, { force: true });
    throw new StartupFailure(
      `cannot write ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      'NOT_WRITABLE',
      { cause: err },
    );
  }
}

/** A file's text, or undefined when it cannot be read. */
export function readOrUndefined(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined; // missing (or gone meanwhile): the callers treat that as "no such file"
  }
}
