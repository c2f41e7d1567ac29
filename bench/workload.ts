import * as tf from '@tensorflow/tfjs';
import type { AttackOptions } from '../tensor/attacks';
import type { BackendName } from '../tensor/backend';
import { buildReferenceCnn } from '../tensor/models/reference-cnn';
import { buildSmallResNet } from '../tensor/models/small-resnet';
import { openDataParallel } from '../tensor/parallel';
import { parseTrainingConfig } from '../tensor/training/config';
import { combineShards, shardJobs } from '../tensor/training/shards';

/** The bench's models: the reference CNN (28×28×1) and the small ResNet a CIFAR-10 user trains (32×32×3). */
export const BENCH_MODELS = ['reference', 'small-resnet'] as const;
export type BenchModel = (typeof BENCH_MODELS)[number];

/**
 * A bench workload: a model, a batch of random images of its input shape, L∞ PGD at ε with step ε/4 (7 steps in
 * the training step, 20 in evaluation).
 */
export interface Workload {
  model: BenchModel;
  batch: number;
  eps: number;
  trainSteps: number;
  evalSteps: number;
  optimizer: 'sgd' | 'adam';
}

export const DEFAULT_WORKLOAD: Workload = {
  model: 'reference',
  batch: 128,
  eps: 0.1,
  trainSteps: 7,
  evalSteps: 20,
  optimizer: 'sgd',
};

/** The workload of `--model`: the reference CNN at ε = 0.1, or the small ResNet at ε = 8/255 (CIFAR-10's). */
export function workloadFor(model: BenchModel, optimizer: Workload['optimizer'] = 'sgd'): Workload {
  return model === 'small-resnet'
    ? { ...DEFAULT_WORKLOAD, model, eps: 8 / 255, optimizer }
    : { ...DEFAULT_WORKLOAD, optimizer };
}

/** A fresh model of the workload (the caller disposes it) and its input shape. */
function buildModel(w: Workload): { model: tf.LayersModel; shape: [number, number, number] } {
  return w.model === 'small-resnet'
    ? { model: buildSmallResNet({ seed: 1 }), shape: [32, 32, 3] }
    : { model: buildReferenceCnn({ seed: 1 }), shape: [28, 28, 1] };
}

/** PGD from a random start: returns a new tensor the caller owns. */
export type Pgd = (model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D, steps: number, seed: number) => tf.Tensor4D;

/**
 * The project's attack (tensor/attacks) when it loads, so the bench measures the real code path; otherwise a
 * short L∞ PGD of the same shape (random start, sign steps, projection onto the ε-box ∩ [0,1]).
 */
export async function loadPgd(eps: number): Promise<{ pgd: Pgd; source: string }> {
  try {
    const { attack } = await import('../tensor/attacks');
    const pgd: Pgd = (model, x, y, steps, seed) =>
      attack(model, x, y, { norm: 'linf', eps, stepSize: eps / 4, steps, randomStart: true, seed });
    return { pgd, source: 'tensor/attacks' };
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    const pgd: Pgd = (model, x, y, steps, seed) => {
      const onehot = tf.oneHot(y, 10);
      const loss = (a: tf.Tensor) => tf.losses.softmaxCrossEntropy(onehot, model.apply(a) as tf.Tensor) as tf.Scalar;
      const grad = tf.grad(loss);
      const lo = tf.maximum(tf.sub(x, eps), 0);
      const hi = tf.minimum(tf.add(x, eps), 1);
      let adv = tf.tidy(() =>
        tf.minimum(tf.maximum(tf.add(x, tf.randomUniform(x.shape, -eps, eps, 'float32', seed)), lo), hi),
      );
      for (let i = 0; i < steps; i++) {
        const next = tf.tidy(() => tf.minimum(tf.maximum(tf.add(adv, tf.mul(tf.sign(grad(adv)), eps / 4)), lo), hi));
        adv.dispose();
        adv = next;
      }
      tf.dispose([onehot, lo, hi]);
      return adv as tf.Tensor4D;
    };
    return { pgd, source: `bench's own PGD (tensor/attacks did not load: ${why})` };
  }
}

/** Examples per second of wall-clock time and per second of this process's CPU time (user + system). */
export interface Rate {
  wall: number;
  cpu: number;
}

/**
 * Examples per second of `step` over at least `seconds` and `minIters` calls, after one warm-up call when
 * `seconds` > 0 (a slow engine measured with seconds = 0 gets no warm-up, so its figure is a little pessimistic).
 * The CPU-time rate is the steadier figure on a shared machine: time slices lost to other processes do not count.
 */
