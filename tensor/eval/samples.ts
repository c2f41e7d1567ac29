import * as tf from '@tensorflow/tfjs';
import { attack } from '../attacks/pgd';
import { resolveAttack } from '../attacks/options';
import type { ResolvedAttack } from '../attacks/options';
import { logitsFunction } from '../models/logits';
import { validateModelForDataset } from '../models/validate';
import { batchTensors, checkLabeledImages, span } from './data';
import type { LabeledImages } from './data';
import type { EvalAttack } from './evaluate';

export interface SampleOptions {
  /** Pairs to return. Default 8. */
  count?: number;
  /** Which images to consider. Default: the first `pool` images. */
  indices?: number[];
  /** Images considered when `indices` is not given. Default 4 × count. */
  pool?: number;
  /** Prefer images the model gets right clean and wrong under attack. Default true. */
  preferFooled?: boolean;
}

/** One clean/adversarial pair. Images are NHWC bytes (0..255, `height × width × channels`), ready to draw. */
export interface AdversarialSample {
  index: number;
  label: number;
  cleanPrediction: number;
  /** Softmax probability of the predicted class. */
  cleanConfidence: number;
  adversarialPrediction: number;
  adversarialConfidence: number;
  /** Whether the model is right on the clean image and wrong on the adversarial one. */
  fooled: boolean;
  /** ‖adv − clean‖∞ and ‖adv − clean‖₂ in [0,1] pixel units (computed before rounding to bytes). */
  linf: number;
  l2: number;
  clean: number[];
  adversarial: number[];
}

export interface AdversarialSamples {
  height: number;
  width: number;
  channels: number;
  classNames?: readonly string[];
  attack: ResolvedAttack & { name: string };
  samples: AdversarialSample[];
}

/**
 * A few clean/adversarial image pairs with the model's predictions, for a run report. Attacks the candidate images
 * in one batch (so keep `pool` small), then picks fooled pairs first (when `preferFooled`) in index order.
 * JSON-serialisable; leaves no tensors behind.
 */
export async function sampleAdversarialExamples(
  model: tf.LayersModel,
  data: LabeledImages,
  spec: EvalAttack,
  options: SampleOptions = {},
): Promise<AdversarialSamples> {
  const { count = 8, preferFooled = true } = options;
  if (!Number.isInteger(count) || count < 0) throw new Error(`count must be an integer ≥ 0, got ${count}`);
  checkLabeledImages(data);
  validateModelForDataset(model, data);
  const indices = options.indices ?? Array.from(span(0, Math.min(options.pool ?? 4 * count, data.count)));
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i >= data.count) throw new Error(`index ${i} is outside 0..${data.count - 1}`);
  }
  const a = resolveAttack({ ...spec, seed: spec.seed ?? 0 });
  if (indices.length === 0 || count === 0) {
    return {
      height: data.height,
      width: data.width,
      channels: data.channels,
      ...(data.classNames ? { classNames: [...data.classNames] } : {}),
      attack: { ...a, name: spec.name },
      samples: [],
    };
  }
  const logits = logitsFunction(model);
  const { x, y } = batchTensors(data, indices);
  let parts: tf.Tensor[];
  try {
    const adv = attack(model, x, y, a);
    try {
      parts = tf.tidy(() => {
        const pc = tf.softmax(logits(x));
        const pa = tf.softmax(logits(adv));
        const d = tf.sub(adv, x);
        return [
          tf.argMax(pc, 1),
          tf.max(pc, 1),
          tf.argMax(pa, 1),
          tf.max(pa, 1),
          tf.max(tf.abs(d), [1, 2, 3]),
          tf.sqrt(tf.sum(tf.square(d), [1, 2, 3])),
          x.reshape([indices.length, -1]),
          adv.reshape([indices.length, -1]),
        ];
      });
    } finally {
      adv.dispose();
    }
  } finally {
    x.dispose();
    y.dispose();
  }
  const [pc, cc, pa, ca, linf, l2, cleanImg, advImg] = await Promise.all(parts.map((t) => t.data()));
  tf.dispose(parts);
  const per = data.height * data.width * data.channels;
  const toBytes = (v: ArrayLike<number>, i: number) =>
    Array.from({ length: per }, (_, k) => Math.round(Math.min(1, Math.max(0, v[i * per + k])) * 255));
  const all = indices.map((index, i) => ({
    i,
    index,
    fooled: pc[i] === data.labels[index] && pa[i] !== data.labels[index],
  }));
  const chosen = preferFooled ? [...all.filter((s) => s.fooled), ...all.filter((s) => !s.fooled)] : all;
  const samples = chosen
    .slice(0, count)
    .sort((p, q) => p.index - q.index)
    .map(({ i, index, fooled }) => ({
      index,
      label: data.labels[index],
      cleanPrediction: pc[i],
      cleanConfidence: cc[i],
      adversarialPrediction: pa[i],
      adversarialConfidence: ca[i],
      fooled,
      linf: linf[i],
      l2: l2[i],
      clean: toBytes(cleanImg, i),
      adversarial: toBytes(advImg, i),
    }));
  return {
    height: data.height,
    width: data.width,
    channels: data.channels,
    ...(data.classNames ? { classNames: [...data.classNames] } : {}),
    attack: { ...a, name: spec.name },
    samples,
  };
}
