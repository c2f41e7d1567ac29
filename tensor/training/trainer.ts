import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import { attack } from '../attacks';
import { batchCount, makeBatch } from '../data/batch';
import type { ImageDataset } from '../data/dataset';
import { crossEntropy } from '../losses';
import { logitsFunction } from '../models/logits';
import { Rng } from '../random';
import { deserializeCheckpoint, serializeCheckpoint } from './checkpoint';
import type { DataShape, EpochRunning, EpochSummary, NamedArray, TrainingCheckpoint } from './checkpoint';
import { configHash, isAdversarial, parseTrainingConfig } from './config';
import type { TrainingConfig, TrainingConfigInput } from './config';
import { CheckpointError, TrainingDivergedError } from './errors';
import type { DivergenceInfo } from './errors';
import {
  disposeOptimizer,
  makeOptimizer,
  optimizerKind,
  readOptimizerState,
  setLearningRate,
  writeOptimizerState,
} from './optimizer-state';
import type { OptimizerKind, OptimizerTensors } from './optimizer-state';
import { epsilonAt, learningRateAt, pgdStepSize } from './schedules';
import { meanKl, tradesAdversary } from './trades';

export interface TrainerOptions {
  /** The model to train, in place. The caller owns it (and disposes it after the trainer). A final softmax is fine. */
  model: tf.LayersModel;
  train: ImageDataset;
  /** Parsed here (defaults filled); a bad config throws an Error listing the problems. */
  config: TrainingConfigInput;
  /** Continue from this checkpoint (bytes from `checkpoint()` or a deserialised state) instead of starting. */
  state?: Uint8Array | TrainingCheckpoint;
  /**
   * Accept a checkpoint written under a different config (e.g. a lower learning rate after a divergence, or more
   * epochs); default false: a different config hash is refused with a CheckpointError('config-mismatch').
   */
  allowConfigChange?: boolean;
}

/** What one `step()` did. */
export interface StepResult {
  epoch: number;
  batch: number;
  /** the batch loss the gradients came from (adversarial CE, or TRADES CE + β·KL) */
  loss: number;
  eps: number;
  lr: number;
  examples: number;
  seconds: number;
  examplesPerSec: number;
  /** whether this batch completed an optimizer step (false while accumulating gradients) */
  applied: boolean;
  optimizerSteps: number;
  /** set when this batch ended an epoch */
  epochSummary?: EpochSummary;
  done: boolean;
}

export interface Cursor {
  epoch: number;
  batch: number;
}

const emptyRunning = (): EpochRunning => ({ batches: 0, examples: 0, lossSum: 0, epsSum: 0, lastLr: 0, seconds: 0 });

/** A 32-bit seed for the randomness of batch (epoch, batch) of a run seeded `seed` (murmur3 finaliser mixing). */
export function batchSeed(seed: number, epoch: number, batch: number): number {
  const fmix = (h: number) => {
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  };
  let h = fmix(seed >>> 0);
  h = fmix(h ^ Math.imul(epoch + 1, 0x9e3779b1));
  return fmix(h ^ Math.imul(batch + 1, 0x27d4eb2f));
}

/**
 * A resumable adversarial trainer driven batch by batch by its caller: `await step()` runs one batch (craft the
 * adversarial examples against the current weights in inference mode, then compute gradients; every
 * `gradientAccumulation` batches, and at the end of an epoch, one optimizer step). Between steps the caller may
 * heartbeat, `checkpoint()`, or stop. All randomness comes from the config seed: the epoch order from the run's
 * `Rng` (checkpointed), attack starts from a seed derived from (seed, epoch, batch); so resuming from any
 * checkpoint gives the same weights as a run that never stopped, bit for bit on the same backend.
 *
 * The trainer owns its optimizer and accumulated gradients: call `dispose()` when done (the model stays the
 * caller's). A diverged step throws `TrainingDivergedError` and leaves the last good state in place.
 */
