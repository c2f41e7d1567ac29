/**
 * Turning request bodies into model inputs, strictly: an image must already have the model's size and channels
 * (no silent resize), and JSON pixels must lie in [0, 1]. Every problem is an `HttpError` with a 4xx status and a
 * one-line message that says what was expected and what came.
 */
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { outputKind } from '../tensor/models/logits';

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Height, width, channels of the model's input. */
export type InputShape = [number, number, number];

export function inputShapeOf(model: tf.LayersModel): InputShape {
  const shape = model.inputs[0]?.shape;
  if (!shape || shape.length !== 4 || shape.slice(1).some((d) => typeof d !== 'number' || d < 1)) {
    throw new Error(`the model's input shape is ${JSON.stringify(shape)}; expected [null, height, width, channels]`);
  }
  return shape.slice(1) as InputShape;
}

const channelName = (c: number) => (c === 1 ? 'grayscale' : c === 3 ? 'RGB' : `${c}-channel`);

/** `28×28 grayscale`. */
export const describeShape = ([h, w, c]: InputShape) => `${w}×${h} ${channelName(c)}`;

/** Pixels of one PNG/JPEG image scaled to [0, 1], HWC order. Alpha is dropped; size and channels must match. */
export async function decodeImage(body: Buffer, contentType: string, shape: InputShape): Promise<Float32Array> {
  const [h, w, c] = shape;
  let meta: sharp.Metadata;
  try {
    meta = await sharp(body).metadata();
  } catch {
    throw new HttpError(
      400,
      `body is not a decodable image; expected a ${contentType.split('/')[1]?.toUpperCase()} of ${describeShape(shape)}`,
    );
  }
  const expected = contentType === 'image/png' ? 'png' : 'jpeg';
  if (meta.format !== expected) {
    throw new HttpError(400, `Content-Type says ${contentType} but the body is ${meta.format ?? 'not an image'}`);
  }
  const channels = (meta.channels ?? 0) - (meta.hasAlpha ? 1 : 0);
  if (meta.width !== w || meta.height !== h || channels !== c) {
    throw new HttpError(
      422,
      `expected a ${describeShape(shape)} image, got ${meta.width}×${meta.height}×${channels}${meta.hasAlpha ? ' (+alpha)' : ''}`,
    );
  }
  const { data, info } = await sharp(body)
    .removeAlpha()
    .toColourspace(c === 1 ? 'b-w' : 'srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== c || data.length !== h * w * c) {
    throw new HttpError(
      422,
      `expected a ${describeShape(shape)} image, decoded ${info.width}×${info.height}×${info.channels}`,
    );
  }
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] / 255;
  return out;
}

/**
 * `{ "instances": [...] }`: each instance `[h][w][c]` (or `[h][w]` for one channel) of numbers in [0, 1].
 * Returns the batch, flattened, and its size.
 */
export function parseInstances(json: unknown, shape: InputShape, maxBatch: number): { data: Float32Array; n: number } {
  const [h, w, c] = shape;
  const instances = (json as { instances?: unknown } | null)?.instances;
  if (json === null || typeof json !== 'object' || !Array.isArray(instances)) {
    throw new HttpError(400, 'expected a JSON object { "instances": [ image, ... ] }');
  }
  if (instances.length === 0) throw new HttpError(400, 'instances: expected at least one image');
  if (instances.length > maxBatch) {
    throw new HttpError(413, `instances: at most ${maxBatch} images per request, got ${instances.length}`);
  }
  const data = new Float32Array(instances.length * h * w * c);
  let k = 0;
  const bad = (path: string, what: string) => new HttpError(422, `instances${path}: expected ${what}`);
  instances.forEach((img: unknown, i) => {
    if (!Array.isArray(img) || img.length !== h) {
      throw bad(
        `[${i}]`,
        `${h} rows of a ${describeShape(shape)} image, got ${Array.isArray(img) ? img.length : typeof img}`,
      );
    }
    img.forEach((row: unknown, y) => {
      if (!Array.isArray(row) || row.length !== w) {
        throw bad(`[${i}][${y}]`, `${w} pixels, got ${Array.isArray(row) ? row.length : typeof row}`);
      }
      row.forEach((px: unknown, x) => {
        const values = Array.isArray(px) ? px : c === 1 ? [px] : undefined;
        if (!values || values.length !== c) {
          throw bad(`[${i}][${y}][${x}]`, `${c} channel value${c === 1 ? '' : 's'}, got ${JSON.stringify(px)}`);
        }
        for (const v of values) {
          if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) {
            throw bad(`[${i}][${y}][${x}]`, `pixel values in [0, 1], got ${JSON.stringify(v)}`);
          }
          data[k++] = v;
        }
      });
    });
  });
  return { data, n: instances.length };
}

/** Class probabilities for a batch. Softmax is applied when the model outputs logits. No tensor survives. */
export async function predictBatch(
  model: tf.LayersModel,
  data: Float32Array,
  n: number,
  shape: InputShape,
): Promise<number[][]> {
  const kind = outputKind(model);
  const probs = tf.tidy(() => {
    const y = model.predict(tf.tensor4d(data, [n, ...shape])) as tf.Tensor2D;
    return kind === 'logits' ? tf.softmax(y) : y;
  });
  try {
    return (await probs.array()) as number[][];
  } finally {
    probs.dispose();
  }
}

export const argmax = (xs: number[]) => xs.reduce((best, x, i) => (x > xs[best] ? i : best), 0);
