import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { attack } from '../../../../tensor/attacks';
import { batchSeed, evaluate, sampleAdversarialExamples } from '../../../../tensor/eval';
import type { EvalAttack, EvalReport, LabeledImages } from '../../../../tensor/eval';
import { accuracy, setupBackend, tensors, trainedFixture } from '../attacks/fixture';
import type { Images } from '../attacks/fixture';

let model: tf.LayersModel;
let data: Images;

const attacks: EvalAttack[] = [
  { name: 'fgsm-0.1', method: 'fgsm', norm: 'linf', eps: 0.1 },
  { name: 'pgd5-0.1', norm: 'linf', eps: 0.1, steps: 5, stepSize: 0.03 },
  { name: 'pgd5-l2-1', norm: 'l2', eps: 1, steps: 5, stepSize: 0.4 },
  // Random noise only: flips some clean mistakes to right answers, which must not count as robust.
  { name: 'noise-0.2', norm: 'linf', eps: 0.2, steps: 0 },
];
const epsCurve = { norm: 'linf' as const, steps: 5, epsilons: [0, 0.01, 0.03, 0.1] };
let report: EvalReport;
let progress: [number, number][];

before(async () => {
  await setupBackend();
  const fixture = await trainedFixture();
  model = fixture.model;
  data = fixture.testSet;
  progress = [];
  const start = tf.memory().numTensors;
  report = await evaluate(model, data, {
    attacks,
    epsCurve,
    batchSize: 64,
    seed: 3,
    onProgress: (done, total) => {
      progress.push([done, total]);
    },
  });
  assert.equal(tf.memory().numTensors, start, 'evaluate leaked tensors');
});

after(() => model.dispose());