export class Trainer {
  readonly config: TrainingConfig;
  readonly configHash: string;
  readonly batchesPerEpoch: number;
  private readonly model: tf.LayersModel;
  private readonly data: ImageDataset;
  private readonly kind: OptimizerKind;
  private readonly optimizer: tf.Optimizer;
  private readonly vars: tf.Variable[];
  private epoch = 0;
  private batch = 0;
  private finished = false;
  private optimizerSteps = 0;
  private examplesSeen = 0;
  private rng: Rng;
  private order: Int32Array;
  private accum: tf.Tensor[] | undefined;
  private accumCount = 0;
  private history: EpochSummary[] = [];
  private running: EpochRunning = emptyRunning();
  private divergence: TrainingDivergedError | undefined;
  private busy = false;
  private disposed = false;

  private constructor(model: tf.LayersModel, data: ImageDataset, config: TrainingConfig) {
    this.model = model;
    this.data = data;
    this.config = config;
    this.configHash = configHash(config);
    this.batchesPerEpoch = batchCount(data.count, config.batchSize);
    this.kind = optimizerKind(config);
    this.vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    this.rng = Rng.fromSeed(config.seed);
    this.order = this.rng.permutation(data.count);
    this.optimizer = makeOptimizer(config);
  }

  /** Starts a run, or continues one when `state` is given (see `resume`). */
  static async create(options: TrainerOptions): Promise<Trainer> {
    const { model, train, state, allowConfigChange = false } = options;
    const config = parseTrainingConfig(options.config);
    checkInputs(model, train);
    const ck = state instanceof Uint8Array ? deserializeCheckpoint(state) : state;
    if (ck && !allowConfigChange && ck.configHash !== configHash(config)) {
      throw new CheckpointError(
        'config-mismatch',
        `checkpoint was written under config ${ck.configHash}, but this run's config hashes to ${configHash(config)} ` +
          '(pass allowConfigChange to continue under the new config)',
      );
    }
    const t = new Trainer(model, train, config);
    if (ck) {
      try {
        await t.load(ck);
      } catch (err) {
        t.dispose();
        throw err;
      }
    }
    return t;
  }

  /** Continues the run saved in `checkpoint`, under its own config unless `options.config` is given. */
  static async resume(
    checkpoint: Uint8Array | TrainingCheckpoint,
    options: Omit<TrainerOptions, 'state' | 'config'> & { config?: TrainingConfigInput },
  ): Promise<Trainer> {
    const ck = checkpoint instanceof Uint8Array ? deserializeCheckpoint(checkpoint) : checkpoint;
    return Trainer.create({ ...options, config: options.config ?? ck.config, state: ck });
  }

  /** The next batch to run; `{ epoch: config.epochs, batch: 0 }` when done. */
  get cursor(): Cursor {
    return { epoch: this.epoch, batch: this.batch };
  }
  get done(): boolean {
    return this.finished;
  }
  get totalBatches(): number {
    return this.batchesPerEpoch * this.config.epochs;
  }
  get completedBatches(): number {
    return this.epoch * this.batchesPerEpoch + this.batch;
  }
  get epochHistory(): readonly EpochSummary[] {
    return this.history;
  }
  /** The error of the step that diverged, if one did; `step()` refuses to go on after it. */
  get diverged(): TrainingDivergedError | undefined {
    return this.divergence;
  }

  /** Runs the batch at the cursor and moves the cursor on. */
  async step(): Promise<StepResult> {
    this.assertUsable('step');
    if (this.divergence) throw this.divergence;
    if (this.finished) throw new Error(`training is done (${this.config.epochs} epochs); nothing left to step`);
    this.busy = true;
    try {
      return await this.runBatch();
    } finally {
      this.busy = false;
    }
  }

