import type { WorkerMetrics } from '../metrics';
import type { ObjectStore } from '../storage/object-store';
import type { TrainProgress } from '../schemas/payloads';
import type { SourcePolicy } from './source-policy';

/** The metrics hooks the activities call: `metrics/` defines them once, for Prometheus; tests may fake them. */
export type ActivityMetrics = Pick<WorkerMetrics, 'trainStep' | 'evaluation' | 'stage' | 'checkpoint' | 'retry'>;

/**
 * What the activities need from the process that hosts them. The worker passes the real ones; a unit test may
 * pass fakes. Nothing here is a tensor: tfjs stays inside the activities' own modules.
 */
export interface ActivityDeps {
  store: ObjectStore;
  /** Worker-local cache (datasets by content hash, downloads); shared by the activities of one worker. */
  cacheDir: string;
  /** Sends the workflow's progress signal; absent where no client is at hand (unit tests). */
  signalProgress?: (workflowId: string, temporalRunId: string, progress: TrainProgress) => Promise<void>;
  metrics?: ActivityMetrics;
  /**
   * Where datasets may come from (local roots, buckets, http hosts, http timeouts). The worker always passes
   * its configured policy; absent (unit tests, embedding code that checks sources itself) nothing is confined.
   */
  sources?: SourcePolicy;
  /** Refuse datasets larger than this (files on disk and pixels in memory). Default 2048. */
  maxDatasetMiB?: number;
  /** Written into manifests. */
  packageVersion?: string;
  /** tfjs backend preference for heavy work; the spec's `compute.backend` wins when not `auto`. */
  backend?: string;
  /**
   * Cores the heavy work may use (the worker's `threads`): a training with `compute.threads: auto` trains on that
   * many on wasm (see `threadsFor`); above 1, each evaluation shard runs on a thread of its own. Default: this
   * machine's cores.
   */
  threads?: number;
}
