/**
 * `buildReport`: encodes the example images (raw pixels) as PNG with sharp, then renders the report.
 */
import { encodePng, perturbationPixels } from './images';
import type { Pixels } from './images';
import { renderReport } from './render';
import type { EncodedExample, ReportData } from './render';

/** One adversarial example as the evaluation produced it: pixels, not files. */
export interface ExamplePixels {
  /** True label. */
  label: number;
  /** Name of the true label. */
  name?: string;
  cleanPrediction: number;
  adversarialPrediction: number;
  attack?: string;
  eps?: number;
  /** `height × width × channels`, bytes 0..255 or floats in [0, 1]. */
  clean: Pixels;
  adversarial: Pixels;
  height: number;
  width: number;
  channels: number;
}

export interface BuildInput extends ReportData {
  examples?: readonly ExamplePixels[];
  /** Nearest-neighbour upscale factor of the images. Default: about 112 px on the longer side. */
  scale?: number;
}

/** Encodes one example's clean, perturbation and adversarial images. */
export async function encodeExample(e: ExamplePixels, scale?: number): Promise<EncodedExample> {
  const { height: h, width: w, channels: c } = e;
  const { pixels, amplification } = perturbationPixels(e.clean, e.adversarial);
  const [clean, perturbation, adversarial] = await Promise.all([
    encodePng(e.clean, h, w, c, scale),
    encodePng(pixels, h, w, c, scale),
    encodePng(e.adversarial, h, w, c, scale),
  ]);
  return {
    label: e.label,
    name: e.name,
    cleanPrediction: e.cleanPrediction,
    adversarialPrediction: e.adversarialPrediction,
    attack: e.attack,
    eps: e.eps,
    clean,
    adversarial,
    perturbation,
    amplification,
  };
}

/** The report as one self-contained HTML string, examples encoded as PNG `data:` URIs. */
export async function buildReport(input: BuildInput): Promise<string> {
  const { examples = [], scale, ...data } = input;
  const encoded: EncodedExample[] = [];
  for (const e of examples) encoded.push(await encodeExample(e, scale));
  return renderReport({ ...data, examples: encoded });
}
