import * as tf from '@tensorflow/tfjs';
import type { TrainingConfig } from './config';

/**
 * The optimizer of a run and the few places where its state is read and written. Slots go through the tfjs
 * `getWeights()` / `setWeights()` pair; two details of tfjs 4.22 need care for bit-exact resumes and no leaks:
 * - Adam's `setWeights` recomputes β1^t, β2^t with `pow`, which differs in the last bit from the running product
 *   that `applyGradients` keeps; we save and restore the running values (`accBeta1`, `accBeta2`).
 * - `setWeights` makes new slot variables without disposing the old ones, and `MomentumOptimizer.dispose()`
 *   leaves its learning-rate scalar; we dispose both.
 */
export type OptimizerKind = 'adam' | 'sgd' | 'momentum';

export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

/** Optimizer state as tensors. From `readOptimizerState` the slots are the live variables: do not dispose them. */
export interface OptimizerTensors {
  iterations: number;
  accBeta1?: number;
  accBeta2?: number;
  slots: NamedTensor[];
}

interface AdamInternals {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  learningRate: number;
}

export function optimizerKind(c: TrainingConfig): OptimizerKind {
  return c.optimizer === 'adam' ? 'adam' : c.momentum > 0 ? 'momentum' : 'sgd';
}

/** A fresh optimizer for the config; the caller disposes it with `disposeOptimizer`. */
export function makeOptimizer(c: TrainingConfig): tf.Optimizer {
  const kind = optimizerKind(c);
  if (kind === 'adam') {
    const opt = tf.train.adam(c.learningRate);
    adamInternals(opt);
    return opt;
  }
  return kind === 'momentum' ? tf.train.momentum(c.learningRate, c.momentum) : tf.train.sgd(c.learningRate);
}

function adamInternals(opt: tf.Optimizer): AdamInternals {
  const a = opt as unknown as Partial<AdamInternals>;
  if (
    !(a.accBeta1 instanceof tf.Variable) ||
    !(a.accBeta2 instanceof tf.Variable) ||
    typeof a.learningRate !== 'number'
  ) {
    throw new Error(
      'tfjs AdamOptimizer no longer has accBeta1/accBeta2/learningRate fields; update optimizer-state.ts',
    );
  }
  return a as AdamInternals;
}

/** Sets the learning rate used by the next `applyGradients`. */
export function setLearningRate(opt: tf.Optimizer, kind: OptimizerKind, lr: number): void {
  if (kind === 'adam') adamInternals(opt).learningRate = lr;
  else (opt as tf.SGDOptimizer).setLearningRate(lr);
}

/** Reads the optimizer's state; the slot tensors are the optimizer's live variables (not copies). */
export async function readOptimizerState(opt: tf.Optimizer, kind: OptimizerKind): Promise<OptimizerTensors> {
  const weights = await opt.getWeights();
  const iterTensor = weights[0].tensor;
  const iterations = (await iterTensor.data())[0];
  iterTensor.dispose();
  const state: OptimizerTensors = { iterations, slots: weights.slice(1) };
  if (kind === 'adam') {
    const a = adamInternals(opt);
    state.accBeta1 = (await a.accBeta1.data())[0];
    state.accBeta2 = (await a.accBeta2.data())[0];
  }
  return state;
}

/**
 * Replaces the optimizer's state. The given slot tensors are copied (the caller still owns and disposes them);
 * the optimizer's previous slot variables are disposed.
 */
export async function writeOptimizerState(opt: tf.Optimizer, kind: OptimizerKind, s: OptimizerTensors): Promise<void> {
  if (kind === 'sgd' && s.slots.length > 0) {
    throw new Error(`plain SGD has no slot variables, but the state holds ${s.slots.length}`);
  }
  if (kind === 'adam' && s.slots.length % 2 !== 0) {
    throw new Error(`Adam state needs as many m as v slots, got ${s.slots.length} slots in all`);
  }
  if (kind === 'adam' && (s.accBeta1 === undefined || s.accBeta2 === undefined)) {
    throw new Error('Adam state lacks accBeta1/accBeta2');
  }
  const old = await opt.getWeights();
  old[0].tensor.dispose();
  const oldSlots = old.slice(1).map((w) => w.tensor);
  const iter = tf.scalar(s.iterations, 'int32');
  try {
    await opt.setWeights([{ name: 'iter', tensor: iter }, ...s.slots]);
  } finally {
    iter.dispose();
  }
  tf.dispose(oldSlots);
  if (kind === 'adam') {
    const a = adamInternals(opt);
    tf.tidy(() => {
      a.accBeta1.assign(tf.scalar(s.accBeta1!, 'float32'));
      a.accBeta2.assign(tf.scalar(s.accBeta2!, 'float32'));
    });
  }
}

/** Disposes the optimizer and what its own `dispose()` leaves behind. */
export function disposeOptimizer(opt: tf.Optimizer, kind: OptimizerKind): void {
  opt.dispose();
  if (kind === 'momentum') {
    // MomentumOptimizer.dispose() overrides SGD's and forgets the learning-rate scalar `c`.
    const c = (opt as unknown as { c?: tf.Tensor }).c;
    if (c && !c.isDisposed) c.dispose();
  }
}
