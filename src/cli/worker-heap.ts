import v8 from 'node:v8';

/**
 * How far a worker process's old space may grow past its live objects before V8 collects it, in
 * percent (V8's own factor lets it grow up to 4×). A scrape waiting on a slow target lives for
 * seconds, so its objects (request, socket, signals, records) outlive the young generation's
 * collections and die in the old space: at thousands in flight, old space fills with them faster
 * than the default factor collects, and a worker's RSS passes twice its live heap. The more
 * frequent full collections cost CPU per job (docs/performance.md, "Slow targets").
 */
export const WORKER_HEAP_GROWING_PERCENT = 30;

/**
 * The worker concurrency from which the bound applies: below it, scrapes in flight hold too little
 * for the default growth to matter, and the extra collections would be CPU for nothing.
 */
export const HEAP_BOUND_FROM_CONCURRENCY = 1_000;

/**
 * Applies WORKER_HEAP_GROWING_PERCENT to this process when it runs `workerConcurrency` scrapes at
 * once, HEAP_BOUND_FROM_CONCURRENCY or more, unless it was started with a `--heap-growing-percent`
 * of its own (node's flags or NODE_OPTIONS): the operator's choice stands. Says whether it did.
 */
export function boundWorkerHeapGrowth(
  workerConcurrency: number,
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
): boolean {
  if (workerConcurrency < HEAP_BOUND_FROM_CONCURRENCY) return false;
  if (/--heap[-_]growing[-_]percent/.test(`${execArgv.join(' ')} ${nodeOptions}`)) return false;
  v8.setFlagsFromString(`--heap-growing-percent=${WORKER_HEAP_GROWING_PERCENT}`);
  return true;
}
