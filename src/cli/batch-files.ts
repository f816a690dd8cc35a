import fs from 'node:fs';
import type { Job } from '../client';
import { scrapeRequest } from '../contract/requests';

export interface UrlList {
  /** Each URL once, in the file's order. */
  urls: string[];
  /** Lines naming a URL already listed above them. */
  duplicates: number;
}

/**
 * The URLs of `file` (`-`: stdin), one per line; blank lines and `#` comments are skipped. A line
 * that is not a URL the API would take throws, naming it, before anything is submitted.
 */
export function readUrlList(file: string): UrlList {
  const text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  const seen = new Set<string>();
  const bad: string[] = [];
  let duplicates = 0;
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const checked = scrapeRequest.safeParse({ url: line });
    if (!checked.success) {
      bad.push(`line ${index + 1}: "${line.slice(0, 80)}" ${checked.error.issues[0]!.message}`);
    } else if (seen.has(line)) {
      duplicates++;
    } else {
      seen.add(line);
    }
  });
  if (bad.length > 0) {
    const more = bad.length > 1 ? ` (and ${bad.length - 1} more bad lines)` : '';
    throw new BatchInputError(`${file === '-' ? 'stdin' : file} ${bad[0]}${more}; nothing was submitted`);
  }
  return { urls: [...seen], duplicates };
}

/** The input or output file of a batch is not what it should be; nothing was submitted. */
export class BatchInputError extends Error {}

/**
 * The results already in `out` (a run before this one), by URL; the file is created when missing.
 * A last line cut short (the process was killed while writing it) is removed, so the lines appended
 * after it stay whole (a whole one that only lacks its newline gets it). Any other line that is not a job throws: the file is not this command's.
 */
export function readResults(out: string): Map<string, Job> {
  let text: string;
  try {
    text = fs.readFileSync(out, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  let whole = text.lastIndexOf('\n') + 1;
  if (whole < text.length) {
    if (parseJobLine(text.slice(whole))) {
      fs.appendFileSync(out, '\n');
      text += '\n';
      whole = text.length;
    } else {
      fs.truncateSync(out, Buffer.byteLength(text.slice(0, whole)));
    }
  }
  const results = new Map<string, Job>();
  text
    .slice(0, whole)
    .split('\n')
    .forEach((line, index) => {
      if (line === '') return;
      const job = parseJobLine(line);
      if (!job)
        throw new BatchInputError(`${out} line ${index + 1} is not a job written by omniscrape batch`);
      results.set(job.url, job);
    });
  return results;
}

function parseJobLine(line: string): Job | undefined {
  try {
    const value = JSON.parse(line) as Partial<Job> | null;
    return typeof value?.url === 'string' && typeof value.status === 'string' ? (value as Job) : undefined;
  } catch {
    return undefined;
  }
}
