import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { guardReport } from '../../../activities/adversarial-train';
import { baselineConfig, epsCurve, evalAttack, trainingConfig } from '../../../activities/spec-to-core';
import { parseSpec } from '../../../schemas/spec';
import type { Spec, SpecInput } from '../../../schemas/spec';
import { parseTrainingConfig } from '../../../tensor/training';

/**
 * Every leaf of a full spec must arrive somewhere: changing it changes what the tensor core receives (through
 * `activities/spec-to-core.ts`), or it is one of the leaves an activity or the workflow reads itself, and then the
 * file named for it reads that key. A new spec field fails here until the full spec below sets it and it reaches
 * the core or gets a named reader (`training.weightDecay` was such a dead leaf).
 */

/** A spec with every leaf set to a non-default value. Variants below cover leaves that exclude each other. */
const FULL: SpecInput = {
  version: 1,
  description: 'every leaf',
  dataset: {
    source: '/data/fm',
    format: 'idx',
    sha256: { 'a.gz': 'a'.repeat(64) },
    trainSize: 1000,
    testSize: 500,
    subset: 'first',
    seed: 3,
    imageSize: 28,
  },
  model: {
    source: { kind: 'train-baseline', epochs: 3, trainSize: 800, batchSize: 64, learningRate: 0.002, seed: 4 },
    architecture: 'small-resnet',
  },
  attack: { norm: 'l2', steps: 5, stepFraction: 0.3, restarts: 2, randomStart: false },
  epsilon: { max: 0.2, kind: 'cosine', warmupEpochs: 2 },
  training: {
    epochs: 6,
    batchSize: 32,
    optimizer: 'sgd',
    momentum: 0.8,
    learningRate: 0.01,
    lrSchedule: 'cosine',
    weightDecay: 0.0005,
    method: 'mart',
    beta: 4,
    labelSmoothing: 0.1,
    gradientAccumulation: 2,
    cleanFraction: 0.2,
    checkpointEveryBatches: 10,
    seed: 5,
    maxLoss: 20,
    probe: { images: 100, steps: 3, maxDrop: 0.3 },
    keepBest: false,
    onOverfitting: 'fail',
  },
  evaluation: {
    attacks: [
      { name: 'a', norm: 'l2', eps: 0.5, steps: 10, restarts: 2, stepFraction: 0.2, randomStart: false },
      { name: 'b', steps: 1 },
    ],
    epsCurve: [0, 0.1],
    testImages: 200,
    batchSize: 50,
    examples: 4,
    suite: 'custom',
    shardImages: 100,
    maxConcurrentShards: 4,
    sanityImages: 32,
  },
  gate: {
    minRobustAccuracy: 0.4,
    maxCleanAccuracyDrop: 0.2,
    attack: 'b',
    failOnMaskingFlags: true,
    requireApproval: true,
    approvalTimeout: '2d',
  },
  artifacts: { bucket: 'models-x', prefix: 'p/q', modelName: 'm' },
  compute: {
    heavyQueue: 'h',
    ioQueue: 'i',
    backend: 'wasm',
    threads: 2,
    trainingTimeout: '1h',
    evaluationTimeout: '30m',
    evaluationHeartbeatTimeout: '2m',
    maxAttemptsWithoutProgress: 3,
    cache: true,
    heartbeatTimeout: '5m',
  },
};