describe('evaluate', () => {
  it('reports clean accuracy, confusion and per-class accuracy that agree with the data', () => {
    const { x, y } = tensors(data);
    const acc = accuracy(model, x, y);
    tf.dispose([x, y]);
    assert.equal(report.count, 200);
    assert.ok(Math.abs(report.cleanAccuracy - acc) < 1e-6, `clean ${report.cleanAccuracy} vs ${acc}`);
    assert.equal(report.cleanCorrect, Math.round(acc * 200));
    assert.equal(
      report.confusion.flat().reduce((a, b) => a + b, 0),
      200,
    );
    const hist = new Array(10).fill(0);
    for (const l of data.labels) hist[l]++;
    assert.deepEqual(report.perClassCount, hist);
    report.perClassAccuracy.forEach((a, c) => {
      assert.equal(a, hist[c] === 0 ? null : report.confusion[c][c] / hist[c]);
    });
    assert.equal(
      report.confusion.reduce((a, row, c) => a + row[c], 0),
      report.cleanCorrect,
    );
  });

  it("per-class robust accuracy adds up to each attack's robust count and never exceeds clean", () => {
    assert.equal(report.perClassRobust.length, report.attacks.length);
    report.perClassRobust.forEach((r, i) => {
      assert.equal(r.attack, report.attacks[i].name);
      const images = r.accuracy.reduce<number>((n, a, c) => n + (a ?? 0) * report.perClassCount[c], 0);
      assert.equal(Math.round(images), report.attacks[i].robustCorrect);
      r.accuracy.forEach((a, c) => assert.ok((a ?? 0) <= (report.perClassAccuracy[c] ?? 0) + 1e-9, `class ${c}`));
    });
  });

  it('counts an image robust only when it is right both clean and under attack', async () => {
    // Recompute rows independently with the same per-batch seeds.
    const recount = (i: number) => {
      let both = 0;
      let advOnly = 0;
      for (let start = 0, b = 0; start < 200; start += 64, b++) {
        const size = Math.min(64, 200 - start);
        const xb = tf.tensor4d(data.images.subarray(start * 784, (start + size) * 784), [size, 28, 28, 1]);
        const yb = tf.tensor1d(data.labels.subarray(start, start + size), 'int32');
        const adv = attack(model, xb, yb, { ...attacks[i], seed: batchSeed(3, i, b) });
        const [n, m] = tf.tidy(() => {
          const okClean = tf.equal(tf.argMax(model.predict(xb) as tf.Tensor2D, 1), yb);
          const okAdv = tf.equal(tf.argMax(model.predict(adv) as tf.Tensor2D, 1), yb);
          return [
            tf.sum(tf.cast(tf.logicalAnd(okClean, okAdv), 'int32')).dataSync()[0],
            tf.sum(tf.cast(okAdv, 'int32')).dataSync()[0],
          ];
        });
        both += n;
        advOnly += m;
        tf.dispose([xb, yb, adv]);
      }
      return { both, advOnly };
    };
    assert.equal(report.attacks[1].robustCorrect, recount(1).both);
    const noise = recount(3);
    assert.ok(noise.advOnly > noise.both, 'test precondition: noise makes some clean mistakes right');
    assert.equal(report.attacks[3].robustCorrect, noise.both);
    for (const a of report.attacks) {
      assert.ok(a.robustCorrect <= report.cleanCorrect, `${a.name}: robust ${a.robustCorrect} > clean`);
      assert.ok(Math.abs(a.attackSuccessRate - (report.cleanCorrect - a.robustCorrect) / report.cleanCorrect) < 1e-12);
    }
    const [fg, pgd] = report.attacks;
    assert.ok(
      pgd.robustAccuracy < report.cleanAccuracy / 3,
      `PGD robust ${pgd.robustAccuracy} vs clean ${report.cleanAccuracy}`,
    );
    assert.ok(pgd.robustCorrect <= fg.robustCorrect, 'PGD at least as strong as FGSM');
    assert.deepEqual(
      report.attacks.map((a) => [a.name, a.method, a.norm, a.steps]),
      [
        ['fgsm-0.1', 'fgsm', 'linf', 1],
        ['pgd5-0.1', 'pgd', 'linf', 5],
        ['pgd5-l2-1', 'pgd', 'l2', 5],
        ['noise-0.2', 'pgd', 'linf', 0],
      ],
    );
  });

  it('reports a non-increasing ε curve that starts at clean accuracy', () => {
    const points = report.epsCurve!.points;
    assert.deepEqual(
      points.map((p) => p.eps),
      epsCurve.epsilons,
    );
    assert.equal(points[0].robustCorrect, report.cleanCorrect);
    for (let j = 1; j < points.length; j++) {
      assert.ok(points[j].robustCorrect <= points[j - 1].robustCorrect, `ε curve rises at ${points[j].eps}`);
      assert.ok(Math.abs(points[j].stepSize - (2.5 / 5) * points[j].eps) < 1e-12);
    }
    assert.ok(points[3].robustCorrect < points[0].robustCorrect / 3);
  });

  it('is plain JSON, reports progress per batch and timing', () => {
    assert.deepEqual(JSON.parse(JSON.stringify(report)), report);
    assert.deepEqual(progress, [
      [64, 200],
      [128, 200],
      [192, 200],
      [200, 200],
    ]);
    assert.ok(report.seconds > 0 && report.examplesPerSecond > 0);
  });

  it('repeats exactly and reads byte pixels like float images', async () => {
    const bytes = Uint8Array.from(data.images, (v) => Math.round(v * 255));
    const floats = Float32Array.from(bytes, (v) => v / 255);
    const opts = { attacks: [attacks[1]], batchSize: 50, limit: 100 };
    const fromBytes = await evaluate(model, { ...data, images: undefined, pixels: bytes }, opts);
    const fromFloats = await evaluate(model, { ...data, images: floats }, opts);
    const strip = (r: EvalReport) => ({ ...r, seconds: 0, examplesPerSecond: 0 });
    assert.deepEqual(strip(fromBytes), strip(fromFloats));
    assert.equal(fromBytes.count, 100);
  });

  it('stops when the signal aborts, leaving no tensors', async () => {
    const controller = new AbortController();
    const start = tf.memory().numTensors;
    await assert.rejects(
      evaluate(model, data, {
        attacks: [attacks[1]],
        batchSize: 50,
        signal: controller.signal,
        onProgress: (done) => {
          if (done === 50) controller.abort(new Error('cancelled by test'));
        },
      }),
      /cancelled by test/,
    );
    assert.equal(tf.memory().numTensors, start);
  });

  it('rejects data that does not fit the model, with the numbers', async () => {
    const wrong: LabeledImages = {
      ...data,
      height: 32,
      width: 32,
      channels: 3,
      images: new Float32Array(200 * 32 * 32 * 3),
    };
    await assert.rejects(evaluate(model, wrong), /expects input \[28,28,1\] but dataset images are \[32,32,3\]/);
    const badLabels = Int32Array.from(data.labels);
    badLabels[7] = 12;
    await assert.rejects(evaluate(model, { ...data, labels: badLabels }), /label of image 7 is 12, expected 0\.\.9/);
    await assert.rejects(
      evaluate(model, { ...data, images: data.images.subarray(0, 100) }),
      /needs 156800 values, images has 100/,
    );
  });
});

describe('sampleAdversarialExamples', () => {
  it('returns fooled clean/adversarial pairs first, as bytes with predictions', async () => {
    const start = tf.memory().numTensors;
    const out = await sampleAdversarialExamples(model, data, attacks[1], { count: 4, pool: 16 });
    assert.equal(tf.memory().numTensors, start);
    assert.equal(out.samples.length, 4);
    assert.deepEqual(JSON.parse(JSON.stringify(out)), out);
    for (const s of out.samples) {
      assert.equal(s.clean.length, 784);
      assert.equal(s.adversarial.length, 784);
      assert.ok(s.clean.every((v) => Number.isInteger(v) && v >= 0 && v <= 255));
      assert.ok(s.linf <= 0.1 + 1e-6);
      assert.equal(s.label, data.labels[s.index]);
      assert.ok(s.fooled, 'with this model and ε=0.1 the pool holds at least 4 fooled images');
      assert.notEqual(s.adversarialPrediction, s.label);
      assert.equal(s.cleanPrediction, s.label);
      assert.ok(s.cleanConfidence > 0 && s.cleanConfidence <= 1);
    }
    const cleanPred = tf.tidy(() => {
      const { x } = tensors(data, 16);
      return Array.from(tf.argMax(model.predict(x) as tf.Tensor2D, 1).dataSync());
    });
    for (const s of out.samples) assert.equal(s.cleanPrediction, cleanPred[s.index]);
  });
});
