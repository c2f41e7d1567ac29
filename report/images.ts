/**
 * Pixels to PNG for the run report. Images arrive as height × width × channels arrays, either bytes (0..255) or
 * floats in [0, 1] (what the tensor core computes with); they leave as PNG buffers, upscaled with
 * nearest-neighbour so a 28 × 28 digit stays crisp at report size.
 */
import sharp from 'sharp';

export type Pixels = Uint8Array | Float32Array;

/** Side in CSS pixels an example image is upscaled towards when no scale is given. */
export const DEFAULT_IMAGE_SIDE = 112;

/** The integer factor that brings the longer side to about `side` pixels (at least 1). */
export function defaultScale(height: number, width: number, side = DEFAULT_IMAGE_SIDE): number {
  return Math.max(1, Math.round(side / Math.max(height, width)));
}

/** Bytes 0..255 from bytes (copied) or floats in [0, 1] (clamped, rounded). */
export function toBytes(pixels: Pixels): Uint8Array {
  if (pixels instanceof Uint8Array) return Uint8Array.from(pixels);
  const out = new Uint8Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const v = pixels[i];
    out[i] = Number.isFinite(v) ? Math.round(Math.min(1, Math.max(0, v)) * 255) : 0;
  }
  return out;
}

/**
 * Encodes one image (`h × w × c`, c in 1..4, row-major, channels last) as PNG, upscaled `scale` times with
 * nearest-neighbour (default: `defaultScale(h, w)`). Throws when the pixel count does not match the shape.
 */
export async function encodePng(pixels: Pixels, h: number, w: number, c: number, scale?: number): Promise<Buffer> {
  if (![1, 2, 3, 4].includes(c)) throw new RangeError(`expected 1 to 4 channels, got ${c}`);
  if (!(Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0)) {
    throw new RangeError(`expected a positive integer height and width, got ${h} × ${w}`);
  }
  if (pixels.length !== h * w * c) {
    throw new RangeError(`${pixels.length} values but the shape ${h} × ${w} × ${c} needs ${h * w * c}`);
  }
  const s = scale ?? defaultScale(h, w);
  if (!(Number.isInteger(s) && s >= 1 && s <= 64)) throw new RangeError(`expected an integer scale 1..64, got ${s}`);
  const channels = c as 1 | 2 | 3 | 4;
  let image = sharp(toBytes(pixels), { raw: { width: w, height: h, channels } });
  if (s > 1) image = image.resize(w * s, h * s, { kernel: 'nearest' });
  // Resizing works in sRGB: keep grey images grey (smaller PNGs, one channel when decoded).
  if (c <= 2) image = image.toColourspace('b-w');
  return image.png().toBuffer();
}

/**
 * The perturbation `adversarial − clean` made visible: mid-grey is no change, brighter / darker is a positive /
 * negative change, stretched so the largest change reaches white or black. Returns floats in [0, 1] of the same
 * shape, and the amplification factor applied (1 when nothing changed).
 */
export function perturbationPixels(
  clean: Pixels,
  adversarial: Pixels,
): { pixels: Float32Array; amplification: number } {
  if (clean.length !== adversarial.length) {
    throw new RangeError(`clean has ${clean.length} values but adversarial has ${adversarial.length}`);
  }
  const scaleOf = (p: Pixels) => (p instanceof Uint8Array ? 1 / 255 : 1);
  const sc = scaleOf(clean);
  const sa = scaleOf(adversarial);
  const diff = new Float32Array(clean.length);
  let max = 0;
  for (let i = 0; i < clean.length; i++) {
    const d = adversarial[i] * sa - clean[i] * sc;
    diff[i] = Number.isFinite(d) ? d : 0;
    max = Math.max(max, Math.abs(diff[i]));
  }
  const amplification = max > 0 ? 0.5 / max : 1;
  for (let i = 0; i < diff.length; i++) diff[i] = 0.5 + diff[i] * amplification;
  return { pixels: diff, amplification };
}

/** `data:image/png;base64,...` for a PNG buffer. */
export function pngDataUri(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
}
