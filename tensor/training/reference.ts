import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import type * as tf from '@tensorflow/tfjs';
import { backendReport, initBackend } from '../backend';
import type { BackendPreference } from '../backend';
import { FASHION_MNIST_DIR, loadFashionMnist, subset } from '../data';
import { evaluate } from '../eval';
import type { ImageDataset } from '../data';
import { buildReferenceCnn, loadModel, saveModel } from '../models';
import { openDataParallel, threadsFor } from '../parallel';
import type { DataParallelPool } from '../parallel';
import { deserializeCheckpoint } from './checkpoint';
import { Recipe, RECIPE_DEFAULTS } from './config';
import type { TrainingConfigInput } from './config';
import { CheckpointError } from './errors';
import { shardsFor } from './shards';
import { trainLoop } from './loop';
import { Trainer } from './trainer';

/**
 * The reference recipe on Fashion-MNIST (the figures the project quotes), as a function the script
 * `npm run train:reference` calls:
 * - standard: Adam lr 1e-3, batch 128;
 * - adversarial: the same plus Madry PGD-7 L∞, step ε/4, ε linearly warmed up over the first epoch to `eps`;
 * then the model is saved (tfjs layers format) and evaluated on the first `evalSize` test images, clean and under
 * PGD-20 (step ε/4, one random start).
 */
export interface ReferenceOptions {
  mode: 'standard' | 'adversarial';
  /** adversarial mode: the recipe (see `referenceConfig`); default pgd */
  recipe?: Recipe;
  /** adversarial mode: training images held out for the guard's probe (0: no guard); default 0 */
  probe?: number;
  epochs: number;
  /** first N training images (default 60000: all) */
  trainSize: number;
  /** where the model (model.json + weights.bin) and the training checkpoint go */
  out: string;
  /** fine-tune the model saved in this folder instead of a fresh reference CNN */
  from?: string;
  /** ε of training (adversarial) and of the robust evaluation; default 0.1 */
  eps: number;
  /** test images evaluated; default 1000 */
  evalSize: number;
  batchSize: number;
  seed: number;
  /** continue from OUT/train-state.ckpt when it exists (written at every epoch end and every 50 batches) */
  resume: boolean;
  backend: BackendPreference;
  /** training threads: each batch cut into this many shards trained side by side (auto: see `threadsFor`); default auto */
  threads: number | 'auto';
  dataDir: string;
}

export interface ReferenceResult {
  backend: string;
  /** the recipe trained with ("standard" for clean training) */
  recipe: Recipe | 'standard';
  clean: number;
  robust: number;
  evalImages: number;
  attack: { method: 'pgd'; norm: 'linf'; eps: number; steps: number; stepSize: number; restarts: number };
  /** wall time of the whole run (load, train, save, evaluate) */
  seconds: number;
  /** wall time of the training alone (this process; a resumed run counts only its own part) */
  trainSeconds: number;
  /** the shards of each batch, and the threads that trained them */
  shards: number;
  threads: number;
  /** guarded runs: the epoch (1-based) whose weights were saved, and whether the guard stopped training */
  keptEpoch?: number;
  overfitting?: boolean;
}

export const CHECKPOINT_FILE = 'train-state.ckpt';

const USAGE =
  'usage: npm run train:reference -- --mode standard|adversarial [--recipe pgd|fgsm-rs|trades|mart] --epochs N ' +
  '--train-size N [--out DIR] [--probe 0] [--from DIR] [--eps 0.1] [--eval-size 1000] [--batch-size 128] [--seed 0] ' +
  '[--resume] [--backend auto|wasm|cpu|…] [--threads auto|N] [--json]';

