// What each backend needs on this machine, checked without loading tfjs or a native library (cheap enough for
// `tempered doctor` and for the worker deciding which queues to poll).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { BackendName } from './index';

export interface BackendProbe {
  name: BackendName;
  /** Whether everything the backend needs is here (it may still fail to start; the picker records why). */
  available: boolean;
  /** What is there (available) or what is missing and how to get it (not available). */
  detail: string;
}

const require = createRequire(import.meta.url);

/** The folder of an installed package, or undefined. */
function packageDir(name: string): string | undefined {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    return undefined;
  }
}

/** The built tfjs-node addon (`lib/napi-v<N>/tfjs_binding.node`) of a package folder, or undefined. */
export function nativeAddon(dir: string): string | undefined {
  const lib = join(dir, 'lib');
  if (!existsSync(lib)) return undefined;
  for (const entry of readdirSync(lib)) {
    const addon = join(lib, entry, 'tfjs_binding.node');
    if (entry.startsWith('napi-v') && existsSync(addon)) return addon;
  }
  return undefined;
}

/** The NVIDIA kernel driver's version line, or undefined when no driver is loaded. */
export function nvidiaDriver(procFile = '/proc/driver/nvidia/version'): string | undefined {
  try {
    const line = readFileSync(procFile, 'utf8').split('\n')[0];
    return /Kernel Module\s+([\d.]+)/.exec(line)?.[1] ?? line.trim();
  } catch {
    return undefined;
  }
}

function nativeProbe(name: 'tensorflow' | 'tensorflow-gpu'): BackendProbe {
  const pkg = name === 'tensorflow' ? '@tensorflow/tfjs-node' : '@tensorflow/tfjs-node-gpu';
  const setup = name === 'tensorflow' ? 'npm run setup:tensorflow' : 'npm run setup:tensorflow -- --gpu';
  const dir = packageDir(pkg);
  if (dir === undefined) return { name, available: false, detail: `${pkg} is not installed (npm ci, then ${setup})` };
  if (nativeAddon(dir) === undefined || !existsSync(join(dir, 'deps', 'lib', 'libtensorflow.so'))) {
    return { name, available: false, detail: `${pkg} is installed but not built: run ${setup}` };
  }
  const marker = join(dir, 'deps', 'lib', 'libtensorflow.so.2.9.1');
  const built = existsSync(marker)
    ? readFileSync(marker, 'utf8')
        .replace(/^marker: /, '')
        .trim()
    : 'built';
  if (name === 'tensorflow-gpu') {
    const driver = nvidiaDriver();
    if (driver === undefined) {
      return { name, available: false, detail: `${pkg} ${built}, but no NVIDIA driver (/proc/driver/nvidia/version)` };
    }
    return { name, available: true, detail: `${pkg} ${built}; NVIDIA driver ${driver}` };
  }
  return { name, available: true, detail: `${pkg} ${built}` };
}

/** Every backend in the picker's order, with whether this machine has what it needs. */
export function probeBackends(): BackendProbe[] {
  const wasm = packageDir('@tensorflow/tfjs-backend-wasm');
  return [
    nativeProbe('tensorflow-gpu'),
    nativeProbe('tensorflow'),
    wasm === undefined
      ? { name: 'wasm', available: false, detail: '@tensorflow/tfjs-backend-wasm is not installed (npm ci)' }
      : { name: 'wasm', available: true, detail: 'tfjs-backend-wasm with the tempered training kernels' },
    { name: 'cpu', available: true, detail: "tfjs's plain JavaScript kernels (slow; last resort)" },
  ];
}

/** The backend the automatic order would pick, from the probe (the first available one). */
export function bestBackend(probes: BackendProbe[] = probeBackends()): BackendName {
  return probes.find((p) => p.available)?.name ?? 'cpu';
}
