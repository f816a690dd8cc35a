import fs from 'node:fs';
import readline from 'node:readline';
import type { Job } from '../client';
import { scrapeRequest } from '../contract/requests';
import { count } from './common';

export interface UrlList {
  /** Each URL once, in the file's order. */
  urls: string[];
  /** Lines naming a URL already listed above them. */
  duplicates: number;
}

/**
 * The URLs of `file` (`-`: stdin), one per line, read line by line; blank lines and `#` comments
 * are skipped. A line that is not a URL the API would take throws, naming it, before anything is
 * submitted.
 */
export async function readUrlList(file: string): Promise<UrlList> {
  const input = file === '-' ? process.stdin : fs.createReadStream(file);
  const seen = new Set<string>();
  const bad: string[] = [];
  let duplicates = 0;
  let number = 0;
  for await (const raw of readline.createInterface({ input, crlfDelay: Infinity })) {
    number++;
    const line = raw.replace(/^\uFEFF/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const checked = scrapeRequest.safeParse({ url: line });
    if (!checked.success) {
      bad.push(`line ${number}: "${line.slice(0, 80)}" ${checked.error.issues[0]!.message}`);
    } else if (seen.has(line)) {
      duplicates++;
    } else {
      seen.add(line);
    }
  }
  if (bad.length > 0) {
    const more = bad.length > 1 ? ` (and ${count(bad.length - 1, 'more bad line')})` : '';
    throw new BatchInputError(`${file === '-' ? 'stdin' : file} ${bad[0]}${more}; nothing was submitted`);
  }
  return { urls: [...seen], duplicates };
}

/** The input or output file of a batch is not what it should be; nothing was submitted. */
export class BatchInputError extends Error {}

/** What the summary needs of a job written to the output (not its content, which can be large). */
export interface Outcome {
  status: Job['status'];
  code?: string;
  /** The target's HTTP status, for a completed job whose result was written. */
  httpStatus?: number;
}

export const outcomeOf = (job: Job): Outcome => ({
  status: job.status,
  code: job.code,
  httpStatus: job.result?.data.status_code,
});

/**
 * The outcomes already in `out` (a run before this one), by URL, read line by line (the file may
 * be larger than memory). A last line cut short (the process was killed while writing it) is
 * removed, so the lines appended after it stay whole; a whole one that only lacks its newline gets
 * it. Any other line that is not a job throws: the file is not this command's.
 */
export async function readResults(out: string): Promise<Map<string, Outcome>> {
  let size: number;
  try {
    size = fs.statSync(out).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  const results = new Map<string, Outcome>();
  const lines = readline.createInterface({ input: fs.createReadStream(out), crlfDelay: Infinity });
  let offset = 0;
  let number = 0;
  for await (const line of lines) {
    number++;
    const end = offset + Buffer.byteLength(line) + 1;
    const job = parseJobLine(line);
    if (end > size && !job && line.startsWith(JOB_LINE_START)) {
      // The last line, cut short while it was written: the next line is appended in its place.
      fs.truncateSync(out, offset);
    } else if (end > size && job) {
      // A whole last line without its newline (written by hand?): the next line goes after it.
      fs.appendFileSync(out, '\n');
    } else if (!job && line !== '') {
      lines.close();
      throw new BatchInputError(`${out} line ${number} is not a job written by omniscrape batch`);
    }
    if (job) results.set(job.url, outcomeOf(job));
    offset = end;
  }
  return results;
}
/** How every line `batch` writes starts (the job's first field). */
const JOB_LINE_START = '{"job_id":"';

function parseJobLine(line: string): Job | undefined {
  try {
    const value = JSON.parse(line) as Partial<Job> | null;
    return typeof value?.url === 'string' && typeof value.status === 'string' ? (value as Job) : undefined;
  } catch {
    return undefined;
  }
}
