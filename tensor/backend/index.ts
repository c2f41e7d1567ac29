import * as tf from '@tensorflow/tfjs';
import { availableParallelism } from 'node:os';
import { probeBackends } from './probe';
import { registerTensorflowKernels } from './tensorflow-kernels';
import { registerWasmTrainingKernels } from './wasm-kernels';

/** tfjs backends tempered can run on, fastest first. */
export const BACKENDS = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];
export type BackendPreference = 'auto' | BackendName;

/** Which backend runs and how it got there; attach it to every result (`backendReport()`). */
export interface BackendReport {
  /** The backend that runs. */
  name: BackendName;
  /** wasm only: whether the SIMD build runs. */
  simd?: boolean;
  /** Threads one tensor op may use (wasm under Node and cpu: 1). */
  threads: number;
  /** Every backend tried, in order, with the error of each that failed. */
  tried: { name: BackendName; error?: string }[];
  /** Why this backend: the automatic order, an argument or TEMPERED_BACKEND. */
  reason?: string;
}

export interface InitBackendOptions {
  /** Where the one line about the chosen backend goes. Default: stderr, so stdout stays machine-readable. */
  log?: (line: string) => void;
}

/** tfjs's registry name for each of ours. */
const TF_NAME: Record<BackendName, string> = {
  'tensorflow-gpu': 'tensorflow',
  tensorflow: 'tensorflow',
  wasm: 'wasm',
  cpu: 'cpu',
};

/** Module specifiers are held in variables so that a missing optional package is a runtime failure only. */
const NODE_PACKAGE: Partial<Record<BackendName, string>> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
};

let pending: Promise<BackendReport> | undefined;
let report: BackendReport | undefined;

function parsePreference(value: string, source: string): BackendPreference {
  if (value === 'auto' || (BACKENDS as readonly string[]).includes(value)) return value as BackendPreference;
  throw new Error(`${source}=${JSON.stringify(value)} is not a backend; use one of auto, ${BACKENDS.join(', ')}`);
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0];

async function activate(name: BackendName): Promise<Omit<BackendReport, 'tried' | 'reason'>> {
  const pkg = NODE_PACKAGE[name];
  if (pkg !== undefined) {
    // Checked before the import: a package that is not built, or a GPU build without a driver, fails with a line
    // saying what to do, and a second libtensorflow never loads next to the first.
    const probe = probeBackends().find((p) => p.name === name);
    if (probe && !probe.available) throw new Error(probe.detail);
    await import(pkg);
  } else if (name === 'wasm') {
    await import('@tensorflow/tfjs-backend-wasm');
    registerWasmTrainingKernels();
  }
  if (!(await tf.setBackend(TF_NAME[name]))) throw new Error(`tf.setBackend('${TF_NAME[name]}') failed to initialise`);
  await tf.ready();
  if (name === 'wasm') {
    const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
    const multithread = Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
    return { name, simd, threads: multithread ? availableParallelism() : 1 };
  }
  if (name === 'tensorflow-gpu') {
    // tfjs-node-gpu falls back to the CPU build of libtensorflow silently when no CUDA device is usable.
    const gpu = (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice;
    if (gpu === false) throw new Error('tfjs-node-gpu loaded but libtensorflow found no GPU device');
  }
  if (name === 'cpu') return { name, threads: 1 };
  registerTensorflowKernels();
  // TensorFlow sizes its intra-op pool from these (default: every core).
  const threads = Number(process.env.TF_NUM_INTRAOP_THREADS) || availableParallelism();
  return { name, threads };
}

async function pick(preference: BackendPreference, reason: string, log: (line: string) => void) {
  const candidates = preference === 'auto' ? BACKENDS : [preference];
  const tried: BackendReport['tried'] = [];
  for (const name of candidates) {
    try {
      const chosen: BackendReport = { ...(await activate(name)), tried: [...tried, { name }], reason };
      const skipped = tried.map((t) => `${t.name}: ${t.error}`).join('; ');
      const simd = chosen.simd === undefined ? '' : chosen.simd ? ', SIMD' : ', no SIMD';
      log(
        `tempered: tfjs backend ${name} (${chosen.threads} thread${chosen.threads === 1 ? '' : 's'}${simd}), ` +
          `${reason}${skipped ? `; skipped ${skipped}` : ''}`,
      );
      return chosen;
    } catch (err) {
      tried.push({ name, error: message(err) });
    }
  }
  const detail = tried.map((t) => `${t.name}: ${t.error}`).join('; ');
  throw new Error(`no tfjs backend could start (${reason}): ${detail}`);
}

/**
 * Picks and starts the tfjs backend: tfjs-node-gpu → tfjs-node → wasm (SIMD) → cpu, each tried by dynamic
 * import with its failure recorded. `preference` (an argument other than 'auto') wins over the
 * TEMPERED_BACKEND environment variable, which wins over the automatic order; a named backend that cannot start
 * is an error, not a fallback. On wasm the training kernels are registered first. Idempotent: later calls
 * return the first call's report whatever they ask for. Call it before any other tensor work.
 */
export function initBackend(
  preference: BackendPreference = 'auto',
  options: InitBackendOptions = {},
): Promise<BackendReport> {
  if (pending) return pending;
  const { log = (line: string) => process.stderr.write(`${line}\n`) } = options;
  const env = process.env.TEMPERED_BACKEND;
  let chosen: BackendPreference;
  let reason: string;
  if (preference !== 'auto') {
    chosen = parsePreference(preference, 'initBackend preference');
    reason = `asked for by the caller`;
  } else if (env !== undefined && env !== '') {
    chosen = parsePreference(env, 'TEMPERED_BACKEND');
    reason = chosen === 'auto' ? 'first that starts (TEMPERED_BACKEND=auto)' : `TEMPERED_BACKEND=${env}`;
  } else {
    chosen = 'auto';
    reason = 'first that starts of tensorflow-gpu, tensorflow, wasm, cpu';
  }
  pending = pick(chosen, reason, log).then(
    (r) => (report = r),
    (err: unknown) => {
      pending = undefined;
      throw err;
    },
  );
  return pending;
}

/** The report of the backend that runs; throws when `initBackend()` has not finished. */
export function backendReport(): BackendReport {
  if (!report) throw new Error('backendReport() before initBackend() finished: await initBackend() first');
  return report;
}
