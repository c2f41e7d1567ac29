/** A plausible finished Fashion-MNIST run, for the report tests (and screenshots). */
import type { ExamplePixels } from '../../../report/build';
import { Spec } from '../../../schemas/spec';
import type { Metrics, RunSummary } from '../../../schemas/payloads';
import { FASHION_MNIST_CLASSES } from '../../../tensor/data/idx';

export const CLASS_NAMES = [...FASHION_MNIST_CLASSES];

export const EVIL = '<script>alert("x")</script>';

export const spec = Spec.parse({
  version: 1,
  description: `demo with a hostile description ${EVIL}`,
  dataset: { source: '/usr/share/datasets/fashion-mnist', trainSize: 6000, testSize: 1000 },
  epsilon: { max: 0.1 },
  evaluation: {
    attacks: [
      { name: 'fgsm', steps: 1, stepSize: 1, randomStart: false },
      { name: 'pgd10', steps: 10 },
    ],
    testImages: 500,
  },
  gate: { minRobustAccuracy: 0.4, maxCleanAccuracyDrop: 0.15, attack: 'pgd10' },
  artifacts: { modelName: 'fashion-mnist-demo' },
});

const perClass = (clean: number[], robust: number[]) =>
  clean.map((c, label) => ({ label, name: CLASS_NAMES[label], clean: c, robust: robust[label], images: 50 }));

export const baseline: Metrics = {
  clean: 0.874,
  robust: [
    { attack: 'fgsm', eps: 0.1, accuracy: 0.126 },
    { attack: 'pgd10', eps: 0.1, accuracy: 0.018 },
  ],
  epsCurve: [
    { eps: 0, accuracy: 0.874 },
    { eps: 0.025, accuracy: 0.412 },
    { eps: 0.05, accuracy: 0.121 },
    { eps: 0.075, accuracy: 0.04 },
    { eps: 0.1, accuracy: 0.018 },
    { eps: 0.15, accuracy: 0.002 },
  ],
  perClass: perClass(
    [0.82, 0.96, 0.8, 0.86, 0.78, 0.94, 0.62, 0.92, 0.96, 0.94],
    [0.0, 0.08, 0.0, 0.02, 0.0, 0.02, 0.0, 0.04, 0.02, 0.0],
  ),
  confusion: [],
  examples: [],
  images: 500,
  seconds: 41.2,
  backend: 'wasm',
};

const CORRECT = [40, 48, 37, 42, 36, 46, 28, 45, 47, 46];
const CONFUSED_WITH: Record<number, number[]> = { 0: [6, 3], 2: [4, 6], 4: [2, 6], 6: [0, 2, 4], 9: [7, 5], 7: [9, 5] };
/** 50 images per class: the correct ones on the diagonal, the rest spread over the usual confusions. */
const confusion = CLASS_NAMES.map((_, i) => {
  const others = CONFUSED_WITH[i] ?? [(i + 1) % 10];
  const wrong = 50 - CORRECT[i];
  return CLASS_NAMES.map((__, j) => {
    if (i === j) return CORRECT[i];
    const k = others.indexOf(j);
    if (k < 0) return 0;
    return Math.floor(wrong / others.length) + (k < wrong % others.length ? 1 : 0);
  });
});

export const hardened: Metrics = {
  clean: 0.792,
  robust: [
    { attack: 'fgsm', eps: 0.1, accuracy: 0.583 },
    { attack: 'pgd10', eps: 0.1, accuracy: 0.517 },
  ],
  epsCurve: [
    { eps: 0, accuracy: 0.792 },
    { eps: 0.025, accuracy: 0.731 },
    { eps: 0.05, accuracy: 0.664 },
    { eps: 0.075, accuracy: 0.59 },
    { eps: 0.1, accuracy: 0.517 },
    { eps: 0.15, accuracy: 0.338 },
  ],
  perClass: perClass(
    [0.8, 0.96, 0.74, 0.84, 0.72, 0.92, 0.56, 0.9, 0.94, 0.92],
    [0.5, 0.86, 0.36, 0.6, 0.38, 0.62, 0.18, 0.56, 0.7, 0.62],
  ),
  confusion,
  examples: [],
  images: 500,
  seconds: 63.9,
  backend: 'wasm',
};