/** Parses the script's arguments; throws an Error with the usage line on bad input. */
export function parseReferenceArgs(argv: string[]): ReferenceOptions & { json: boolean } {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        mode: { type: 'string' },
        recipe: { type: 'string' },
        probe: { type: 'string' },
        epochs: { type: 'string' },
        'train-size': { type: 'string' },
        out: { type: 'string' },
        from: { type: 'string' },
        eps: { type: 'string' },
        'eval-size': { type: 'string' },
        'batch-size': { type: 'string' },
        seed: { type: 'string' },
        resume: { type: 'boolean' },
        backend: { type: 'string' },
        threads: { type: 'string' },
        'data-dir': { type: 'string' },
        json: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${USAGE}`);
  }
  const int = (name: string, def: number | undefined, min: number): number => {
    const raw = values[name];
    if (raw === undefined) {
      if (def === undefined) throw new Error(`--${name} is required\n${USAGE}`);
      return def;
    }
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${raw}\n${USAGE}`);
    return v;
  };
  const recipe = values.recipe;
  if (recipe !== undefined && !Recipe.safeParse(recipe).success) {
    throw new Error(`--recipe must be one of ${Recipe.options.join(', ')}, got ${recipe}\n${USAGE}`);
  }
  const mode = values.mode ?? (recipe !== undefined ? 'adversarial' : undefined);
  if (mode !== 'standard' && mode !== 'adversarial') {
    throw new Error(`--mode must be standard or adversarial, got ${mode ?? 'nothing'}\n${USAGE}`);
  }
  if (mode === 'standard' && recipe !== undefined) throw new Error(`--recipe needs --mode adversarial\n${USAGE}`);
  // Default: a git-ignored folder per mode, so a quick check needs no --out.
  const out = values.out ?? join('.tempered', 'reference', mode);
  if (typeof out !== 'string' || out === '') throw new Error(`--out DIR must name a folder\n${USAGE}`);
  const eps = values.eps === undefined ? 0.1 : Number(values.eps);
  if (!Number.isFinite(eps) || eps <= 0 || eps > 1) {
    throw new Error(`--eps must be a number in (0, 1], got ${values.eps}\n${USAGE}`);
  }
  return {
    mode,
    ...(recipe !== undefined ? { recipe: recipe as Recipe } : {}),
    ...(values.probe !== undefined ? { probe: int('probe', 0, 0) } : {}),
    epochs: int('epochs', undefined, 1),
    trainSize: int('train-size', 60000, 1),
    out,
    ...(typeof values.from === 'string' ? { from: values.from } : {}),
    eps,
    evalSize: int('eval-size', 1000, 1),
    batchSize: int('batch-size', 128, 1),
    seed: int('seed', 0, 0),
    resume: values.resume === true,
    backend: (values.backend as BackendPreference | undefined) ?? 'auto',
    threads: values.threads === undefined || values.threads === 'auto' ? 'auto' : int('threads', 1, 1),
    dataDir: typeof values['data-dir'] === 'string' ? values['data-dir'] : FASHION_MNIST_DIR,
    json: values.json === true,
  };
}

/**
 * The training config of a recipe on the reference task. Every recipe keeps the reference's batch 128 and linear
 * ε warm-up over the first epoch; the rest is each recipe's published setting:
 * - pgd: Adam lr 1e-3, PGD-7 with step ε/4 (Madry et al. 2018; the project's reference since the start);
 * - fgsm-rs: one FGSM step of 1.25ε from a uniform start, Adam with a cyclic learning rate peaking at 5e-3 (Wong et
 *   al. 2020, the MNIST setting of locuslab/fast_adversarial: `--alpha 0.375` at ε 0.3, `--lr-max 5e-3`, cyclic);
 * - trades: PGD-10 on the KL, step ε/4, β 6, Adam lr 1e-3 (Zhang et al. 2019);
 * - mart: PGD-10, step ε/4, β 5, Adam lr 1e-3 (Wang et al. 2020, the authors' code).
 * `probe` > 0 adds the guard (PGD-5 probe on that many held-out training images, keep the best epoch).
 */
export function referenceConfig(
  o: Pick<ReferenceOptions, 'mode' | 'epochs' | 'eps' | 'batchSize' | 'seed' | 'recipe' | 'probe'> & {
    shards?: number;
  },
) {
  const config: TrainingConfigInput = {
    epochs: o.epochs,
    batchSize: o.batchSize,
    optimizer: 'adam',
    learningRate: 1e-3,
    seed: o.seed,
    ...(o.shards !== undefined && o.shards > 1 ? { shards: o.shards } : {}),
  };
  if (o.mode === 'adversarial') {
    const recipe = o.recipe ?? 'pgd';
    config.epsilon = { max: o.eps, kind: 'linear', warmupEpochs: 1 };
    const stepFraction = RECIPE_DEFAULTS[recipe].stepFraction;
    if (recipe === 'pgd') {
      config.attack = { norm: 'linf', steps: 7, stepFraction, restarts: 1, randomStart: true };
    } else if (recipe === 'fgsm-rs') {
      config.method = 'fgsm-rs';
      config.attack = { norm: 'linf', steps: 1, stepFraction, restarts: 1, randomStart: true };
      config.learningRate = 5e-3;
      config.lrSchedule = { type: 'cyclic' };
    } else {
      config.method = recipe;
      config.beta = RECIPE_DEFAULTS[recipe].beta;
      config.attack = { norm: 'linf', steps: 10, stepFraction, restarts: 1, randomStart: true };
    }
    if (o.probe !== undefined && o.probe > 0) config.guard = { probeImages: o.probe, steps: 5, keepBest: true };
  }
  return config;
}

/**
 * Clean and PGD-20 (step ε/4, one random start, seeded) accuracy of `model` on `data` through `tensor/eval`'s
 * `evaluate` (robust = correct on the clean image and under attack). Leaves no tensors behind.
 */
