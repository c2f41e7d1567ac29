/**
 * npx tsx crosscheck/tfjs-logits.ts --model DIR --out FILE [--images 1000] [--data-dir DIR] [--backend auto|wasm|cpu|…]
 *
 * Loads a model saved in the TensorFlow.js layers format with tempered's own loader, runs the first N Fashion-MNIST
 * test images through it (for a softmax model: the scores before the softmax, as the attacks see them) and writes
 * {"model","backend","outputKind","images","labels","logits"} to FILE. `crosscheck/torch_attack.py --verify FILE` checks
 * its PyTorch rebuild of the model against these logits.
 */
import * as tf from '@tensorflow/tfjs';
import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend } from '../tensor/backend';
import type { BackendPreference } from '../tensor/backend';
import { FASHION_MNIST_DIR, firstIndices, loadFashionMnist, makeBatch } from '../tensor/data';
import { loadModel, logitsFunction, outputKind } from '../tensor/models';
import type { OutputKind } from '../tensor/models';

export interface TfjsLogitsOptions {
  /** folder holding model.json and its weight files */
  model: string;
  /** first N test images; default 1000 */
  images?: number;
  /** the Fashion-MNIST IDX folder; default Debian's /usr/share/datasets/fashion-mnist */
  dataDir?: string;
  /** images per forward pass; default 250 */
  batchSize?: number;
}

/** What crosscheck/tfjs-logits.ts writes and crosscheck/torch_attack.py --verify reads. */
export interface TfjsLogits {
  model: string;
  backend: string;
  outputKind: OutputKind;
  images: number;
  labels: number[];
  /** one row of class scores per image, before any softmax */
  logits: number[][];
}

/**
 * Logits of the first `images` test images under the model saved in `model`, in inference mode, on the backend that
 * is active (the caller initialises it). Leaves no tensors behind.
 */
export async function tfjsLogits(options: TfjsLogitsOptions): Promise<TfjsLogits> {
  const { model: dir, images = 1000, dataDir = FASHION_MNIST_DIR, batchSize = 250 } = options;
  const test = await loadFashionMnist(dataDir, 'test');
  const order = firstIndices(test.count, images);
  const model = await loadModel(dir);
  try {
    const forward = logitsFunction(model);
    const logits: number[][] = [];
    const labels: number[] = [];
    for (let start = 0; start < order.length; start += batchSize) {
      const { x, y } = makeBatch(test, order, start, batchSize);
      try {
        const z = tf.tidy(() => forward(x));
        const [rows, ys] = await Promise.all([z.array(), y.data()]);
        z.dispose();
        logits.push(...rows);
        labels.push(...ys);
      } finally {
        x.dispose();
        y.dispose();
      }
    }
    return { model: dir, backend: tf.getBackend(), outputKind: outputKind(model), images, labels, logits };
  } finally {
    model.dispose();
  }
}

const USAGE =
  'usage: npx tsx crosscheck/tfjs-logits.ts --model DIR --out FILE [--images 1000] [--data-dir DIR] [--backend auto|wasm|cpu|…]';

/** Parses the script's arguments; throws an Error with the usage line on bad input. */
export function parseTfjsLogitsArgs(argv: string[]): Required<Omit<TfjsLogitsOptions, 'batchSize'>> & {
  out: string;
  backend: BackendPreference;
} {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        out: { type: 'string' },
        images: { type: 'string' },
        'data-dir': { type: 'string' },
        backend: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${USAGE}`);
  }
  const { model, out } = values;
  if (typeof model !== 'string' || model === '') throw new Error(`--model DIR is required\n${USAGE}`);
  if (typeof out !== 'string' || out === '') throw new Error(`--out FILE is required\n${USAGE}`);
  const images = values.images === undefined ? 1000 : Number(values.images);
  if (!Number.isInteger(images) || images < 1) {
    throw new Error(`--images must be an integer ≥ 1, got ${String(values.images)}\n${USAGE}`);
  }
  return {
    model,
    out,
    images,
    dataDir: typeof values['data-dir'] === 'string' ? values['data-dir'] : FASHION_MNIST_DIR,
    backend: (values.backend as BackendPreference | undefined) ?? 'auto',
  };
}

async function main(argv: string[]): Promise<void> {
  let o: ReturnType<typeof parseTfjsLogitsArgs>;
  try {
    o = parseTfjsLogitsArgs(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  await initBackend(o.backend);
  const result = await tfjsLogits(o);
  await writeFile(o.out, JSON.stringify(result));
  process.stderr.write(`wrote the ${result.outputKind} of ${result.images} images (${result.backend}) to ${o.out}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
