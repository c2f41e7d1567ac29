/**
 * One data-parallel worker thread (started by tensor/parallel/pool.ts): its own tfjs backend and its own copy of
 * the master model. Per job it either runs one shard of a training batch (`runShard`, the same code the main
 * thread runs when it has no pool) or predicts after an attack. Before a shard it reloads the master's packed
 * weights whenever they changed or its last shard moved its batch-norm statistics, so every shard starts from the
 * master's state.
 */
import * as tf from '@tensorflow/tfjs';
import { parentPort, workerData } from 'node:worker_threads';
import { attack } from '../attacks';
import { initBackend } from '../backend';
import { logitsFunction } from '../models/logits';
import { runShard, unpackWeights } from '../training/shards';
import type { FromWorker, Job, SharedBatch, ToWorker, WorkerInit } from './protocol';

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

let model: tf.LayersModel;
let batch: SharedBatch | undefined;
let loadedVersion = -1;
const weights = new Float32Array(init.weights);

/** The examples `[start, end)` of the shared batch as tensors the caller disposes. */
function slice(job: Job, start: number, end: number): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const [h, w, c] = job.imageShape;
  const pixels = h * w * c;
  const n = end - start;
  const images = new Float32Array(batch!.images, start * pixels * 4, n * pixels);
  const labels = new Int32Array(batch!.labels, start * 4, n);
  return { x: tf.tensor4d(images, [n, h, w, c]), y: tf.tensor1d(labels, 'int32') };
}

async function run(job: Job): Promise<void> {
  if (job.batch) batch = job.batch;
  if (job.weightsVersion !== loadedVersion) {
    unpackWeights([...model.trainableWeights, ...model.nonTrainableWeights], weights);
    loadedVersion = job.weightsVersion;
  }
  if (job.kind === 'predict') {
    const { x, y } = slice(job, job.start, job.end);
    try {
      const pred = tf.tidy(() => {
        const adv = job.attack ? attack(model, x, y, job.attack) : x;
        return tf.argMax(logitsFunction(model)(adv), 1).toInt();
      });
      const predictions = (await pred.data()) as Int32Array;
      pred.dispose();
      post({ type: 'predictions', id: job.id, predictions });
    } finally {
      tf.dispose([x, y]);
    }
    return;
  }
  const { shard } = job;
  const { x, y } = slice(job, shard.start, shard.end);
  try {
    const r = await runShard(model, x, y, job.config, { ...shard, start: 0, end: shard.end - shard.start });
    // the training-mode pass moved this copy's batch-norm statistics: the next shard starts from the master's again
    if (model.nonTrainableWeights.length > 0) loadedVersion = -1;
    post({ type: 'gradients', id: job.id, ...r }, [r.grads.buffer as ArrayBuffer, r.stats.buffer as ArrayBuffer]);
  } finally {
    tf.dispose([x, y]);
  }
}

try {
  const report = await initBackend(init.backend, { log: () => {} });
  model = await tf.models.modelFromJSON({ modelTopology: JSON.parse(init.topology) });
  const sizes = [...model.trainableWeights, ...model.nonTrainableWeights].map((w) => w.shape.join('x'));
  const expected = init.weightShapes.map((s) => s.join('x'));
  if (sizes.join() !== expected.join()) {
    throw new Error(`worker ${init.index} built weights of shapes [${sizes}] but the master has [${expected}]`);
  }
  port.on('message', (m: ToWorker) => {
    run(m.job).catch((err: unknown) =>
      post({ type: 'error', id: m.job.id, message: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
    );
  });
  post({ type: 'ready', simd: report.simd });
} catch (err) {
  post({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
}
