/**
 * One data-parallel worker thread (started by bench/parallel/pool.ts): its own tfjs backend and its own copy of
 * the master model. Per job it crafts adversarial examples for its shard of the shared batch and either writes the
 * gradient of the shard's mean cross-entropy (wrt the trainable weights) to its slot of the shared gradient buffer,
 * or replies with the predicted classes. It reloads the master's packed weights whenever their version changes.
 */
import * as tf from '@tensorflow/tfjs';
import { parentPort, workerData } from 'node:worker_threads';
import { attack } from '../../tensor/attacks';
import { initBackend } from '../../tensor/backend';
import { crossEntropy } from '../../tensor/losses';
import { logitsFunction } from '../../tensor/models/logits';
import type { FromWorker, Job, SharedBatch, ToWorker, WorkerInit } from './protocol';

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);

/** Trainable weights first, then the rest: the packing order of the shared weights and gradients. */
const ordered = (model: tf.LayersModel) => [...model.trainableWeights, ...model.nonTrainableWeights];

let model: tf.LayersModel;
let batch: SharedBatch | undefined;
let loadedVersion = -1;
const weights = new Float32Array(init.weights);
const grads = new Float32Array(init.grads, init.index * init.paramCount * 4, init.paramCount);

/** Copies the shared packed weights into the model (one upload, split on the backend). */
function loadWeights() {
  tf.tidy(() => {
    const sizes = init.weightShapes.map((s) => s.reduce((a, b) => a * b, 1));
    const parts = tf.split(tf.tensor1d(weights), sizes);
    ordered(model).forEach((w, i) => w.write(tf.reshape(parts[i], init.weightShapes[i])));
  });
}

/** The job's shard as tensors the caller disposes. */
function shard(job: Job): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const [h, w, c] = job.imageShape;
  const pixels = h * w * c;
  const n = job.end - job.start;
  const images = new Float32Array(batch!.images, job.start * pixels * 4, n * pixels);
  const labels = new Int32Array(batch!.labels, job.start * 4, n);
  return { x: tf.tensor4d(images, [n, h, w, c]), y: tf.tensor1d(labels, 'int32') };
}

async function run(job: Job): Promise<void> {
  if (job.batch) batch = job.batch;
  if (job.weightsVersion !== loadedVersion) {
    loadWeights();
    loadedVersion = job.weightsVersion;
  }
  const { x, y } = shard(job);
  let adv: tf.Tensor4D | undefined;
  try {
    adv = job.attack ? attack(model, x, y, job.attack) : undefined;
    const input = adv ?? x;
    if (job.kind === 'predict') {
      const pred = tf.tidy(() => tf.argMax(logitsFunction(model)(input), 1).toInt());
      const predictions = (await pred.data()) as Int32Array;
      pred.dispose();
      post({ type: 'predictions', id: job.id, predictions });
      return;
    }
    const forward = logitsFunction(model, { training: true });
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads: named } = tf.variableGrads(() => crossEntropy(forward(input), y), vars);
    const packed = tf.tidy(() => tf.concat(vars.map((v) => tf.reshape(named[v.name], [-1]))));
    tf.dispose(Object.values(named));
    try {
      grads.set((await packed.data()) as Float32Array);
      const loss = (await value.data())[0];
      post({ type: 'gradients', id: job.id, loss });
    } finally {
      tf.dispose([packed, value]);
    }
  } finally {
    tf.dispose([x, y]);
    adv?.dispose();
  }
}

try {
  const report = await initBackend(init.backend, { log: () => {} });
  model = await tf.models.modelFromJSON({ modelTopology: JSON.parse(init.topology) });
  const sizes = ordered(model).map((w) => w.shape.reduce((a: number, b) => a * (b ?? 1), 1));
  const expected = init.weightShapes.map((s) => s.reduce((a, b) => a * b, 1));
  if (sizes.join() !== expected.join()) {
    throw new Error(`worker ${init.index} built weights of sizes [${sizes}] but the master has [${expected}]`);
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