export const summary: RunSummary = {
  status: 'completed',
  workflowId: 'harden-fashion-mnist-demo-2025-01-31',
  modelName: `fashion-mnist-demo ${EVIL}`,
  stage: 'done',
  dataset: {
    key: 'datasets/sha256-abc',
    source: '/usr/share/datasets/fashion-mnist',
    format: 'idx',
    sha256s: {
      'train-images-idx3-ubyte.gz': 'b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7',
      't10k-images-idx3-ubyte.gz': 'cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa',
    },
    counts: { train: 6000, test: 1000, classes: 10 },
    imageShape: [28, 28, 1],
    classNames: CLASS_NAMES,
  },
  baselineModel: { uri: 's3://tempered/models/fashion-mnist-demo/baseline' },
  baseline: { clean: 0.874, robust: 0.018, robustByAttack: baseline.robust },
  hardened: { clean: 0.792, robust: 0.517, robustByAttack: hardened.robust },
  gate: {
    passed: true,
    reasons: [
      'robust accuracy under pgd10 is 51.7%, at least the required 40.0%',
      'clean accuracy fell 8.2 pp from 87.4%, within the allowed 15.0 pp',
    ],
    decidedBy: 'gate',
  },
  artifact: {
    uri: 's3://tempered/models/fashion-mnist-demo/v7',
    version: 'v7',
    promoted: true,
    productionUri: 's3://tempered/models/fashion-mnist-demo/production',
  },
  checkpoints: 9,
  checkpointKey: 'runs/harden-fashion-mnist-demo-2025-01-31/r1/ckpt-000180',
  timings: {
    'fetching-dataset': 1.4,
    'preparing-model': 95.2,
    'baseline-eval': 41.2,
    training: 1843.7,
    benchmark: 63.9,
    promoting: 0.8,
  },
  backend: 'wasm',
  warnings: [`a warning mentioning ${EVIL}`],
};

/** A 28 × 28 garment-ish silhouette (floats in [0, 1]) and its FGSM-like ±ε sign perturbation. */
function garment(kind: number, seed: number): { clean: Float32Array; adversarial: Float32Array } {
  const h = 28;
  const w = 28;
  const clean = new Float32Array(h * w);
  const adversarial = new Float32Array(h * w);
  let s = seed * 9301 + 49297;
  const rand = () => (s = (s * 9301 + 49297) % 233280) / 233280;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const cx = Math.abs(x - 13.5);
      let inside: boolean;
      if (kind === 1) inside = y > 3 && y < 25 && cx < 7 && !(y > 10 && cx < 1.5);
      else if (kind === 9) inside = (y > 6 && y < 22 && x > 8 && x < 16) || (y >= 17 && y < 23 && x > 8 && x < 24);
      else inside = y > 4 && y < 25 && (cx < 6 || (y < 13 && cx < 11 + (kind % 3)));
      const v = inside ? 0.55 + 0.35 * Math.sin((x + y * 0.7 + kind) / 3) ** 2 : 0;
      clean[y * w + x] = v;
      adversarial[y * w + x] = Math.min(1, Math.max(0, v + (rand() < 0.5 ? -0.1 : 0.1)));
    }
  }
  return { clean, adversarial };
}

export function examplePixels(): ExamplePixels[] {
  const cases: [number, number, number][] = [
    [0, 0, 6],
    [1, 1, 1],
    [9, 9, 7],
    [4, 4, 2],
    [3, 3, 0],
    [8, 8, 8],
  ];
  return cases.map(([label, cleanPrediction, adversarialPrediction], i) => {
    const { clean, adversarial } = garment(label, i + 1);
    return {
      label,
      name: CLASS_NAMES[label],
      cleanPrediction,
      adversarialPrediction,
      attack: 'pgd10',
      eps: 0.1,
      clean,
      adversarial,
      height: 28,
      width: 28,
      channels: 1,
    };
  });
}

// A run under the standard suite, with PGD-20 listed beside it: the worst case, the waterfall, the sanity panel.

