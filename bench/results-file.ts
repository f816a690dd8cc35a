import fs from 'node:fs';
import path from 'node:path';

/** Writes a benchmark's result as `bench/results/<name>.json`; returns the path, relative to the working directory. */
export function writeResult(name: string, result: unknown): string {
  const out = path.resolve(__dirname, '../../bench/results', `${name}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  return path.relative(process.cwd(), out);
}

/** Runs a benchmark's `main` as the process's command: exit 0 when it ends, 1 with its stack when it fails. */
export function runAsCommand(tag: string, main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`[${tag}] failed: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