  /** The full training state at the current batch boundary (after a divergence: the last good state). */
  async state(): Promise<TrainingCheckpoint> {
    this.assertUsable('checkpoint');
    const weights = await Promise.all(this.model.weights.map((w) => toNamedArray(w.originalName, w.read())));
    const opt = await readOptimizerState(this.optimizer, this.kind);
    const slots = await Promise.all(opt.slots.map((s) => toNamedArray(s.name, s.tensor)));
    const grads = this.accum ? await Promise.all(this.accum.map((g, i) => toNamedArray(this.vars[i].name, g))) : [];
    return {
      configHash: this.configHash,
      config: this.config,
      cursor: this.cursor,
      done: this.finished,
      optimizerSteps: this.optimizerSteps,
      examplesSeen: this.examplesSeen,
      rngState: this.rng.state(),
      order: this.finished ? new Int32Array(0) : this.order.slice(),
      data: dataShape(this.data),
      weights,
      optimizer: {
        kind: this.kind,
        iterations: opt.iterations,
        ...(opt.accBeta1 !== undefined ? { accBeta1: opt.accBeta1, accBeta2: opt.accBeta2 } : {}),
        slots,
      },
      accumulation: { count: this.accumCount, grads },
      metrics: { history: this.history.map((h) => ({ ...h })), current: { ...this.running } },
    };
  }

  /** `state()` serialised (see `serializeCheckpoint`). */
  async checkpoint(): Promise<Uint8Array> {
    return serializeCheckpoint(await this.state());
  }