/** A second value for each leaf (path as written by `leaves`). */
const CHANGED: Record<string, unknown> = {
  description: 'changed',
  'dataset.source': '/data/other',
  'dataset.format': 'cifar10-binary',
  'dataset.sha256': { 'b.gz': 'b'.repeat(64) },
  'dataset.trainSize': 900,
  'dataset.testSize': 400,
  'dataset.subset': 'stratified',
  'dataset.seed': 9,
  'dataset.imageSize': 32,
  'model.source.kind': 'artifact',
  'model.source.epochs': 4,
  'model.source.trainSize': 700,
  'model.source.batchSize': 16,
  'model.source.learningRate': 0.003,
  'model.source.seed': 8,
  'model.architecture': 'reference-cnn',
  'attack.norm': 'linf',
  'attack.steps': 6,
  'attack.stepFraction': 0.4,
  'attack.restarts': 3,
  'attack.randomStart': true,
  'epsilon.max': 0.25,
  'epsilon.kind': 'linear',
  'epsilon.warmupEpochs': 3,
  'epsilon.steps.0.epoch': 3,
  'epsilon.steps.0.value': 0.15,
  'training.epochs': 7,
  'training.batchSize': 48,
  'training.optimizer': 'adam',
  'training.momentum': 0.7,
  'training.learningRate': 0.02,
  'training.lrSchedule': 'cyclic',
  'training.weightDecay': 0.001,
  'training.method': 'trades',
  'training.beta': 3,
  'training.tradesBeta': 2,
  'training.labelSmoothing': 0.2,
  'training.gradientAccumulation': 3,
  'training.cleanFraction': 0.3,
  'training.checkpointEveryBatches': 20,
  'training.seed': 6,
  'training.maxLoss': 30,
  'training.probe.images': 50,
  'training.probe.steps': 4,
  'training.probe.maxDrop': 0.4,
  'training.keepBest': true,
  'training.onOverfitting': 'warn',
  'evaluation.attacks.0.name': 'c',
  'evaluation.attacks.0.norm': 'linf',
  'evaluation.attacks.0.eps': 0.6,
  'evaluation.attacks.0.steps': 11,
  'evaluation.attacks.0.restarts': 3,
  'evaluation.attacks.0.stepFraction': 0.3,
  'evaluation.attacks.0.randomStart': true,
  'evaluation.epsCurve': [0, 0.2],
  'evaluation.testImages': 300,
  'evaluation.batchSize': 60,
  'evaluation.examples': 5,
  'evaluation.suite': 'fast',
  'evaluation.shardImages': 50,
  'evaluation.maxConcurrentShards': 2,
  'evaluation.sanityImages': 16,
  'gate.minRobustAccuracy': 0.45,
  'gate.maxCleanAccuracyDrop': 0.25,
  'gate.attack': 'a',
  'gate.requireApproval': false,
  'gate.approvalTimeout': '3d',
  'gate.failOnMaskingFlags': false,
  'artifacts.bucket': 'models-y',
  'artifacts.prefix': 'r',
  'artifacts.modelName': 'n',
  'compute.heavyQueue': 'h2',
  'compute.ioQueue': 'i2',
  'compute.backend': 'cpu',
  'compute.threads': 'auto',
  'compute.trainingTimeout': '2h',
  'compute.evaluationTimeout': '40m',
  'compute.heartbeatTimeout': '6m',
  'compute.evaluationHeartbeatTimeout': '3m',
  'compute.maxAttemptsWithoutProgress': 5,
  'compute.cache': false,
};

