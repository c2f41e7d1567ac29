export { DataParallelPool, openDataParallel, threadsFor } from './pool';
export type { DataParallelOptions } from './pool';
