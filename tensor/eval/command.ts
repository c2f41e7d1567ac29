import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import type * as tf from '@tensorflow/tfjs';
import { backendReport, initBackend } from '../backend';
import type { BackendPreference } from '../backend';
import type { Norm } from '../attacks/options';
import { FASHION_MNIST_DIR, loadDataset, loadFashionMnist, subset } from '../data';
import type { DatasetFormat } from '../data';
import { loadModel } from '../models';
import { reduceSuite, ROBUST } from './reduce';
import type { SuiteResult } from './reduce';
import { sanityPanel } from './sanity';
import type { SanityFlag } from './sanity';
import { runSuiteShard, suiteAttacks } from './suite';

/**
 * `npm run evaluate`: a saved layers model under a named attack suite on the first N test images, with the sanity
 * panel. The command file only prints; everything it does is here.
 */
export interface EvaluateCommand {
  model: string;
  suite: 'standard' | 'plus' | 'fast';
  norm: Norm;
  eps: number;
  images: number;
  batchSize: number;
  seed: number;
  json: boolean;
  /** Folder of the test split; default Fashion-MNIST's. */
  dataset: string;
  datasetFormat: Extract<DatasetFormat, 'idx' | 'cifar10-binary'>;
  /** Skip the sanity panel. */
  noSanity: boolean;
  backend: BackendPreference;
}

export const EVALUATE_USAGE =
  'usage: npm run evaluate -- --model DIR --suite standard|plus|fast --eps 0.1 --images N [--json] ' +
  '[--norm linf|l2] [--dataset PATH] [--dataset-format idx|cifar10-binary] [--batch-size 100] [--seed 0] ' +
  '[--no-sanity] [--backend auto|wasm|cpu|…]';