export async function throughput(
  step: () => Promise<void>,
  batch: number,
  seconds: number,
  minIters: number,
): Promise<Rate> {
  if (seconds > 0) await step();
  let n = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  while (n < minIters || performance.now() - t0 < seconds * 1000) {
    await step();
    n++;
  }
  const c = process.cpuUsage(c0);
  return { wall: (n * batch) / ((performance.now() - t0) / 1000), cpu: (n * batch) / ((c.user + c.system) / 1e6) };
}

/**
 * Adversarial-training and PGD-20 evaluation throughput of the current tfjs backend on the workload.
 * Everything it creates is disposed before it returns.
 */
export async function measureTfjs(w: Workload, pgd: Pgd, seconds: number, minIters: number) {
  const { model, shape } = buildModel(w);
  const x = tf.randomUniform([w.batch, ...shape], 0, 1, 'float32', 2) as tf.Tensor4D;
  const y = tf.randomUniform([w.batch], 0, 10, 'int32', 3) as tf.Tensor1D;
  const onehot = tf.oneHot(y, 10);
  const optimizer = w.optimizer === 'sgd' ? tf.train.sgd(0.01) : tf.train.adam(1e-3);
  let seed = 0;
  try {
    const trainStep = async () => {
      const adv = pgd(model, x, y, w.trainSteps, seed++);
      const loss = optimizer.minimize(
        () => tf.losses.softmaxCrossEntropy(onehot, model.apply(adv, { training: true }) as tf.Tensor) as tf.Scalar,
        true,
      );
      adv.dispose();
      await loss!.data();
      loss!.dispose();
    };
    const evalStep = async () => {
      const adv = pgd(model, x, y, w.evalSteps, seed++);
      const pred = tf.tidy(() => tf.argMax(model.apply(adv) as tf.Tensor, 1));
      adv.dispose();
      await pred.data();
      pred.dispose();
    };
    const advTrain = await throughput(trainStep, w.batch, seconds, minIters);
    const pgd20Eval = await throughput(evalStep, w.batch, seconds, minIters);
    return { advTrain, pgd20Eval };
  } finally {
    tf.dispose([x, y, onehot]);
    optimizer.dispose();
    model.dispose();
  }
}

/**
 * The same workload and figures with data parallelism (tensor/parallel), as the trainer runs it under
 * `shards`: `workers` threads, each with its own backend and model copy, attack their shard of the batch
 * (tensor/attacks, random start, a fresh seed per step) and compute its gradient; the main thread averages the
 * gradients by shard size and takes the optimizer step; the workers read the new weights before their next shard.
 * PGD-20 evaluation splits the batch the same way. The CPU-time rate counts every thread of the process.
 * Everything it creates, the threads included, is gone before it returns.
 */
export async function measureDataParallel(
  w: Workload,
  backend: BackendName,
  workers: number,
  seconds: number,
  minIters: number,
) {
  const { model, shape } = buildModel(w);
  const x = tf.randomUniform([w.batch, ...shape], 0, 1, 'float32', 2) as tf.Tensor4D;
  const y = tf.randomUniform([w.batch], 0, 10, 'int32', 3) as tf.Tensor1D;
  const optimizer = w.optimizer === 'sgd' ? tf.train.sgd(0.01) : tf.train.adam(1e-3);
  const config = parseTrainingConfig({
    epochs: 1,
    batchSize: w.batch,
    learningRate: 0.01,
    epsilon: { max: w.eps, kind: 'constant' },
    attack: { steps: w.trainSteps, stepFraction: 0.25, randomStart: true },
    shards: workers,
  });
  let seed = 0;
  const pool = await openDataParallel(model, { workers, backend });
  try {
    const trainStep = async () => {
      const jobs = shardJobs(w.batch, workers, { eps: w.eps, seed: seed++, clean: 0 });
      const { grads } = combineShards(jobs, await pool.run(model, x, y, config, jobs));
      const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
      tf.tidy(() => {
        const parts = tf.split(
          tf.tensor1d(grads),
          vars.map((v) => v.size),
        );
        optimizer.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: tf.reshape(parts[i], v.shape) })));
      });
    };
    const pgd20 = (): AttackOptions => ({
      norm: 'linf',
      eps: w.eps,
      stepSize: w.eps / 4,
      steps: w.evalSteps,
      randomStart: true,
      seed: seed++,
    });
    const evalStep = async () => {
      await pool.predict(model, x, y, pgd20());
    };
    const advTrain = await throughput(trainStep, w.batch, seconds, minIters);
    const pgd20Eval = await throughput(evalStep, w.batch, seconds, minIters);
    return { advTrain, pgd20Eval };
  } finally {
    await pool.close();
    tf.dispose([x, y]);
    optimizer.dispose();
    model.dispose();
  }
}