/** Leaves the tensor core never sees: who reads each (a file that must mention the key). */
const READERS: Record<string, string> = {
  description: '(a note for people)',
  'dataset.source': 'activities/fetch-dataset.ts',
  'dataset.format': 'activities/fetch-dataset.ts',
  'dataset.sha256': 'activities/fetch-dataset.ts',
  'dataset.trainSize': 'activities/datasets.ts',
  'dataset.testSize': 'activities/datasets.ts',
  'dataset.subset': 'activities/datasets.ts',
  'dataset.seed': 'activities/datasets.ts',
  'dataset.imageSize': 'activities/datasets.ts',
  'model.source.kind': 'activities/prepare-model.ts',
  'model.source.trainSize': 'activities/prepare-model.ts',
  'model.architecture': 'activities/prepare-model.ts',
  'training.checkpointEveryBatches': 'activities/adversarial-train.ts',
  'training.onOverfitting': 'activities/adversarial-train.ts',
  'evaluation.attacks.0.name': 'activities/evaluate.ts',
  'evaluation.testImages': 'activities/datasets.ts',
  'evaluation.batchSize': 'activities/evaluate.ts',
  'evaluation.examples': 'activities/evaluate.ts',
  'evaluation.suite': 'activities/evaluate-shard.ts',
  'evaluation.shardImages': 'workflows/evaluation.ts',
  'evaluation.maxConcurrentShards': 'workflows/evaluation.ts',
  'evaluation.sanityImages': 'activities/evaluate.ts',
  'gate.minRobustAccuracy': 'workflows/gate.ts',
  'gate.maxCleanAccuracyDrop': 'workflows/gate.ts',
  'gate.attack': 'activities/evaluate.ts',
  'gate.requireApproval': 'workflows/hardening-run.ts',
  'gate.approvalTimeout': 'workflows/hardening-run.ts',
  'gate.failOnMaskingFlags': 'workflows/gate.ts',
  'artifacts.bucket': 'activities/adversarial-train.ts',
  'artifacts.prefix': 'activities/models.ts',
  'artifacts.modelName': 'artifacts/store.ts',
  'compute.heavyQueue': 'workflows/hardening-run.ts',
  'compute.ioQueue': 'workflows/hardening-run.ts',
  'compute.backend': 'activities/context.ts',
  // the shards of a batch: resolved per worker (its cores) and per checkpoint, so trainingConfig cannot
  'compute.threads': 'activities/adversarial-train.ts',
  'compute.trainingTimeout': 'workflows/hardening-run.ts',
  'compute.evaluationTimeout': 'workflows/hardening-run.ts',
  'compute.heartbeatTimeout': 'workflows/hardening-run.ts',
  'compute.evaluationHeartbeatTimeout': 'workflows/evaluation.ts',
  'compute.maxAttemptsWithoutProgress': 'workflows/hardening-run.ts',
  'compute.cache': 'activities/step-cache.ts',
};

/** Variants for leaves that exclude others (kind steps, the older tradesBeta). */
const VARIANTS: [SpecInput, (leaf: string) => boolean][] = [
  [FULL, () => true],
  [
    { ...FULL, epsilon: { max: 0.2, kind: 'steps', steps: [{ epoch: 2, value: 0.1 }] } },
    (leaf) => leaf.startsWith('epsilon.steps.'),
  ],
  [
    { ...FULL, training: { ...FULL.training, method: undefined, beta: undefined, tradesBeta: 3 } },
    (leaf) => leaf === 'training.tradesBeta',
  ],
];

/** Leaf paths of a parsed spec (arrays of objects by index; arrays of numbers and records are leaves). */
function leaves(v: unknown, prefix = ''): string[] {
  if (v && typeof v === 'object' && !Array.isArray(v) && !prefix.endsWith('sha256')) {
    return Object.entries(v).flatMap(([k, x]) => (x === undefined ? [] : leaves(x, prefix ? `${prefix}.${k}` : k)));
  }
  if (Array.isArray(v) && v.length && typeof v[0] === 'object') return leaves(v[0], `${prefix}.0`);
  return [prefix];
}

function setIn(input: SpecInput, path: string, value: unknown): SpecInput {
  const copy = structuredClone(input) as Record<string, unknown>;
  const keys = path.split('.');
  let o = copy as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
  o[keys.at(-1)!] = value;
  return copy as SpecInput;
}

/** What the tensor core receives from a spec. */
function coreView(spec: Spec): string {
  const source = spec.model.source;
  return JSON.stringify({
    training: parseTrainingConfig(trainingConfig(spec)),
    baseline: source.kind === 'train-baseline' ? parseTrainingConfig(baselineConfig(source)) : source.kind,
    attacks: spec.evaluation.attacks.map(evalAttack),
    epsCurve: epsCurve(spec),
  });
}