/** A bad command line; the script prints the message and exits with status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(message: string) {
    super(`${message}\n${EVALUATE_USAGE}`);
  }
}

/** Parses the arguments; throws a {@link UsageError} naming the flag and what was expected. */
export function parseEvaluateArgs(argv: string[]): EvaluateCommand {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        suite: { type: 'string' },
        norm: { type: 'string' },
        eps: { type: 'string' },
        images: { type: 'string' },
        'batch-size': { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'boolean' },
        dataset: { type: 'string' },
        'dataset-format': { type: 'string' },
        'no-sanity': { type: 'boolean' },
        backend: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const int = (name: string, def: number | undefined, min: number): number => {
    const raw = values[name];
    if (raw === undefined) {
      if (def === undefined) throw new UsageError(`--${name} is required`);
      return def;
    }
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${raw}`);
    return v;
  };
  const model = values.model;
  if (typeof model !== 'string' || model === '') throw new UsageError('--model DIR is required');
  const suite = values.suite ?? 'standard';
  if (suite !== 'standard' && suite !== 'plus' && suite !== 'fast') {
    throw new UsageError(`--suite must be standard, plus or fast, got ${String(suite)}`);
  }
  const norm = values.norm ?? 'linf';
  if (norm !== 'linf' && norm !== 'l2') throw new UsageError(`--norm must be linf or l2, got ${String(norm)}`);
  const eps = values.eps === undefined ? 0.1 : Number(values.eps);
  if (!Number.isFinite(eps) || eps <= 0) throw new UsageError(`--eps must be a number > 0, got ${String(values.eps)}`);
  if (norm === 'linf' && eps > 1) throw new UsageError(`--eps must be at most 1 for linf on [0,1] images, got ${eps}`);
  const format = values['dataset-format'] ?? 'idx';
  if (format !== 'idx' && format !== 'cifar10-binary') {
    throw new UsageError(`--dataset-format must be idx or cifar10-binary, got ${String(format)}`);
  }
  return {
    model,
    suite,
    norm,
    eps,
    images: int('images', 1000, 1),
    batchSize: int('batch-size', 100, 1),
    seed: int('seed', 0, 0),
    json: values.json === true,
    dataset: typeof values.dataset === 'string' ? values.dataset : FASHION_MNIST_DIR,
    datasetFormat: format,
    noSanity: values['no-sanity'] === true,
    backend: (values.backend as BackendPreference | undefined) ?? 'auto',
  };
}

/** The `--json` line: accuracies as fractions, `attacks` maps each attack to the robust accuracy after it. */
export interface EvaluateSummary {
  backend: string;
  suite: string;
  norm: Norm;
  eps: number;
  clean: number;
  worstCase: number;
  /** 95 % Wilson interval of the worst case. */
  worstCaseInterval: [number, number];
  attacks: Record<string, number>;
  /** Names of the sanity flags that fired. */
  flags: string[];
  images: number;
  seconds: number;
}

export interface EvaluateOutcome {
  summary: EvaluateSummary;
  result: SuiteResult;
  sanity: SanityFlag[];
}

/** Runs the command: loads model and data, runs the suite as one shard, then the sanity panel. */
export async function runEvaluateCommand(
  c: EvaluateCommand,
  log: (line: string) => void = () => {},
): Promise<EvaluateOutcome> {
  const isDir = await stat(c.model).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) throw new UsageError(`--model ${c.model}: no such directory (expected model.json and weights.bin)`);
  const started = performance.now();
  await initBackend(c.backend, { log });
  const model: tf.LayersModel = await loadModel(c.model);
  try {
    const all =
      c.dataset === FASHION_MNIST_DIR && c.datasetFormat === 'idx'
        ? await loadFashionMnist(c.dataset, 'test')
        : await loadDataset({ format: c.datasetFormat, path: c.dataset, split: 'test' });
    if (c.images > all.count) throw new UsageError(`--images ${c.images} exceeds the ${all.count} test images`);
    const data = c.images === all.count ? all : subset(all, { strategy: 'first', n: c.images });
    const attacks = suiteAttacks(c.suite, { norm: c.norm, numClasses: data.numClasses });
    log(`suite ${c.suite}: ${attacks.map((a) => a.name).join(' → ')} at ${c.norm} ε=${c.eps} on ${data.count} images`);
    let lastLog = 0;
    const shard = await runSuiteShard(model, data, {
      attacks,
      norm: c.norm,
      eps: c.eps,
      start: 0,
      count: data.count,
      batchSize: c.batchSize,
      seed: c.seed,
      onProgress: (s, p) => {
        const now = performance.now();
        if (now - lastLog < 5000 && p.imagesDone < p.imagesTotal) return;
        lastLog = now;
        const robust = s.brokenBy.filter((b) => b === ROBUST).length;
        if (p.imagesTotal === 0) log(`  clean: ${robust} of ${s.brokenBy.length} correct`);
        else log(`  ${p.attack}: ${p.imagesDone}/${p.imagesTotal} attacked, ${robust} still robust`);
      },
    });
    const result = reduceSuite([shard]);
    log(
      `clean ${pct(result.clean.accuracy)}, ` +
        result.perAttack.map((a) => `after ${a.name} ${pct(a.after.accuracy)} (−${a.broke})`).join(', '),
    );
    let sanity: SanityFlag[] = [];
    if (!c.noSanity) {
      log('sanity panel…');
      sanity = await sanityPanel(model, data, { norm: c.norm, eps: c.eps, seed: c.seed, suite: result });
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      result,
      sanity,
      summary: {
        backend: backendReport().name,
        suite: c.suite,
        norm: c.norm,
        eps: c.eps,
        clean: result.clean.accuracy,
        worstCase: result.worstCase.accuracy,
        worstCaseInterval: [result.worstCase.lower, result.worstCase.upper],
        attacks: Object.fromEntries(result.perAttack.map((a) => [a.name, a.after.accuracy])),
        flags: sanity.filter((f) => f.fired).map((f) => f.name),
        images: result.count,
        seconds: Math.round(seconds * 10) / 10,
      },
    };
  } finally {
    model.dispose();
  }
}

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
