export { checkDataset, DatasetError, DatasetRangeError, imageBytes } from './dataset';
export type { ImageDataset, ImageSize } from './dataset';
export {
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  MNIST_CLASSES,
  findIdxFiles,
  idxFileNames,
  loadFashionMnist,
  loadIdx,
  loadIdxDir,
  parseIdxImages,
  parseIdxLabels,
  peekIdxImages,
} from './idx';
export type { IdxOptions, Split } from './idx';
export { CIFAR10_CLASSES, CIFAR10_RECORD_BYTES, cifar10FileNames, loadCifar10, loadCifar10Files } from './cifar10';
export { IMAGE_EXTENSIONS, decodeImage, listImageFolder, loadImageFolder } from './image-folder';
export type { ImageFolderListing, ImageFolderOptions } from './image-folder';
export { firstIndices, randomIndices, selectIndices, stratifiedIndices, subset, subsetIndices } from './subset';
export type { SubsetSpec } from './subset';
export { batchAt, batchCount, batches, epochOrder, makeBatch, sequentialOrder } from './batch';
export type { Batch, BatchesOptions } from './batch';
export { checkDatasetSize, datasetBytes, DatasetTooLargeError, DEFAULT_MAX_DATASET_MIB } from './size';
export type { DatasetEstimate } from './size';
export { DATASET_FORMATS, estimateDataset, loadDataset } from './load';
export type { DatasetFormat, LoadDatasetOptions } from './load';
export { isGzip, readMaybeGzip } from './files';
export { isDatasetFile } from './needed';
