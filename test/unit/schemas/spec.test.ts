/** The spec schema: defaults, strictness, error lines (path, value, what is allowed), cross-field checks. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatPath, formatValue } from '../../../schemas/errors';
import {
  DEFAULT_DATASET_SOURCE,
  DEFAULT_HEAVY_QUEUE,
  DEFAULT_IO_QUEUE,
  SpecError,
  formatSpecErrors,
  parseSpec,
  safeParseSpec,
  sourceKind,
  specWarnings,
} from '../../../schemas/spec';

/** The error lines of a spec that must not validate. */
function errors(input: unknown): string[] {
  const result = safeParseSpec(input);
  assert.equal(result.success, false, 'expected the spec to be rejected');
  return formatSpecErrors(result.error!);
}

describe('defaults', () => {
  test('{ version: 1 } is a complete spec: Fashion-MNIST, a fresh reference CNN, L∞ PGD at ε = 0.1', () => {
    const spec = parseSpec({ version: 1 });
    assert.equal(spec.dataset.source, DEFAULT_DATASET_SOURCE);
    assert.equal(spec.dataset.format, 'idx');
    assert.equal(spec.dataset.subset, 'stratified');
    assert.deepEqual(spec.model, {
      source: { kind: 'train-baseline', epochs: 2, batchSize: 128, learningRate: 0.001, seed: 0 },
      architecture: 'reference-cnn',
    });
    assert.deepEqual(spec.attack, { norm: 'linf', steps: 7, restarts: 1, randomStart: true });
    assert.deepEqual(spec.epsilon, { max: 0.1, kind: 'linear', warmupEpochs: 1 });
    assert.equal(spec.training.epochs, 5);
    assert.equal(spec.training.optimizer, 'adam');
    assert.equal(spec.training.tradesBeta, undefined);
    assert.deepEqual(spec.evaluation.attacks, [
      { name: 'pgd20', norm: 'linf', steps: 20, restarts: 1, stepFraction: 0.25, randomStart: true, eps: 0.1 },
    ]);
    assert.deepEqual(spec.evaluation.epsCurve, [0, 0.025, 0.05, 0.075, 0.1, 0.15]);
    assert.deepEqual(spec.gate, {
      minRobustAccuracy: 0.5,
      maxCleanAccuracyDrop: 0.1,
      requireApproval: false,
      approvalTimeout: '7d',
      failOnMaskingFlags: true,
    });
    assert.equal(spec.evaluation.suite, 'standard');
    assert.equal(spec.evaluation.shardImages, 250);
    assert.equal(spec.evaluation.maxConcurrentShards, 8);
    assert.equal(spec.evaluation.sanityImages, 64);
    assert.deepEqual(spec.artifacts, { bucket: 'tempered', prefix: 'models', modelName: 'classifier' });
    assert.equal(spec.compute.heavyQueue, DEFAULT_HEAVY_QUEUE);
    assert.equal(spec.compute.ioQueue, DEFAULT_IO_QUEUE);
    assert.equal(spec.compute.backend, 'auto');
  });

  test('derived defaults follow epsilon.max; explicit values win', () => {
    const spec = parseSpec({
      version: 1,
      epsilon: { max: 0.2 },
      evaluation: { attacks: [{ name: 'a' }, { name: 'b', eps: 0.05 }], epsCurve: [0, 0.3] },
    });
    assert.deepEqual(
      spec.evaluation.attacks.map((a) => a.eps),
      [0.2, 0.05],
    );
    assert.deepEqual(spec.evaluation.epsCurve, [0, 0.3]);
    assert.deepEqual(
      parseSpec({ version: 1, epsilon: { max: 0.3 } }).evaluation.epsCurve,
      [0, 0.075, 0.15, 0.225, 0.3, 0.45],
    );
  });

  test('the suite: standard when nothing is listed, custom for a spec that lists attacks (old specs), or as named', () => {
    assert.equal(parseSpec({ version: 1 }).evaluation.suite, 'standard');
    const old = parseSpec({ version: 1, evaluation: { attacks: [{ name: 'fgsm', steps: 1 }] } });
    assert.equal(old.evaluation.suite, 'custom');
    assert.deepEqual(
      old.evaluation.attacks.map((a) => a.name),
      ['fgsm'],
    );
    const both = parseSpec({ version: 1, evaluation: { suite: 'fast', attacks: [{ name: 'pgd50', steps: 50 }] } });
    assert.equal(both.evaluation.suite, 'fast');
    assert.equal(both.evaluation.attacks[0].name, 'pgd50');
    const named = parseSpec({ version: 1, evaluation: { suite: 'custom' } });
    assert.deepEqual(
      named.evaluation.attacks.map((a) => a.name),
      ['pgd20'],
    );
    for (const s of [old, both, named, parseSpec({ version: 1 })]) assert.deepEqual(parseSpec(s), s);
  });

  test('the gate may name a suite attack or a listed one; listed names may not shadow the suite', () => {
    assert.equal(parseSpec({ version: 1, gate: { attack: 'apgd-t' } }).gate.attack, 'apgd-t');
    assert.equal(parseSpec({ version: 1, gate: { attack: 'pgd20' } }).gate.attack, 'pgd20');
    assert.deepEqual(errors({ version: 1, evaluation: { suite: 'fast' }, gate: { attack: 'square' } }), [
      'gate.attack: got "square", expected one of the evaluation attacks: apgd-ce, apgd-t, pgd20',
    ]);
    assert.deepEqual(errors({ version: 1, evaluation: { suite: 'standard', attacks: [{ name: 'square' }] } }), [
      'evaluation.attacks[0].name: got "square", expected a name the standard suite does not use',
    ]);
    assert.deepEqual(errors({ version: 1, evaluation: { suite: 'bogus' } }).length, 1);
  });

  test('parsing is idempotent: a parsed spec parses to itself', () => {
    for (const input of [
      { version: 1 },
      { version: 1, model: { source: { kind: 'artifact', fallback: 'train-baseline' } } },
    ]) {
      const once = parseSpec(input);
      assert.deepEqual(parseSpec(once), once);
    }
  });

  test('model sources: artifact (with the train-baseline shorthand fallback), folder, s3', () => {
    const artifact = parseSpec({ version: 1, model: { source: { kind: 'artifact', fallback: 'train-baseline' } } });
    assert.deepEqual(artifact.model.source, {
      kind: 'artifact',
      ref: 'production',
      fallback: { kind: 'train-baseline', epochs: 2, batchSize: 128, learningRate: 0.001, seed: 0 },
    });
    const v3 = parseSpec({ version: 1, model: { source: { kind: 'artifact', ref: 'v3' } } });
    assert.deepEqual(v3.model.source, { kind: 'artifact', ref: 'v3' });
    assert.equal(
      parseSpec({ version: 1, model: { source: { kind: 'folder', path: './m' } } }).model.source.kind,
      'folder',
    );
    assert.equal(
      parseSpec({ version: 1, model: { source: { kind: 's3', uri: 's3://models/cnn/v1' } } }).model.source.kind,
      's3',
    );
  });

  test('dataset sources: local paths, http(s) URLs and s3://bucket/key', () => {
    for (const source of ['/data/fmnist', './data', 'data/x', 'https://example.org/f.tar.gz', 's3://bucket/key/x']) {
      assert.equal(parseSpec({ version: 1, dataset: { source } }).dataset.source, source);
    }
    assert.equal(sourceKind('/data'), 'local');
    assert.equal(sourceKind('http://h/x'), 'http');
    assert.equal(sourceKind('s3://b/k'), 's3');
  });

  test('a $schema key (for editors) is allowed', () => {
    assert.equal(parseSpec({ $schema: '../schemas/spec.schema.json', version: 1 }).version, 1);
  });
});

