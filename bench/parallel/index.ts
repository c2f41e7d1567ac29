export { DataParallelPool, openDataParallel, shardBounds, shardSeeds } from './pool';
export type { BatchGradients, DataParallelOptions } from './pool';