describe('spec → core: every leaf arrives', () => {
  for (const [i, [variant, only]] of VARIANTS.entries()) {
    it(`variant ${i}: each leaf changes the core's input or has a named reader`, () => {
      const base = parseSpec(variant);
      const before = coreView(base);
      const skip = new Set(['version', '$schema']);
      const problems: string[] = [];
      for (const leaf of leaves(base)) {
        if (skip.has(leaf) || leaf.startsWith('evaluation.attacks.1') || !only(leaf)) continue;
        if (!(leaf in CHANGED)) {
          problems.push(`${leaf}: no second value in CHANGED (a new spec field? give it one)`);
          continue;
        }
        // a discriminator: another kind is another shape, read by prepare-model
        const changed =
          leaf === 'model.source.kind'
            ? { ...variant, model: { ...variant.model, source: { kind: 'artifact' as const } } }
            : setIn(variant, leaf, CHANGED[leaf]);
        let spec: Spec;
        try {
          spec = parseSpec(changed);
        } catch (err) {
          problems.push(`${leaf}: the changed value does not parse: ${(err as Error).message}`);
          continue;
        }
        if (coreView(spec) !== before) continue;
        const reader = READERS[leaf];
        if (!reader) {
          problems.push(`${leaf}: changing it changes nothing the core receives, and no reader is named`);
          continue;
        }
        if (reader.startsWith('(')) continue;
        const key = leaf
          .split('.')
          .filter((k) => !/^\d+$/.test(k))
          .at(-1)!;
        if (!new RegExp(`\\b${key}\\b`).test(readFileSync(reader, 'utf8'))) {
          problems.push(`${leaf}: ${reader} is named as its reader but never mentions ${key}`);
        }
      }
      assert.deepEqual(problems, []);
    });
  }

  it('the full spec sets every field of the schema', () => {
    const schema = JSON.parse(readFileSync('schemas/spec.schema.json', 'utf8'));
    const written = new Set(VARIANTS.flatMap(([v]) => leaves(v)));
    const missing: string[] = [];
    const walk = (s: { properties?: Record<string, unknown> }, prefix: string) => {
      for (const [k, sub] of Object.entries(s.properties ?? {})) {
        const path = prefix ? `${prefix}.${k}` : k;
        const node = sub as { properties?: Record<string, unknown>; items?: { properties?: Record<string, unknown> } };
        if (node.properties && !path.endsWith('sha256')) walk(node, path);
        else if (node.items?.properties) walk(node.items, `${path}.0`);
        else if (!written.has(path) && path !== '$schema' && path !== 'model.source') missing.push(path);
      }
    };
    walk(schema, '');
    // deprecated spellings stay out of the full spec (they parse into their new names)
    assert.deepEqual(
      missing.filter((m) => m !== 'attack.stepSize' && m !== 'evaluation.attacks.0.stepSize'),
      [],
    );
  });

  it('catches a dead leaf (weightDecay dropped on the way fails the check)', () => {
    const base = parseSpec(FULL);
    const dropped = (spec: Spec) => {
      const { weightDecay: _w, ...rest } = trainingConfig(spec);
      return JSON.stringify(parseTrainingConfig(rest));
    };
    assert.equal(dropped(base), dropped(parseSpec(setIn(FULL, 'training.weightDecay', 0.001))));
    assert.notEqual(coreView(base), coreView(parseSpec(setIn(FULL, 'training.weightDecay', 0.001))));
  });
});

describe('the guard in the training result', () => {
  it('counts epochs from 1 (0 = the starting model) and words the overfitting warning', () => {
    const r = guardReport({
      bestEpoch: -1,
      bestRobust: 0.62,
      finalEpoch: -1,
      overfitting: { epoch: 0, robust: 0.37, previousEpoch: -1, previousRobust: 0.62 },
      probeRobust: [0.62, 0.37],
    });
    assert.deepEqual(r, {
      keptEpoch: 0,
      bestEpoch: 0,
      bestRobust: 0.62,
      probeRobust: [0.62, 0.37],
      overfitting: { epoch: 1, robust: 0.37, previousEpoch: 0, previousRobust: 0.62 },
      warning:
        'catastrophic overfitting: the probe robust accuracy fell from 0.620 (the starting model) to 0.370 in ' +
        "epoch 1; training stopped and the model is the starting model's",
    });
    const kept = guardReport({ bestEpoch: 2, bestRobust: 0.7, finalEpoch: 2, probeRobust: [0.1, 0.5, 0.6, 0.7, 0.65] });
    assert.equal(kept?.keptEpoch, 3);
    assert.equal(kept?.warning, undefined);
    assert.equal(guardReport(undefined), undefined);
  });
});