  /** Frees the optimizer and accumulated gradients. The model is the caller's. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    disposeOptimizer(this.optimizer, this.kind);
    if (this.accum) tf.dispose(this.accum);
    this.accum = undefined;
  }

  // ---------------------------------------------------------------------------------------------------------------

  private assertUsable(what: string): void {
    if (this.disposed) throw new Error(`${what}() on a disposed Trainer`);
    if (this.busy) throw new Error(`${what}() while a step is running: await each step() first`);
  }

  private async runBatch(): Promise<StepResult> {
    const c = this.config;
    const t0 = performance.now();
    const { epoch, batch } = this;
    const B = this.batchesPerEpoch;
    const progress = epoch + batch / B;
    const eps = isAdversarial(c) ? epsilonAt(c.epsilon!, progress) : 0;
    const lr = learningRateAt(c.lrSchedule, c.learningRate, { progress, epochs: c.epochs, batchesPerEpoch: B });

    const { value, grads } = this.lossAndGrads(eps, batchSeed(c.seed, epoch, batch));
    const n = Math.min(c.batchSize, this.data.count - batch * c.batchSize);
    const loss = (await value.data())[0];
    value.dispose();
    const gradList = this.vars.map((v) => grads[v.name]);
    if (!Number.isFinite(loss) || loss > c.divergence.maxLoss) {
      tf.dispose(gradList);
      this.diverge({
        epoch,
        batch,
        loss,
        lr,
        reason: Number.isFinite(loss) ? 'loss-above-threshold' : 'non-finite-loss',
      });
    }

    // Sum into a new accumulator; it replaces the old one only once the step has succeeded.
    let summed: tf.Tensor[];
    if (this.accum) {
      const prev = this.accum;
      summed = tf.tidy(() => prev.map((a, i) => tf.add(a, gradList[i])));
      tf.dispose(gradList);
    } else {
      summed = gradList;
    }
    const count = this.accumCount + 1;
    const lastOfEpoch = batch === B - 1;
    const apply = count === c.gradientAccumulation || lastOfEpoch;
    if (apply) {
      try {
        await this.applyUpdate(summed, count, { epoch, batch, loss, lr, reason: 'non-finite-weights' });
      } finally {
        tf.dispose(summed);
      }
      if (this.accum) tf.dispose(this.accum);
      this.accum = undefined;
      this.accumCount = 0;
      this.optimizerSteps++;
    } else {
      if (this.accum) tf.dispose(this.accum);
      this.accum = summed;
      this.accumCount = count;
    }

    // Commit: metrics and cursor.
    const seconds = (performance.now() - t0) / 1000;
    this.examplesSeen += n;
    const r = this.running;
    r.batches++;
    r.examples += n;
    r.lossSum += loss;
    r.epsSum += eps;
    r.seconds += seconds;
    if (apply) r.lastLr = lr;
    let epochSummary: EpochSummary | undefined;
    if (lastOfEpoch) {
      epochSummary = {
        epoch,
        batches: r.batches,
        examples: r.examples,
        meanLoss: r.lossSum / Math.max(r.batches, 1),
        meanEps: r.epsSum / Math.max(r.batches, 1),
        lastLr: r.lastLr,
        seconds: r.seconds,
      };
      this.history.push(epochSummary);
      this.running = emptyRunning();
      this.epoch++;
      this.batch = 0;
      if (this.epoch >= c.epochs) this.finished = true;
      else this.order = this.rng.permutation(this.data.count);
    } else {
      this.batch++;
    }
    return {
      epoch,
      batch,
      loss,
      eps,
      lr,
      examples: n,
      seconds,
      examplesPerSec: n / Math.max(seconds, 1e-9),
      applied: apply,
      optimizerSteps: this.optimizerSteps,
      ...(epochSummary ? { epochSummary } : {}),
      done: this.finished,
    };
  }

  /**
   * Builds the batch, crafts its adversarial part (model in inference mode) and returns the loss and its
   * gradients with respect to the trainable variables; every other tensor is disposed.
   */
  private lossAndGrads(eps: number, seed: number): { value: tf.Scalar; grads: tf.NamedTensorMap } {
    const c = this.config;
    const { x, y } = makeBatch(this.data, this.order, this.batch * c.batchSize, c.batchSize);
    let adv: tf.Tensor4D | undefined;
    try {
      const n = x.shape[0];
      const clean = Math.round(c.cleanFraction * n);
      const rng = Rng.fromSeed(seed);
      if (eps > 0 && clean < n) {
        // The batch is already a random draw, so its first `clean` examples stay clean.
        const head = clean > 0 ? x.slice([0, 0, 0, 0], [clean, -1, -1, -1]) : undefined;
        const tail = clean > 0 ? x.slice([clean, 0, 0, 0], [n - clean, -1, -1, -1]) : x;
        const tailY = clean > 0 ? y.slice([clean], [n - clean]) : y;
        const stepSize = pgdStepSize(eps, c.attack.stepSizeFraction);
        let crafted: tf.Tensor4D;
        try {
          const attackSeed = rng.seed();
          // tidy: only the crafted batch survives, whatever the attack leaves behind
          crafted = tf.tidy(() =>
            c.tradesBeta !== undefined
              ? tradesAdversary(this.model, tail, {
                  norm: c.attack.norm,
                  eps,
                  stepSize,
                  steps: c.attack.steps,
                  seed: attackSeed,
                })
              : attack(this.model, tail, tailY, {
                  method: 'pgd',
                  norm: c.attack.norm,
                  eps,
                  stepSize,
                  steps: c.attack.steps,
                  restarts: c.attack.restarts,
                  randomStart: c.attack.randomStart,
                  seed: attackSeed,
                }),
          );
        } finally {
          if (head) tf.dispose([tail, tailY]);
        }
        if (head) {
          adv = tf.concat([head, crafted]);
          tf.dispose([head, crafted]);
        } else {
          adv = crafted;
        }
      }
      const input = adv ?? x;
      // Scores before a final softmax, so a model brought with one (e.g. from Keras) trains on the same loss.
      const forward = logitsFunction(this.model, { training: true });
      return tf.variableGrads(() => {
        if (c.tradesBeta !== undefined) {
          const cleanLogits = forward(x);
          const ce = crossEntropy(cleanLogits, y, c.labelSmoothing);
          if (!adv) return ce;
          return tf.add(ce, tf.mul(meanKl(cleanLogits, forward(adv)), c.tradesBeta)) as tf.Scalar;
        }
        return crossEntropy(forward(input), y, c.labelSmoothing);
      }, this.vars);
    } finally {
      tf.dispose([x, y]);
      adv?.dispose();
    }
  }

