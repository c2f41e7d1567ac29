/**
 * npx tsx bench/square_fab.ts --model DIR [--attack square|fab-t] [--images 200] [--batch 500] [--eps 0.1]
 *   [--norm linf|l2] [--queries 5000] [--iterations 100] [--targets 9] [--seed 0] [--backend auto|wasm|cpu|…]
 *
 * Runs one of tempered's Square or FAB-T attacks on its own (not after the others) against a saved layers model on
 * the first N Fashion-MNIST test images, attacking the images classified correctly, and prints one JSON line
 * {"attack","backend","images","clean","robust","seconds","secondsPer1000","cpuSeconds"}. Compare with the same attack alone in
 * PyTorch: `crosscheck/.venv/bin/python crosscheck/torch_autoattack.py --model DIR --images N --attacks square --json`.
 */
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { fabTargeted } from '../tensor/attacks/fab';
import type { Norm } from '../tensor/attacks/options';
import { squareAttack } from '../tensor/attacks/square';
import { initBackend } from '../tensor/backend';
import type { BackendPreference } from '../tensor/backend';
import { FASHION_MNIST_DIR, firstIndices, loadFashionMnist, makeBatch } from '../tensor/data';
import { loadModel, logitsFunction } from '../tensor/models';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    attack: { type: 'string', default: 'square' },
    images: { type: 'string', default: '200' },
    batch: { type: 'string', default: '500' },
    eps: { type: 'string', default: '0.1' },
    norm: { type: 'string', default: 'linf' },
    queries: { type: 'string', default: '5000' },
    iterations: { type: 'string', default: '100' },
    targets: { type: 'string', default: '9' },
    seed: { type: 'string', default: '0' },
    backend: { type: 'string', default: 'auto' },
    'data-dir': { type: 'string', default: FASHION_MNIST_DIR },
  },
});
const int = (name: keyof typeof values) => {
  const v = Number(values[name]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be an integer ≥ 0, got ${values[name]}`);
  return v;
};
if (!values.model) throw new Error('--model DIR is required');
if (values.attack !== 'square' && values.attack !== 'fab-t') throw new Error(`--attack must be square or fab-t`);
if (values.norm !== 'linf' && values.norm !== 'l2') throw new Error(`--norm must be linf or l2`);
const norm = values.norm as Norm;
const eps = Number(values.eps);
const attack =
  values.attack === 'square'
    ? squareAttack({ queries: int('queries') })
    : fabTargeted({ iterations: int('iterations'), targets: int('targets') });

await initBackend(values.backend as BackendPreference);
const test = await loadFashionMnist(values['data-dir'] as string, 'test');
const images = int('images');
const order = firstIndices(test.count, images);
const model = await loadModel(values.model);
const logits = logitsFunction(model);
const numClasses = model.outputs[0].shape[1] as number;
let clean = 0;
let robust = 0;
const t0 = performance.now();
const cpu0 = process.cpuUsage();
for (let start = 0; start < images; start += int('batch')) {
  const { x, y } = makeBatch(test, order, start, int('batch'));
  const correct = tf.tidy(() => tf.equal(tf.argMax(logits(x), 1), y));
  const found = await tf.whereAsync(correct);
  const keep = tf.tidy(() => tf.cast(tf.reshape(found, [-1]), 'int32'));
  found.dispose();
  const xs = tf.gather(x, keep) as tf.Tensor4D;
  const ys = tf.gather(y, keep) as tf.Tensor1D;
  clean += xs.shape[0];
  const adv = await attack({ logits, x: xs, y: ys, norm, eps, numClasses, seed: int('seed') + start });
  robust += tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits(adv), 1), ys), 'int32')).dataSync()[0]);
  tf.dispose([x, y, correct, keep, xs, ys, adv]);
  process.stderr.write(`  ${Math.min(start + int('batch'), images)}/${images}: robust ${robust}/${clean} clean\n`);
}
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
model.dispose();
console.log(
  JSON.stringify({
    attack: values.attack,
    backend: tf.getBackend(),
    norm,
    eps,
    images,
    clean: clean / images,
    robust: robust / images,
    seconds: Math.round(seconds * 10) / 10,
    secondsPer1000: Math.round((seconds * 10000) / images) / 10,
    // CPU time of this process: on a shared machine a steadier measure than the wall clock.
    cpuSeconds: Math.round((cpu.user + cpu.system) / 1e5) / 10,
  }),
);
