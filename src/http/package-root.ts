import fs from 'node:fs';
import path from 'node:path';

/** The checkout's or the installed package's root (package.json): static/ sits there, beside src/ and dist/. */
export function packageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}
