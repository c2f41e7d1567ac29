export { DataParallelPool, openDataParallel } from './pool';
export type { DataParallelOptions } from './pool';
