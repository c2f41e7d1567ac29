import { Worker } from 'node:worker_threads';

/**
 * Starts the TypeScript module `entry` in a worker thread under tsx. Loader hooks registered with `--import tsx`
 * do not reach worker threads on Node 20, so the thread's entry is a two-line ES module that registers tsx first.
 */
export function spawnTsWorker(entry: URL, workerData: unknown): Worker {
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry.href)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`), {
    workerData,
    execArgv: workerExecArgv(process.execArgv),
  });
}

/**
 * The process's Node flags less its preloads (`--import`, `--require`, loaders): a worker inherits them, and a
 * TypeScript preload fails there before the thread has registered tsx. The worker sets up its own backend.
 */
export function workerExecArgv(execArgv: readonly string[]): string[] {
  const preload = /^(--import|--require|-r|--loader|--experimental-loader)$/;
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i];
    if (preload.test(a)) i++;
    else if (!preload.test(a.split('=')[0])) out.push(a);
  }
  return out;
}