  /** One optimizer step with the mean of `summed` over `count` batches; rolls back if the weights go non-finite. */
  private async applyUpdate(summed: tf.Tensor[], count: number, info: DivergenceInfo): Promise<void> {
    const backup = await this.snapshot();
    try {
      setLearningRate(this.optimizer, this.kind, info.lr);
      tf.tidy(() => {
        const mean = count === 1 ? summed : summed.map((g) => tf.div(g, count));
        this.optimizer.applyGradients(this.vars.map((v, i) => ({ name: v.name, tensor: mean[i] })));
      });
      const finite = tf.tidy(() =>
        tf.stack(this.model.weights.map((w) => tf.all(tf.isFinite(w.read())).toFloat())).min(),
      );
      const ok = (await finite.data())[0] === 1;
      finite.dispose();
      if (!ok) {
        await this.restore(backup);
        this.diverge(info);
      }
    } finally {
      tf.dispose(backup.weights);
      tf.dispose(backup.optimizer.slots.map((s) => s.tensor));
    }
  }

  /** Copies of the weights and optimizer state (clones share data; cheap). The caller disposes them. */
  private async snapshot(): Promise<{ weights: tf.Tensor[]; optimizer: OptimizerTensors }> {
    const opt = await readOptimizerState(this.optimizer, this.kind);
    return {
      weights: this.model.weights.map((w) => tf.clone(w.read())),
      optimizer: { ...opt, slots: opt.slots.map((s) => ({ name: s.name, tensor: tf.clone(s.tensor) })) },
    };
  }

  private async restore(s: { weights: tf.Tensor[]; optimizer: OptimizerTensors }): Promise<void> {
    this.model.setWeights(s.weights);
    await writeOptimizerState(this.optimizer, this.kind, s.optimizer);
  }

  private diverge(info: DivergenceInfo): never {
    this.divergence = new TrainingDivergedError(info, this.config.divergence.maxLoss);
    throw this.divergence;
  }

