/**
 * crosscheck/torch_attack.py, the independent PyTorch check: models saved by tempered are rebuilt in PyTorch and must
 * reproduce the tfjs logits; its attacks must lower accuracy and stay in the ε-ball. Skipped, with the reason, where
 * torch does not import (CI installs Debian's python3-torch).
 */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildReferenceCnn, saveModel } from '../../../tensor/models';
import { tfjsLogits } from '../../../crosscheck/tfjs-logits';
import {
  DEFAULT_PYTHON,
  parseTorchAttackArgs,
  TORCH_ATTACK_SCRIPT,
  torchUnavailable,
} from '../../../crosscheck/torch-attack';
import { fashion, FASHION_DIR, setupBackend, train } from '../tensor/attacks/fixture';

interface AttackJson {
  model: string;
  images: number;
  eps: number;
  clean: number;
  attacks: Record<string, number>;
  worstCase: number;
  seconds: number;
  logitsMaxAbsDiff?: number;
  selfCheck?: { maxLinfDistance: number };
}

/** Runs the Python script; returns its exit code, stderr and (with --json) the parsed last stdout line. */
function torchAttack(args: string[]): { status: number | null; stderr: string; json?: AttackJson } {
  const r = spawnSync(DEFAULT_PYTHON, [TORCH_ATTACK_SCRIPT, '--data-dir', FASHION_DIR, '--threads', '1', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  const json = r.status === 0 && args.includes('--json') ? (JSON.parse(last) as AttackJson) : undefined;
  return { status: r.status, stderr: r.stderr, json };
}

/** Saves `model` to `dir`, writes its tfjs logits of the first `images` test images, returns the logits file. */
async function saveWithLogits(model: tf.LayersModel, dir: string, images: number): Promise<string> {
  await saveModel(model, dir);
  const start = tf.memory().numTensors;
  const logits = await tfjsLogits({ model: dir, images, dataDir: FASHION_DIR });
  assert.equal(tf.memory().numTensors, start, 'tfjsLogits leaves no tensors behind');
  assert.equal(logits.logits.length, images);
  const file = join(dir, 'tfjs-logits.json');
  await writeFile(file, JSON.stringify(logits));
  return file;
}

describe('attack:torch arguments', () => {
  it('keeps --backend, --python and --no-verify, reads --model/--images/--data-dir and forwards the rest', () => {
    const a = parseTorchAttackArgs([
      '--model=/m',
      '--images',
      '50',
      '--eps',
      '0.2',
      '--backend',
      'cpu',
      '--python=/opt/py',
      '--json',
      '--no-verify',
    ]);
    assert.deepEqual([a.model, a.images, a.backend, a.python, a.verify], ['/m', 50, 'cpu', '/opt/py', false]);
    assert.deepEqual(a.forward, ['--model', '/m', '--images', '50', '--eps', '0.2', '--json']);
    const d = parseTorchAttackArgs(['--model', 'x']);
    assert.deepEqual([d.images, d.backend, d.verify], [1000, 'auto', true]);
    assert.throws(() => parseTorchAttackArgs(['--images', '5']), /--model DIR is required/);
    assert.throws(
      () => parseTorchAttackArgs(['--model', 'x', '--images', '0']),
      /--images must be an integer ≥ 1, got 0/,
    );
    assert.throws(() => parseTorchAttackArgs(['--model']), /--model needs a value/);
  });
});

const missingTorch = torchUnavailable();

describe('crosscheck/torch_attack.py', { skip: missingTorch }, () => {
  let dir: string;

  before(async () => {
    await setupBackend();
    dir = await mkdtemp(join(tmpdir(), 'tempered-torch-attack-'));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('rebuilds a trained reference CNN to 1e-4 of the tfjs logits; its attacks lower accuracy within ε', async () => {
    const model = buildReferenceCnn({ seed: 5 });
    const modelDir = join(dir, 'reference');
    let file: string;
    try {
      await train(model, await fashion(0, 400), 2, 50);
      file = await saveWithLogits(model, modelDir, 48);
    } finally {
      model.dispose();
    }
    const { status, stderr, json } = torchAttack([
      '--model',
      modelDir,
      '--images',
      '48',
      '--verify',
      file,
      '--self-check',
      '--json',
    ]);
    assert.equal(status, 0, stderr);
    assert.ok(json);
    assert.ok(json.logitsMaxAbsDiff !== undefined && json.logitsMaxAbsDiff <= 1e-4, `Δ ${json.logitsMaxAbsDiff}`);
    assert.ok(json.clean >= 0.4, `a briefly trained CNN classifies ${json.clean} of 48 clean images`);
    assert.deepEqual(Object.keys(json.attacks), ['fgsm', 'pgd20-ce', 'pgd100-ce', 'pgd100-cw']);
    for (const [name, acc] of Object.entries(json.attacks)) {
      assert.ok(acc < json.clean, `${name} leaves accuracy at ${acc} (clean ${json.clean})`);
      assert.ok(json.worstCase <= acc, `worst case ${json.worstCase} above ${name} ${acc}`);
    }
    assert.ok(json.attacks['pgd20-ce'] <= json.attacks.fgsm + 1e-9, 'PGD is at least as strong as FGSM here');
    assert.ok(json.selfCheck && json.selfCheck.maxLinfDistance <= 0.1 + 1e-6);
    assert.ok(json.selfCheck.maxLinfDistance > 0.09, 'the attacks use their budget');
  });

  it("reproduces TF's asymmetric 'same' padding, strides, missing biases and a softmax head", async () => {
    const init = (seed: number) => tf.initializers.glorotUniform({ seed });
    const bias = (seed: number) => tf.initializers.randomUniform({ minval: -0.3, maxval: 0.3, seed });
    const model = tf.sequential();
    // 28 → 14 with stride 2: one row/column of padding, at the bottom/right only.
    model.add(
      tf.layers.conv2d({
        inputShape: [28, 28, 1],
        filters: 4,
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        activation: 'relu',
        useBias: false,
        kernelInitializer: init(1),
      }),
    );
    model.add(
      tf.layers.conv2d({
        filters: 6,
        kernelSize: [5, 3],
        padding: 'same',
        kernelInitializer: init(2),
        biasInitializer: bias(3),
      }),
    );
    // 14 → 7 (pads 0/1), then 7 → 4 (pads 0/1): max-pool 'same' padding is −∞ at the bottom/right.
    model.add(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }));
    model.add(tf.layers.maxPooling2d({ poolSize: 2, padding: 'same' }));
    model.add(tf.layers.flatten());
    model.add(tf.layers.dense({ units: 16, activation: 'relu', kernelInitializer: init(4), biasInitializer: bias(5) }));
    model.add(tf.layers.dropout({ rate: 0.5 }));
    model.add(
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(6), biasInitializer: bias(7) }),
    );
    const modelDir = join(dir, 'same-padding');
    let file: string;
    try {
      file = await saveWithLogits(model, modelDir, 32);
    } finally {
      model.dispose();
    }
    const { status, stderr, json } = torchAttack([
      '--model',
      modelDir,
      '--images',
      '32',
      '--attacks',
      'fgsm,pgd20-ce',
      '--verify',
      file,
      '--self-check',
      '--json',
    ]);
    assert.equal(status, 0, stderr);
    assert.ok(json?.logitsMaxAbsDiff !== undefined && json.logitsMaxAbsDiff <= 1e-4, `Δ ${json?.logitsMaxAbsDiff}`);
    assert.match(stderr, /softmax removed/);
    assert.match(stderr, /conv 3×3×4\/2 same relu nobias/);
  });

  it('fails the check when the logits do not match, and names an unsupported layer and its file', async () => {
    const model = tf.sequential();
    model.add(tf.layers.flatten({ inputShape: [28, 28, 1] }));
    model.add(tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }));
    const denseDir = join(dir, 'dense');
    let file: string;
    try {
      file = await saveWithLogits(model, denseDir, 8);
    } finally {
      model.dispose();
    }
    // Another model's logits: the conversion check must fail with exit code 4.
    const wrong = join(dir, 'wrong-logits.json');
    const other = buildReferenceCnn({ seed: 9 });
    try {
      await saveModel(other, join(dir, 'other'));
    } finally {
      other.dispose();
    }
    await writeFile(
      wrong,
      JSON.stringify(await tfjsLogits({ model: join(dir, 'other'), images: 8, dataDir: FASHION_DIR })),
    );
    const mismatch = torchAttack(['--model', denseDir, '--images', '8', '--attacks', 'fgsm', '--verify', wrong]);
    assert.equal(mismatch.status, 4, mismatch.stderr);
    assert.match(mismatch.stderr, /differ from .*wrong-logits\.json by/);
    const ok = torchAttack(['--model', denseDir, '--images', '8', '--attacks', 'fgsm', '--verify', file, '--json']);
    assert.equal(ok.status, 0, ok.stderr);

    const bn = tf.sequential();
    bn.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 2, kernelSize: 3 }));
    bn.add(tf.layers.batchNormalization());
    bn.add(tf.layers.flatten());
    bn.add(tf.layers.dense({ units: 10 }));
    const bnDir = join(dir, 'batchnorm');
    try {
      await saveModel(bn, bnDir);
    } finally {
      bn.dispose();
    }
    const refused = torchAttack(['--model', bnDir, '--images', '4']);
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, /batchnorm\/model\.json: layer \S+ has class BatchNormalization/);
  });
});
