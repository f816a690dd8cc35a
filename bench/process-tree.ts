import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

/**
 * The memory and CPU time of a process and everything it started (a worker and its Chromium: the
 * browser, its zygotes, GPU, network and renderer processes are all descendants of the Node
 * process), read from /proc. RSS added up counts pages the processes share (Chromium's code, shared
 * memory) once per process, so it overstates; PSS shares each page out between the processes that
 * map it, so its sum is what the tree costs the machine.
 */

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ: 100 on Linux's common builds). */
const TICKS_PER_SECOND = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** The fields of /proc/<pid>/stat after its command name (the first is the state), or undefined once it is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** `pid`'s parent pid, or undefined once it is gone. */
export function parentOf(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields && Number(fields[1]);
}

/** CPU seconds `pid` itself has used (utime, stime: fields 14 and 15 of stat); 0 once it is gone. */
export function processCpuSeconds(pid: number): number {
  const fields = statFields(pid);
  return fields ? (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND : 0;
}

/** `pid`'s own CPU seconds split into user and system time (system: mostly its socket calls); 0 once it is gone. */
export function processCpuSplit(pid: number): { user: number; system: number } {
  const fields = statFields(pid);
  return fields
    ? { user: Number(fields[11]) / TICKS_PER_SECOND, system: Number(fields[12]) / TICKS_PER_SECOND }
    : { user: 0, system: 0 };
}

/**
 * CPU seconds `root`'s tree has used: each running process's own (utime, stime) and that of its
 * children that ended and were waited for (cutime, cstime), so a renderer that ended is still
 * counted, through the zygote that started it.
 */
export function treeCpuSeconds(root: number): number {
  let ticks = 0;
  for (const pid of processTree(root)) {
    // utime, stime, cutime, cstime: fields 14–17 of stat, 11–14 after the command name.
    const fields = statFields(pid);
    if (fields) ticks += fields.slice(11, 15).reduce((sum, f) => sum + Number(f), 0);
  }
  return ticks / TICKS_PER_SECOND;
}

/** `root` and all its descendants that are running now. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const parent = parentOf(pid);
    if (parent === undefined) continue;
    children.set(parent, [...(children.get(parent) ?? []), pid]);
  }
  const tree: number[] = [];
  const next = [root];
  while (next.length > 0) {
    const pid = next.pop()!;
    tree.push(pid);
    next.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** A `kB` field of a /proc file (`VmRSS:` of status, `Pss:` of smaps_rollup) in bytes; 0 once the process is gone. */
function kbField(file: string, field: string): number {
  try {
    const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(file, 'utf8'))?.[1];
    return kb === undefined ? 0 : Number(kb) * 1024;
  } catch {
    return 0;
  }
}

export interface TreeMemory {
  processes: number;
  rssBytes: number;
  pssBytes: number;
}

/** RSS and PSS of `root` and its descendants, each added up. */
export function treeMemory(root: number): TreeMemory {
  const pids = processTree(root);
  let rssBytes = 0;
  let pssBytes = 0;
  for (const pid of pids) {
    rssBytes += kbField(`/proc/${pid}/status`, 'VmRSS');
    pssBytes += kbField(`/proc/${pid}/smaps_rollup`, 'Pss');
  }
  return { processes: pids.length, rssBytes, pssBytes };
}

export interface TreeMemorySummary {
  samples: number;
  peakRssMb: number;
  meanRssMb: number;
  peakPssMb: number;
  /** The most processes seen in the tree at once. */
  peakProcesses: number;
}

/** Samples `root`'s tree every `everyMs` until `stop()`, which answers the peaks and the mean. */
export function sampleTreeMemory(root: number, everyMs = 250): { stop(): TreeMemorySummary } {
  const samples: TreeMemory[] = [];
  const sample = () => samples.push(treeMemory(root));
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const mb = (bytes: number) => bytes / 2 ** 20;
      return {
        samples: samples.length,
        peakRssMb: mb(Math.max(...samples.map((s) => s.rssBytes))),
        meanRssMb: mb(samples.reduce((sum, s) => sum + s.rssBytes, 0) / samples.length),
        peakPssMb: mb(Math.max(...samples.map((s) => s.pssBytes))),
        peakProcesses: Math.max(...samples.map((s) => s.processes)),
      };
    },
  };
}
