import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pgdLinf } from '../../../../tensor/attacks';
import {
  buildReferenceCnn,
  buildSmallResNet,
  loadModel,
  loadModelFromBytes,
  logitsFunction,
  outputKind,
  saveModel,
  saveModelToBytes,
  validateModelForDataset,
} from '../../../../tensor/models';
import { setupBackend } from '../attacks/fixture';

let dir: string;

before(async () => {
  await setupBackend();
  dir = await mkdtemp(join(tmpdir(), 'tempered-models-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function predict(model: tf.LayersModel, x: tf.Tensor): Float32Array {
  return tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
}

/** A dense classifier on 4×4×1 images; `head` says how it ends. */
function tinyModel(head: 'logits' | 'dense-softmax' | 'activation-softmax' | 'softmax-layer'): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.flatten({ inputShape: [4, 4, 1] }));
  model.add(
    tf.layers.dense({ units: 8, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
  );
  model.add(
    tf.layers.dense({
      units: 3,
      activation: head === 'dense-softmax' ? 'softmax' : 'linear',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
    }),
  );
  if (head === 'activation-softmax') model.add(tf.layers.activation({ activation: 'softmax' }));
  if (head === 'softmax-layer') model.add(tf.layers.softmax());
  return model;
}

describe('buildSmallResNet', () => {
  it('maps [n,32,32,3] images to [n,10] logits, reproducibly with a seed, without leaks', () => {
    const start = tf.memory().numTensors;
    const a = buildSmallResNet({ inputShape: [32, 32, 3], numClasses: 10, seed: 4 });
    const b = buildSmallResNet({ seed: 4 });
    const x = tf.randomUniform([2, 32, 32, 3], 0, 1, 'float32', 1);
    try {
      const out = tf.tidy(() => a.predict(x) as tf.Tensor);
      assert.deepEqual(out.shape, [2, 10]);
      out.dispose();
      assert.deepEqual(predict(a, x), predict(b, x));
      assert.ok(
        a.layers.some((l) => l.getClassName() === 'Add'),
        'has residual additions',
      );
      assert.equal(outputKind(a), 'logits');
    } finally {
      x.dispose();
      a.dispose();
      b.dispose();
    }
    assert.equal(tf.memory().numTensors, start);
  });

  it('rejects a bad input shape', () => {
    assert.throws(() => buildSmallResNet({ inputShape: [32, 32] as unknown as [number, number, number] }), /\[32,32\]/);
  });
});

describe('validateModelForDataset', () => {
  it('names both shapes when input or output do not match', () => {
    const cnn = buildReferenceCnn();
    try {
      assert.throws(
        () => validateModelForDataset(cnn, { height: 32, width: 32, channels: 3, numClasses: 10 }),
        /model 'reference_cnn' expects input \[28,28,1\] but dataset images are \[32,32,3\]/,
      );
      assert.throws(
        () => validateModelForDataset(cnn, { height: 28, width: 28, channels: 1, numClasses: 5 }),
        /outputs \[10\] per image but the dataset has 5 classes/,
      );
      const ok = validateModelForDataset(cnn, { height: 28, width: 28, channels: 1, numClasses: 10 });
      assert.deepEqual(ok, { output: 'logits', warnings: [] });
    } finally {
      cnn.dispose();
    }
  });

  it('accepts a softmax model with a warning', () => {
    const m = tinyModel('dense-softmax');
    try {
      const check = validateModelForDataset(m, { height: 4, width: 4, channels: 1, numClasses: 3 });
      assert.equal(check.output, 'probabilities');
      assert.match(check.warnings[0], /softmax/);
    } finally {
      m.dispose();
    }
  });
});

describe('logitsFunction', () => {
  for (const head of ['dense-softmax', 'activation-softmax', 'softmax-layer'] as const) {
    it(`returns the scores before the softmax (${head}) and restores the model`, () => {
      const plain = tinyModel('logits');
      const soft = tinyModel(head);
      const x = tf.randomUniform([5, 4, 4, 1], 0, 1, 'float32', 3);
      const start = tf.memory().numTensors;
      try {
        assert.equal(outputKind(soft), 'probabilities');
        const want = tf.tidy(() => (plain.apply(x) as tf.Tensor).dataSync());
        const got = tf.tidy(() => logitsFunction(soft)(x as tf.Tensor4D).dataSync());
        assert.deepEqual(got, want);
        const probs = tf.tidy(() => (soft.predict(x) as tf.Tensor).sum(1).dataSync());
        for (const s of probs) assert.ok(Math.abs(s - 1) < 1e-5, 'the model still outputs probabilities afterwards');
        assert.equal(tf.memory().numTensors, start);
      } finally {
        x.dispose();
        plain.dispose();
        soft.dispose();
      }
    });
  }

  it('lets attacks on a softmax model see the same gradients as on its logits twin', () => {
    const plain = tinyModel('logits');
    const soft = tinyModel('dense-softmax');
    const x = tf.randomUniform([6, 4, 4, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const y = tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32');
    try {
      const a = pgdLinf(plain, x, y, { eps: 0.2, steps: 3, stepSize: 0.1, seed: 1 });
      const b = pgdLinf(soft, x, y, { eps: 0.2, steps: 3, stepSize: 0.1, seed: 1 });
      assert.deepEqual(b.dataSync(), a.dataSync());
      tf.dispose([a, b]);
    } finally {
      tf.dispose([x, y]);
      plain.dispose();
      soft.dispose();
    }
  });
});

describe('save and load', () => {
  it('round-trips through bytes in the tfjs-node layout with identical predictions', async () => {
    const start = tf.memory().numTensors;
    const model = buildReferenceCnn({ seed: 9 });
    const x = tf.randomUniform([3, 28, 28, 1], 0, 1, 'float32', 2);
    try {
      const files = await saveModelToBytes(model);
      assert.deepEqual(Object.keys(files).sort(), ['model.json', 'weights.bin']);
      const json = JSON.parse(new TextDecoder().decode(files['model.json']));
      assert.deepEqual(Object.keys(json).slice(0, 2), ['modelTopology', 'weightsManifest']);
      assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
      const params = model.countParams();
      assert.equal(files['weights.bin'].byteLength, params * 4);
      const loaded = await loadModelFromBytes(files);
      try {
        assert.deepEqual(predict(loaded, x), predict(model, x));
      } finally {
        loaded.dispose();
      }
    } finally {
      x.dispose();
      model.dispose();
    }
    assert.equal(tf.memory().numTensors, start);
  });

  it('round-trips a functional model (small ResNet) through a folder', async () => {
    const model = buildSmallResNet({ inputShape: [8, 8, 3], widths: [4, 8], seed: 1 });
    const x = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 2);
    const folder = join(dir, 'resnet');
    try {
      const saved = await saveModel(model, folder);
      assert.deepEqual(saved.files, [join(folder, 'weights.bin'), join(folder, 'model.json')]);
      const loaded = await loadModel(folder);
      try {
        assert.deepEqual(predict(loaded, x), predict(model, x));
      } finally {
        loaded.dispose();
      }
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it('names the file when model.json or weights.bin is missing, corrupt or the wrong size', async () => {
    const model = tinyModel('logits');
    const files = await saveModelToBytes(model);
    model.dispose();
    const start = tf.memory().numTensors;
    await assert.rejects(
      loadModelFromBytes({ 'weights.bin': files['weights.bin'] }),
      /^ModelFileError: model\.json: missing/,
    );
    await assert.rejects(
      loadModelFromBytes({ ...files, 'model.json': new TextEncoder().encode('{"modelTopology": ') }),
      /model\.json: not valid JSON/,
    );
    await assert.rejects(
      loadModelFromBytes({ ...files, 'weights.bin': files['weights.bin'].subarray(4) }),
      new RegExp(`weights\\.bin: ${files['weights.bin'].byteLength - 4} bytes of weights but model\\.json describes`),
    );
    await assert.rejects(loadModelFromBytes({ 'model.json': files['model.json'] }), /weights\.bin: missing/);

    const folder = join(dir, 'broken');
    const another = tinyModel('logits');
    const saved = await saveModel(another, folder);
    another.dispose();
    assert.equal(saved.files.length, 2);
    await writeFile(join(folder, 'weights.bin'), (await readFile(join(folder, 'weights.bin'))).subarray(8));
    await assert.rejects(loadModel(folder), (err: Error) => err.message.startsWith(join(folder, 'weights.bin')));
    await rm(join(folder, 'model.json'));
    await assert.rejects(loadModel(folder), new RegExp(`${join(folder, 'model.json')}: missing`));
    assert.equal(tf.memory().numTensors, start);
  });
});
