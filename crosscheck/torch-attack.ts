/**
 * npm run attack:torch -- --model DIR [--images 1000] [--eps 0.1] [--restarts 1] [--threads 1] [--json] [...]
 *   [--backend auto|wasm|cpu|…] [--python /usr/bin/python3] [--no-verify]
 *
 * The independent robustness check: writes the tfjs logits of the first N test images (crosscheck/tfjs-logits.ts, on
 * the chosen tfjs backend) to a temporary file, then runs crosscheck/torch_attack.py, which rebuilds the model in PyTorch,
 * checks it reproduces those logits (--verify) and attacks it (FGSM, PGD-20/100 cross-entropy, PGD-100 CW margin).
 * Every argument but --backend, --python and --no-verify goes to the Python script (see its --help). The exit code
 * is the script's: 3 when torch cannot be imported, 4 when the logits do not match.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { initBackend } from '../tensor/backend';
import type { BackendPreference } from '../tensor/backend';
import { FASHION_MNIST_DIR } from '../tensor/data';
import { tfjsLogits } from './tfjs-logits';

/** Debian's interpreter, where python3-torch installs torch; TEMPERED_TORCH_PYTHON overrides it. */
export const DEFAULT_PYTHON = process.env.TEMPERED_TORCH_PYTHON || '/usr/bin/python3';

export const TORCH_ATTACK_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'torch_attack.py');

export interface TorchAttackArgs {
  /** the model folder (--model), required */
  model: string;
  /** first N test images (--images); default 1000, as in the Python script */
  images: number;
  /** the IDX folder (--data-dir); default Debian's Fashion-MNIST */
  dataDir: string;
  /** tfjs backend of the logits to verify against (--backend); default auto */
  backend: BackendPreference;
  /** interpreter with torch (--python); default {@link DEFAULT_PYTHON} */
  python: string;
  /** false with --no-verify: attack without checking the conversion first */
  verify: boolean;
  /** the arguments for crosscheck/torch_attack.py (all but --backend, --python, --no-verify) */
  forward: string[];
}

/** Splits the wrapper's arguments from the Python script's; throws when --model is missing or a value is bad. */
export function parseTorchAttackArgs(argv: string[]): TorchAttackArgs {
  const own = new Set(['--backend', '--python']);
  const read = new Set(['--model', '--images', '--data-dir']);
  const seen: Record<string, string> = {};
  const forward: string[] = [];
  let verify = true;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--no-verify') {
      verify = false;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (!own.has(flag) && !read.has(flag)) {
      forward.push(arg);
      continue;
    }
    let value: string | undefined;
    if (flag !== arg) {
      value = arg.slice(eq + 1);
    } else {
      value = argv[i + 1];
      if (value === undefined) throw new Error(`${flag} needs a value`);
      i++;
    }
    seen[flag] = value;
    if (read.has(flag)) forward.push(flag, value);
  }
  const model = seen['--model'];
  if (!model) throw new Error('--model DIR is required');
  const images = seen['--images'] === undefined ? 1000 : Number(seen['--images']);
  if (!Number.isInteger(images) || images < 1)
    throw new Error(`--images must be an integer ≥ 1, got ${seen['--images']}`);
  return {
    model,
    images,
    dataDir: seen['--data-dir'] ?? FASHION_MNIST_DIR,
    backend: (seen['--backend'] as BackendPreference | undefined) ?? 'auto',
    python: seen['--python'] ?? DEFAULT_PYTHON,
    verify,
    forward,
  };
}

/** Why torch cannot be used from `python` (the first line of its error), or undefined when it imports. */
export function torchUnavailable(python: string = DEFAULT_PYTHON): string | undefined {
  const r = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return `${python} does not run: ${r.error.message}`;
  if (r.status === 0) return undefined;
  const lines = r.stderr.trim().split('\n');
  return `torch does not import in ${python}: ${lines[lines.length - 1] ?? `exit ${r.status}`}`;
}

async function main(argv: string[]): Promise<void> {
  let a: TorchAttackArgs;
  try {
    a = parseTorchAttackArgs(argv);
  } catch (err) {
    process.stderr.write(
      `${(err as Error).message}\nusage: npm run attack:torch -- --model DIR [--images N] [--eps E] [--restarts R] ` +
        '[--threads T] [--json] [--backend auto|wasm|cpu|…] [--python PATH] [--no-verify]\n',
    );
    process.exitCode = 2;
    return;
  }
  const scratch = await mkdtemp(join(tmpdir(), 'tempered-torch-attack-'));
  try {
    const args = [TORCH_ATTACK_SCRIPT, ...a.forward];
    if (a.verify) {
      await initBackend(a.backend);
      const logits = await tfjsLogits({ model: a.model, images: a.images, dataDir: a.dataDir });
      const file = join(scratch, 'tfjs-logits.json');
      await writeFile(file, JSON.stringify(logits));
      process.stderr.write(`tfjs logits of ${logits.images} images (${logits.backend}) → ${file}\n`);
      args.push('--verify', file);
    }
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn(a.python, args, { stdio: 'inherit' });
      child.on('error', reject);
      child.on('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0)));
    });
    if (code === 3) process.stderr.write(`install Debian's python3-torch, or name an interpreter with --python\n`);
    process.exitCode = code;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
