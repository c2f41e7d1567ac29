/** Every example spec validates, and the YAML ones point editors at the JSON Schema. */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadSpec } from '../../../schemas/load';

const examples = fileURLToPath(new URL('../../../examples/', import.meta.url));

test('the expected examples exist', async () => {
  const files = await readdir(examples);
  for (const name of ['fashion-mnist-demo.yaml', 'nightly-production.yaml', 'cifar10-resnet.yaml', 'minimal.json'])
    assert.ok(files.includes(name), `examples/${name} is missing`);
});

test('every example validates', async () => {
  const files = (await readdir(examples)).filter((f) => /\.(ya?ml|json)$/.test(f));
  assert.ok(files.length >= 4);
  for (const name of files) {
    const spec = await loadSpec(join(examples, name));
    assert.equal(spec.version, 1, name);
    if (name.endsWith('.json')) continue;
    const text = await readFile(join(examples, name), 'utf8');
    assert.match(text, /^# yaml-language-server: \$schema=\.\.\/schemas\/spec\.schema\.json$/m, name);
  }
});

test('the examples say what their names promise', async () => {
  const demo = await loadSpec(join(examples, 'fashion-mnist-demo.yaml'));
  assert.equal(demo.epsilon.max, 0.1);
  // The demo re-hardens production, and trains a baseline the first time.
  assert.equal(demo.model.source.kind, 'artifact');
  assert.equal(demo.model.source.kind === 'artifact' && demo.model.source.fallback?.kind, 'train-baseline');
  assert.ok(demo.training.epochs <= 5 && (demo.dataset.trainSize ?? Infinity) <= 10000, 'a small budget');
  // The recipe measured best per second of training (README, "Time to robustness"), with its guard.
  assert.equal(demo.training.method, 'fgsm-rs');
  assert.equal(demo.training.lrSchedule, 'cyclic');
  assert.ok(demo.training.probe.images > 0, 'the probe guard watches for catastrophic overfitting');
  // The demo's robust figure is the worst case under the standard suite; the gate reads it.
  assert.equal(demo.evaluation.suite, 'standard');
  assert.equal(demo.gate.attack, undefined);
  const nightly = await loadSpec(join(examples, 'nightly-production.yaml'));
  assert.deepEqual(
    [nightly.model.source.kind, nightly.model.source.kind === 'artifact' && nightly.model.source.ref],
    ['artifact', 'production'],
  );
  assert.equal(nightly.evaluation.suite, 'fast');
  const cifar = await loadSpec(join(examples, 'cifar10-resnet.yaml'));
  assert.equal(cifar.dataset.format, 'cifar10-binary');
  assert.equal(cifar.model.architecture, 'small-resnet');
  const minimal = await loadSpec(join(examples, 'minimal.json'));
  assert.equal(minimal.training.epochs, 5);
});
