import { imageBytes } from './dataset';

/** Default limit for a dataset's memory, in MiB. */
export const DEFAULT_MAX_DATASET_MIB = 2048;

const MiB = 1024 * 1024;

/** What a dataset will hold once loaded, known before loading it. */
export interface DatasetEstimate {
  count: number;
  height: number;
  width: number;
  channels: number;
  /** Resident bytes once loaded: uint8 pixels plus int32 labels. */
  bytes: number;
  /** The files or folder it will come from. */
  source: string;
}

/** Resident bytes of a dataset of this shape: count × (h·w·c pixel bytes + 4 label bytes). */
export function datasetBytes(count: number, height: number, width: number, channels: number): number {
  return count * (imageBytes({ height, width, channels }) + 4);
}

/** A dataset larger than the configured limit. */
export class DatasetTooLargeError extends Error {
  override readonly name = 'DatasetTooLargeError';
  constructor(
    readonly estimate: DatasetEstimate,
    readonly limitMiB: number,
  ) {
    const { count, height, width, channels, bytes, source } = estimate;
    super(
      `${source}: ${count} images of ${height}×${width}×${channels} needs ${(bytes / MiB).toFixed(1)} MiB, limit ${limitMiB} MiB`,
    );
  }
}

/** Throws DatasetTooLargeError when `estimate` needs more than `maxMiB`; returns the estimate otherwise. */
export function checkDatasetSize(estimate: DatasetEstimate, maxMiB: number = DEFAULT_MAX_DATASET_MIB): DatasetEstimate {
  if (!(maxMiB > 0)) throw new RangeError(`dataset size limit must be a positive number of MiB, got ${maxMiB}`);
  if (estimate.bytes > maxMiB * MiB) throw new DatasetTooLargeError(estimate, maxMiB);
  return estimate;
}
