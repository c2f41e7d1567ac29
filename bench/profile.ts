/**
 * Kernel profile of the bench workload on one backend: time per kernel name for one PGD gradient step
 * (the attack's input gradient) and for the training step's weight gradients, summed over repeats.
 * Usage: tsx bench/profile.ts [wasm|cpu] [repeats]
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../tensor/backend';
import type { BackendName } from '../tensor/backend';
import { buildReferenceCnn } from '../tensor/models/reference-cnn';
import { DEFAULT_WORKLOAD, loadPgd } from './workload';

const [name = 'wasm', repeats = '5'] = process.argv.slice(2);
await initBackend(name as BackendName, { log: () => {} });
const w = DEFAULT_WORKLOAD;
const model = buildReferenceCnn({ seed: 1 });
const x = tf.randomUniform([w.batch, 28, 28, 1], 0, 1, 'float32', 2) as tf.Tensor4D;
const y = tf.randomUniform([w.batch], 0, 10, 'int32', 3) as tf.Tensor1D;
const onehot = tf.oneHot(y, 10);
const optimizer = tf.train.sgd(0.01);
const { pgd } = await loadPgd(w.eps);

async function profileOf(label: string, f: () => void) {
  f();
  const totals = new Map<string, { ms: number; n: number }>();
  let wall = 0;
  for (let r = 0; r < Number(repeats); r++) {
    const t0 = performance.now();
    const info = await tf.profile(f);
    wall += performance.now() - t0;
    for (const k of info.kernels) {
      const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      const e = totals.get(k.name) ?? { ms: 0, n: 0 };
      e.ms += ms;
      e.n += 1;
      totals.set(k.name, e);
    }
  }
  const reps = Number(repeats);
  const rows = [...totals.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const sum = rows.reduce((s, [, e]) => s + e.ms, 0);
  process.stdout.write(`\n${label}: ${(wall / reps).toFixed(1)} ms wall, ${(sum / reps).toFixed(1)} ms in kernels\n`);
  for (const [k, e] of rows) {
    process.stdout.write(`  ${k.padEnd(24)} ${(e.ms / reps).toFixed(2).padStart(8)} ms  ×${e.n / reps}\n`);
  }
}

await profileOf('PGD-1 (attack with one step)', () => {
  pgd(model, x, y, 1, 0).dispose();
});
await profileOf('train step (weight gradients + sgd, clean batch)', () => {
  optimizer.minimize(
    () => tf.losses.softmaxCrossEntropy(onehot, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
  );
});
tf.dispose([x, y, onehot]);
optimizer.dispose();
model.dispose();