describe('errors', () => {
  test('every problem at once, one line each: path, value given, what is allowed', () => {
    assert.deepEqual(
      errors({
        version: 1,
        dataset: { source: 'ftp://host/x', format: 'png', trainSize: 0 },
        training: { epochs: -1, batchSize: 1.5, optimizer: 'rmsprop', learningRate: 0 },
        gate: { approvalTimeout: 'a week', minRobustAccuracy: 1.2 },
        evaluation: { attacks: [] },
      }),
      [
        'dataset.source: got "ftp://host/x", expected a local path, an http(s):// URL or s3://bucket/key',
        'dataset.format: got "png", expected one of "idx" | "cifar10-binary" | "image-folder"',
        'dataset.trainSize: got 0, expected an integer >= 1',
        'training.epochs: got -1, expected an integer >= 1',
        'training.batchSize: got 1.5, expected an integer',
        'training.optimizer: got "rmsprop", expected one of "adam" | "sgd"',
        'training.learningRate: got 0, expected a number > 0',
        'evaluation.attacks: got [], expected at least 1 item',
        'gate.minRobustAccuracy: got 1.2, expected a number <= 1',
        'gate.approvalTimeout: got "a week", expected a duration such as 90s, 2 minutes, 12h or 7d',
      ],
    );
  });

  test('unknown keys are errors, with the nearest allowed key suggested', () => {
    const lines = errors({ version: 1, epsilion: 0.3, training: { epoch: 3 }, attack: { zzz: 1 } });
    assert.ok(lines.includes(lines.find((l) => l.startsWith('epsilion: unknown key (did you mean epsilon?)'))!));
    assert.ok(
      lines.some((l) => l.startsWith('training.epoch: unknown key (did you mean epochs?); allowed keys: epochs,')),
    );
    assert.ok(
      lines.some((l) =>
        /^attack\.zzz: unknown key; allowed keys: norm, steps, stepFraction, stepSize, restarts, randomStart$/.test(l),
      ),
    );
    assert.equal(lines.length, 3);
  });

  test('missing and mistyped values', () => {
    assert.deepEqual(errors({}), ['version: missing, expected 1']);
    assert.deepEqual(errors({ version: 2 }), ['version: got 2, expected 1']);
    assert.deepEqual(errors('version: 1'), ['(spec): got "version: 1", expected an object (a mapping of keys)']);
    assert.deepEqual(errors({ version: 1, training: 5 }), ['training: got 5, expected an object (a mapping of keys)']);
    // Cross-field checks wait for valid fields instead of tripping over them.
    assert.deepEqual(errors({ version: 1, evaluation: { attacks: 5 }, gate: { attack: 'x' } }), [
      'evaluation.attacks: got 5, expected a list',
    ]);
  });

  test('model sources: unknown kind, fields of the chosen kind, bad shorthand', () => {
    assert.deepEqual(errors({ version: 1, model: { source: { kind: 'cloud' } } }), [
      'model.source.kind: got "cloud", expected one of "artifact" | "folder" | "s3" | "train-baseline"',
    ]);
    assert.deepEqual(errors({ version: 1, model: { source: { kind: 'folder' } } }), [
      'model.source.path: missing, expected a string',
    ]);
    const [line] = errors({ version: 1, model: { source: { kind: 'folder', path: 'm', epochs: 3 } } });
    assert.equal(line, 'model.source.epochs: unknown key; allowed keys: kind, path');
    assert.deepEqual(errors({ version: 1, model: { source: { kind: 'artifact', fallback: 'retrain' } } }), [
      'model.source.fallback: got "retrain", expected "train-baseline" or an object (a mapping of keys)',
    ]);
    assert.deepEqual(
      errors({ version: 1, model: { source: { kind: 'artifact', fallback: { kind: 'train-baseline', epochs: 0 } } } }),
      ['model.source.fallback.epochs: got 0, expected an integer >= 1'],
    );
    assert.deepEqual(errors({ version: 1, model: { source: { kind: 's3', uri: 'https://x/y' } } }), [
      'model.source.uri: got "https://x/y", expected s3://bucket/key',
    ]);
  });

  test('sha256 entries name the file', () => {
    assert.deepEqual(errors({ version: 1, dataset: { sha256: { 'train-images-idx3-ubyte.gz': 'abc' } } }), [
      'dataset.sha256["train-images-idx3-ubyte.gz"]: got "abc", expected 64 hex digits (a SHA-256 digest)',
    ]);
  });

  test('parseSpec throws a SpecError naming the origin and listing every line', () => {
    assert.throws(
      () => parseSpec({ version: 1, training: { epochs: 0 } }, 'run.yaml'),
      (err: unknown) =>
        err instanceof SpecError &&
        err.origin === 'run.yaml' &&
        err.lines.length === 1 &&
        err.message === 'run.yaml: invalid spec\n  training.epochs: got 0, expected an integer >= 1',
    );
  });

  test('paths and values are printed for people', () => {
    assert.equal(formatPath(['evaluation', 'attacks', 0, 'eps']), 'evaluation.attacks[0].eps');
    assert.equal(formatPath(['dataset', 'sha256', 'a.gz']), 'dataset.sha256["a.gz"]');
    assert.equal(formatPath([]), '(spec)');
    assert.equal(formatValue('x'.repeat(100)).length, 60);
    assert.equal(formatValue(Number.NaN), 'NaN');
  });
});

