import type { DatasetFormat } from './load';
import { IMAGE_EXTENSIONS } from './image-folder';

const IDX = /^(train|t10k)-(images|labels)[-.]idx[13]-ubyte(\.gz)?$/;
const CIFAR = /^(cifar-10-batches-bin\/)?(data_batch_[1-5]\.bin|test_batch\.bin|batches\.meta\.txt)$/;

/**
 * True when a file (its name relative to the dataset root, `/`-separated) is one the format's loader reads: the
 * IDX pair names, the CIFAR-10 batches and class list, or `train|test/<class>/<image>` of an image folder. Only
 * these are staged and uploaded, so a `secrets.txt` or `keys/id_rsa` beside the data never leaves the source.
 */
export function isDatasetFile(format: DatasetFormat, name: string): boolean {
  switch (format) {
    case 'idx':
      return IDX.test(name);
    case 'cifar10-binary':
      return CIFAR.test(name);
    case 'image-folder': {
      const parts = name.split('/');
      if (parts.length !== 3 || (parts[0] !== 'train' && parts[0] !== 'test') || parts[1].startsWith('.')) {
        return false;
      }
      const dot = parts[2].lastIndexOf('.');
      return dot > 0 && IMAGE_EXTENSIONS.includes(parts[2].slice(dot).toLowerCase());
    }
    default:
      return false;
  }
}