export const suiteSpec = Spec.parse({
  ...spec,
  evaluation: { ...spec.evaluation, suite: 'standard', attacks: [{ name: 'pgd20', steps: 20 }], testImages: 1000 },
  gate: { minRobustAccuracy: 0.5, maxCleanAccuracyDrop: 0.15 },
});

const interval = (low: number, high: number) => ({ low, high });

export const suiteBaseline: Metrics = {
  ...baseline,
  images: 1000,
  robust: [{ attack: 'pgd20', eps: 0.1, accuracy: 0.009, interval: interval(0.0047, 0.017) }],
  suite: 'standard',
  suiteAttacks: [
    { attack: 'apgd-ce', broke: 868, accuracyAfter: 0.006, interval: interval(0.0028, 0.013) },
    { attack: 'apgd-t', broke: 6, accuracyAfter: 0, interval: interval(0, 0.0038) },
    { attack: 'fab-t', broke: 0, accuracyAfter: 0, interval: interval(0, 0.0038) },
    { attack: 'square', broke: 0, accuracyAfter: 0, interval: interval(0, 0.0038) },
  ],
  worstCase: { accuracy: 0, robust: 0, eps: 0.1, interval: interval(0, 0.0038) },
};

export const suiteHardened: Metrics = {
  ...hardened,
  clean: 0.805,
  cleanInterval: interval(0.7794, 0.8283),
  images: 1000,
  robust: [{ attack: 'pgd20', eps: 0.1, accuracy: 0.618, interval: interval(0.5875, 0.6476) }],
  suite: 'standard',
  suiteAttacks: [
    { attack: 'apgd-ce', broke: 213, accuracyAfter: 0.592, interval: interval(0.5613, 0.622) },
    { attack: 'apgd-t', broke: 15, accuracyAfter: 0.577, interval: interval(0.5462, 0.6072) },
    { attack: 'fab-t', broke: 0, accuracyAfter: 0.577, interval: interval(0.5462, 0.6072) },
    { attack: 'square', broke: 0, accuracyAfter: 0.577, interval: interval(0.5462, 0.6072) },
  ],
  worstCase: { accuracy: 0.576, robust: 576, eps: 0.1, interval: interval(0.5452, 0.6062) },
  sanity: [
    { name: 'eps-monotone', fired: false, evaluated: true, numbers: { points: 6, largestRise: -0.05, margin: 0.0156 } },
    { name: 'large-eps', fired: false, evaluated: true, numbers: { eps: 1, accuracy: 0, robust: 0 } },
    {
      name: 'single-step',
      fired: false,
      evaluated: true,
      numbers: { brokenOnlyBySingleStep: 0, singleStep: 0.69, iterative: 0.59 },
    },
    {
      name: 'more-iterations',
      fired: false,
      evaluated: true,
      numbers: { weaker: 0.61, stronger: 0.6, drop: 0.01, margin: 0.06 },
    },
    {
      name: 'black-box',
      fired: false,
      evaluated: true,
      numbers: { whiteBox: 0.577, afterBlackBox: 0.577, broke: 0, upper: 0.6072 },
    },
    { name: 'zero-gradients', fired: false, evaluated: true, numbers: { share: 0, images: 64 } },
    { name: 'softmax-output', fired: false, evaluated: true, numbers: { share: 0 } },
    { name: 'non-deterministic', fired: false, evaluated: true, numbers: { maxDifference: 0 } },
  ],
};

export const suiteSummary: RunSummary = {
  ...summary,
  baseline: { clean: suiteBaseline.clean, robust: 0, robustByAttack: suiteBaseline.robust },
  hardened: { clean: suiteHardened.clean, robust: 0.576, robustByAttack: suiteHardened.robust },
  gate: {
    passed: true,
    decidedBy: 'gate',
    reasons: [
      'robust accuracy 57.6% (95% interval 54.5%–60.6%) as the per-example worst case over the standard suite ' +
        '(apgd-ce, apgd-t, fab-t, square) and pgd20 (ε=0.1) meets the required 50.0%',
      'clean accuracy 80.5% vs baseline 87.4%: a drop of 6.9%, within the allowed 15.0%',
      'no gradient-masking flag fired (8 sanity checks)',
    ],
  },
};