describe('cross-field checks', () => {
  test('a steps schedule stays within training.epochs, increases, and stays <= epsilon.max', () => {
    assert.deepEqual(
      errors({
        version: 1,
        training: { epochs: 4 },
        epsilon: {
          kind: 'steps',
          max: 0.1,
          steps: [
            { epoch: 1, value: 0.05 },
            { epoch: 1, value: 0.08 },
            { epoch: 6, value: 0.2 },
          ],
        },
      }),
      [
        'epsilon.steps[1].epoch: got 1, expected epochs in increasing order (after 1)',
        'epsilon.steps[2].epoch: got 6, expected an epoch within training.epochs (1..4)',
        'epsilon.steps[2].value: got 0.2, expected a value <= epsilon.max (0.1)',
      ],
    );
    const ok = parseSpec({
      version: 1,
      training: { epochs: 4 },
      epsilon: {
        kind: 'steps',
        steps: [
          { epoch: 1, value: 0.05 },
          { epoch: 3, value: 0.1 },
        ],
      },
    });
    assert.equal(ok.epsilon.steps?.length, 2);
  });

  test('steps go with kind steps only', () => {
    assert.deepEqual(errors({ version: 1, epsilon: { kind: 'steps' } }), [
      'epsilon.steps: epsilon.kind is steps, so a steps list is required',
    ]);
    assert.deepEqual(errors({ version: 1, epsilon: { kind: 'constant', steps: [{ epoch: 1, value: 0.1 }] } }), [
      'epsilon.steps: epsilon.kind is constant: steps apply only to kind steps (got [{"epoch":1,"value":0.1}])',
    ]);
  });

  test('warm-up fits in training; attack names are unique; the gate names an existing attack', () => {
    assert.deepEqual(errors({ version: 1, training: { epochs: 2 }, epsilon: { warmupEpochs: 3 } }), [
      'epsilon.warmupEpochs: got 3, expected at most training.epochs (2) warm-up epochs',
    ]);
    assert.deepEqual(
      errors({ version: 1, evaluation: { attacks: [{ name: 'pgd' }, { name: 'pgd' }] }, gate: { attack: 'cw' } }),
      [
        'evaluation.attacks[1].name: got "pgd", expected a name not used by an earlier attack',
        'gate.attack: got "cw", expected one of the evaluation attacks: pgd, pgd',
      ],
    );
  });
});

