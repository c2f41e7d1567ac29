// Worker processes for pipeline tests: the real entry point (worker/main.ts) as a child process, so a test can
// SIGKILL it mid-training the way a crash would.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../infra/config';

export interface WorkerProcess {
  child: ChildProcess;
  output: () => string;
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface SpawnWorkerOptions {
  queues: { io: string; heavy: string };
  /** Which queue this process polls; default both. */
  only?: 'io' | 'heavy';
  cacheDir?: string;
  env?: Record<string, string>;
}

/** Starts `tsx worker/main.ts` and resolves once it polls its queues. */
export async function spawnWorker(o: SpawnWorkerOptions): Promise<WorkerProcess> {
  const args = ['--import', 'tsx', join(REPO_ROOT, 'worker', 'main.ts'), ...(o.only ? ['--queue', o.only] : [])];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      TEMPERED_IO_QUEUE: o.queues.io,
      TEMPERED_HEAVY_QUEUE: o.queues.heavy,
      TEMPERED_METRICS_PORT: '0',
      TEMPERED_SDK_METRICS: '',
      TEMPERED_CACHE_DIR: o.cacheDir ?? mkdtempSync(join(tmpdir(), 'tempered-cache-')),
      ...o.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start polling within 120 s:\n${out}`)), 120_000);
    const check = () => {
      if (out.includes('worker: polling')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code} before polling:\n${out}`));
    });
  });
  return {
    child,
    output: () => out,
    exited,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