export async function evaluateReference(
  model: tf.LayersModel,
  data: ImageDataset,
  eps: number,
  seed = 0,
): Promise<{ clean: number; robust: number; attack: ReferenceResult['attack'] }> {
  const a = { method: 'pgd' as const, norm: 'linf' as const, eps, steps: 20, stepSize: eps / 4, restarts: 1 };
  const report = await evaluate(model, data, {
    attacks: [{ name: `pgd20-linf-${eps}`, ...a, randomStart: true }],
    batchSize: 100,
    seed,
  });
  return { clean: report.cleanAccuracy, robust: report.attacks[0].robustAccuracy, attack: a };
}

/**
 * Trains (or fine-tunes) the reference CNN with the recipe, saves it to `out`, evaluates it. `log` receives
 * progress lines (one per epoch and every 20 batches).
 */
export async function runReference(
  o: ReferenceOptions,
  log: (line: string) => void = () => {},
): Promise<ReferenceResult> {
  const t0 = performance.now();
  await initBackend(o.backend, { log });
  const full = await loadFashionMnist(o.dataDir, 'train');
  if (o.trainSize > full.count)
    throw new Error(`--train-size ${o.trainSize} exceeds the ${full.count} training images`);
  const train = o.trainSize === full.count ? full : subset(full, { strategy: 'first', n: o.trainSize });
  const testFull = await loadFashionMnist(o.dataDir, 'test');
  const test = subset(testFull, { strategy: 'first', n: Math.min(o.evalSize, testFull.count) });

  const model = o.from ? await loadModel(o.from) : buildReferenceCnn({ seed: o.seed });
  let trainer: Trainer | undefined;
  let pool: DataParallelPool | undefined;
  try {
    const ckPath = join(o.out, CHECKPOINT_FILE);
    let state: Uint8Array | undefined;
    if (o.resume) {
      state = await readFile(ckPath).then(
        (b) => new Uint8Array(b),
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return undefined;
          throw err;
        },
      );
    }
    const backend = backendReport().name;
    const here = threadsFor(backend, o.threads);
    let resumed: number | undefined;
    if (o.threads === 'auto' && state) {
      try {
        resumed = deserializeCheckpoint(state).config.shards ?? 1;
      } catch {
        // a damaged checkpoint: Trainer.create says so below
      }
    }
    const shards = shardsFor(o.threads, here, resumed);
    const config = referenceConfig({ ...o, shards });
    const threads = Math.min(here, shards);
    if (threads > 1) pool = await openDataParallel(model, { workers: threads, backend });
    try {
      trainer = await Trainer.create({ model, train, config, state, ...(pool ? { runner: pool } : {}) });
    } catch (err) {
      if (err instanceof CheckpointError) throw new Error(`cannot resume from ${ckPath}: ${err.message}`);
      throw err;
    }
    if (state) log(`resuming at epoch ${trainer.cursor.epoch} batch ${trainer.cursor.batch}`);
    await mkdir(o.out, { recursive: true });
    const t = trainer;
    const tTrain = performance.now();
    await trainLoop(t, {
      checkpointEvery: 50,
      onCheckpoint: async (bytes) => {
        await writeFile(`${ckPath}.tmp`, bytes);
        await rename(`${ckPath}.tmp`, ckPath);
      },
      onStep: (r) => {
        if (r.epochSummary) {
          const s = r.epochSummary;
          const probe = s.probe ? `, probe clean ${s.probe.clean.toFixed(3)} robust ${s.probe.robust.toFixed(3)}` : '';
          log(
            `epoch ${s.epoch + 1}/${o.epochs}: loss ${s.meanLoss.toFixed(4)}, mean ε ${s.meanEps.toFixed(3)}, ` +
              `${s.seconds.toFixed(0)} s (${(s.examples / s.seconds).toFixed(0)} img/s)${probe}`,
          );
        } else if ((r.batch + 1) % 20 === 0) {
          log(
            `  epoch ${r.epoch + 1} batch ${r.batch + 1}/${t.batchesPerEpoch}: loss ${r.loss.toFixed(4)}, ` +
              `ε ${r.eps.toFixed(3)}, ${r.examplesPerSec.toFixed(0)} img/s`,
          );
        }
      },
    });
    const trainSeconds = Math.round((performance.now() - tTrain) / 100) / 10;
    const guard = t.guard;
    await saveModel(model, o.out);
    log(`saved the model to ${o.out}`);
    const ev = await evaluateReference(model, test, o.eps);
    return {
      backend: backendReport().name,
      recipe: o.mode === 'standard' ? 'standard' : (o.recipe ?? 'pgd'),
      clean: ev.clean,
      robust: ev.robust,
      evalImages: test.count,
      attack: ev.attack,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
      trainSeconds,
      shards,
      threads: pool?.size ?? 1,
      ...(guard.finalEpoch !== undefined ? { keptEpoch: guard.finalEpoch + 1 } : {}),
      ...(t.probeCount > 0 ? { overfitting: guard.overfitting !== undefined } : {}),
    };
  } finally {
    trainer?.dispose();
    await pool?.close();
    model.dispose();
  }
}