describe('vocabulary: stepFraction', () => {
  test('attack.stepFraction is the step as a fraction of ε; the older stepSize is read as it, with a warning', () => {
    assert.equal(parseSpec({ version: 1, attack: { stepFraction: 0.5 } }).attack.stepFraction, 0.5);
    const old = { version: 1, attack: { stepSize: 0.4 } };
    assert.equal(parseSpec(old).attack.stepFraction, 0.4);
    assert.ok(!('stepSize' in parseSpec(old).attack));
    assert.deepEqual(specWarnings(old), [
      'attack.stepSize: deprecated, write attack.stepFraction (the same fraction of ε)',
    ]);
    assert.deepEqual(specWarnings({ version: 1, attack: { stepFraction: 0.4 } }), []);
    const evalOld = { version: 1, evaluation: { attacks: [{ name: 'a', stepSize: 0.5 }, { name: 'b' }] } };
    assert.deepEqual(
      parseSpec(evalOld).evaluation.attacks.map((a) => a.stepFraction),
      [0.5, 0.25],
    );
    assert.deepEqual(specWarnings(evalOld), [
      'evaluation.attacks.0.stepSize: deprecated, write evaluation.attacks.0.stepFraction (the same fraction of ε)',
    ]);
    // a parsed spec parses to itself
    const parsed = parseSpec(old);
    assert.deepEqual(parseSpec(parsed), parsed);
  });
});