  private async load(ck: TrainingCheckpoint): Promise<void> {
    const shape = dataShape(this.data);
    for (const k of Object.keys(shape) as (keyof DataShape)[]) {
      if (ck.data[k] !== shape[k]) {
        throw new CheckpointError(
          'data-mismatch',
          `checkpoint was taken on data with ${k}=${ck.data[k]}, but the training data has ${k}=${shape[k]}`,
        );
      }
    }
    const B = this.batchesPerEpoch;
    if (ck.done) {
      if (ck.order.length !== 0)
        throw new CheckpointError('corrupt', 'a finished checkpoint must not hold a data order');
    } else if (ck.order.length !== this.data.count) {
      throw new CheckpointError(
        'data-mismatch',
        `checkpoint data order has ${ck.order.length} entries, the training data ${this.data.count} images`,
      );
    }
    const { epoch, batch } = ck.cursor;
    if (!Number.isInteger(epoch) || !Number.isInteger(batch) || epoch < 0 || batch < 0 || batch >= B) {
      throw new CheckpointError('corrupt', `checkpoint cursor epoch ${epoch} batch ${batch} is outside 0..${B - 1}`);
    }
    const modelWeights = this.model.weights;
    if (ck.weights.length !== modelWeights.length) {
      throw new CheckpointError(
        'model-mismatch',
        `checkpoint holds ${ck.weights.length} weight tensors, the model has ${modelWeights.length}`,
      );
    }
    modelWeights.forEach((w, i) => {
      if (!sameShape(w.shape, ck.weights[i].shape)) {
        throw new CheckpointError(
          'model-mismatch',
          `weight ${i} (${w.originalName}) has shape [${w.shape}] in the model but [${ck.weights[i].shape}] in the checkpoint (${ck.weights[i].name})`,
        );
      }
    });
    if (ck.optimizer.kind !== this.kind) {
      throw new CheckpointError(
        'config-mismatch',
        `checkpoint holds ${ck.optimizer.kind} optimizer state, the config asks for ${this.kind}`,
      );
    }
    const expectedSlots = this.kind === 'adam' ? 2 * this.vars.length : this.kind === 'momentum' ? this.vars.length : 0;
    if (ck.optimizer.slots.length !== 0 && ck.optimizer.slots.length !== expectedSlots) {
      throw new CheckpointError(
        'model-mismatch',
        `checkpoint holds ${ck.optimizer.slots.length} optimizer slots, the model needs ${expectedSlots}`,
      );
    }
    ck.optimizer.slots.forEach((s, i) => {
      const v = this.vars[i % this.vars.length];
      if (!sameShape(v.shape, s.shape)) {
        throw new CheckpointError(
          'model-mismatch',
          `optimizer slot ${s.name} has shape [${s.shape}], expected [${v.shape}]`,
        );
      }
    });
    if (ck.accumulation.grads.length !== 0 && ck.accumulation.grads.length !== this.vars.length) {
      throw new CheckpointError(
        'model-mismatch',
        `checkpoint holds ${ck.accumulation.grads.length} accumulated gradients, the model has ${this.vars.length} trainable weights`,
      );
    }

    const weights = ck.weights.map((w) => tf.tensor(w.data, w.shape, 'float32'));
    const slots = ck.optimizer.slots.map((s) => ({ name: s.name, tensor: tf.tensor(s.data, s.shape, 'float32') }));
    try {
      this.model.setWeights(weights);
      await writeOptimizerState(this.optimizer, this.kind, {
        iterations: ck.optimizer.iterations,
        accBeta1: ck.optimizer.accBeta1,
        accBeta2: ck.optimizer.accBeta2,
        slots,
      });
    } finally {
      tf.dispose(weights);
      tf.dispose(slots.map((s) => s.tensor));
    }
    this.accum = ck.accumulation.grads.length
      ? ck.accumulation.grads.map((g) => tf.tensor(g.data, g.shape, 'float32'))
      : undefined;
    this.accumCount = ck.accumulation.count;
    if (epoch > this.config.epochs || (!ck.done && epoch === this.config.epochs)) {
      throw new CheckpointError(
        'config-mismatch',
        `checkpoint is at epoch ${epoch} batch ${batch}, past the ${this.config.epochs} epochs of the config`,
      );
    }
    this.epoch = epoch;
    this.batch = batch;
    // a finished run continues when the (changed) config asks for more epochs
    this.finished = ck.done && epoch >= this.config.epochs;
    this.optimizerSteps = ck.optimizerSteps;
    this.examplesSeen = ck.examplesSeen;
    this.rng = Rng.fromState(ck.rngState);
    this.order = ck.done && !this.finished ? this.rng.permutation(this.data.count) : ck.order.slice();
    this.history = ck.metrics.history.map((h) => ({ ...h }));
    this.running = { ...ck.metrics.current };
  }
}

function checkInputs(model: tf.LayersModel, train: ImageDataset): void {
  if (!model || typeof (model as { apply?: unknown }).apply !== 'function') {
    throw new Error('Trainer needs a tf.LayersModel as model');
  }
  if (!train || !(train.pixels instanceof Uint8Array) || !(train.labels instanceof Int32Array)) {
    throw new Error('Trainer needs an ImageDataset as train (pixels: Uint8Array, labels: Int32Array)');
  }
  if (train.count < 1) throw new Error(`Trainer needs at least one training image, got ${train.count}`);
  const input = model.inputs[0]?.shape;
  if (input && (input[1] !== train.height || input[2] !== train.width || input[3] !== train.channels)) {
    throw new Error(
      `model expects images of [${input.slice(1)}] but the training data has [${train.height},${train.width},${train.channels}]`,
    );
  }
  const classes = model.outputs[0]?.shape[1];
  if (typeof classes === 'number' && classes !== train.numClasses) {
    throw new Error(`model outputs ${classes} classes but the training data has ${train.numClasses}`);
  }
}

function dataShape(d: ImageDataset): DataShape {
  return { count: d.count, height: d.height, width: d.width, channels: d.channels, numClasses: d.numClasses };
}

async function toNamedArray(name: string, t: tf.Tensor): Promise<NamedArray> {
  const data = await t.data();
  if (!(data instanceof Float32Array)) throw new Error(`tensor ${name} is ${t.dtype}, checkpoints hold float32 only`);
  return { name, shape: [...t.shape], data: data.slice() };
}

function sameShape(a: readonly (number | null)[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
