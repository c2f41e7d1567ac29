/**
 * The Temporal SDK's own worker metrics (task slots, pollers, activity and workflow-task latencies), exported
 * by the Rust core's Prometheus endpoint. Kept apart from `metrics/index.ts` because importing
 * `@temporalio/worker` loads the native bridge.
 *
 * Series names carry the SDK's default `temporal_` prefix, durations are in **milliseconds** and counters have
 * no `_total` suffix (the SDK defaults), e.g. `temporal_activity_execution_latency_bucket{activity_type,...}`,
 * `temporal_worker_task_slots_available{worker_type="ActivityWorker",task_queue}`,
 * `temporal_activity_execution_failed`, `temporal_num_pollers{poller_type}`.
 */
import { IllegalStateError, Runtime } from '@temporalio/worker';
import type { Logger } from '@temporalio/worker';

export interface TemporalMetricsOptions {
  /** Tags added to every Temporal series, e.g. `{ worker: os.hostname() }`. Default none. */
  globalTags?: Record<string, string>;
  /** Where the SDK's own log lines go. Default the SDK's (stderr). */
  logger?: Logger;
}

/** Thrown when the runtime already exists (a connection or worker was created first) or was installed otherwise. */
export class TemporalMetricsInstallError extends Error {
  override name = 'TemporalMetricsInstallError';
}

let installedAt: string | undefined;

/**
 * Installs the Temporal runtime with a Prometheus exporter on `bindAddress` (`host:port`, e.g.
 * `127.0.0.1:9464`; `/metrics` is the route). Must run before any `NativeConnection`, `Worker` or `Runtime.instance()`
 * exists in the process. Idempotent: a second call with the same address does nothing; with another address it
 * throws, as does a call after the runtime was created.
 */
export function installTemporalRuntimeMetrics(bindAddress: string, options: TemporalMetricsOptions = {}): void {
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(bindAddress)) {
    throw new TemporalMetricsInstallError(`expected host:port for the Temporal metrics address, got "${bindAddress}"`);
  }
  if (installedAt !== undefined) {
    if (installedAt === bindAddress) return;
    throw new TemporalMetricsInstallError(
      `Temporal runtime metrics already export on ${installedAt}; cannot move them to ${bindAddress}`,
    );
  }
  try {
    Runtime.install({
      ...(options.logger ? { logger: options.logger } : {}),
      telemetryOptions: {
        metrics: { prometheus: { bindAddress }, ...(options.globalTags ? { globalTags: options.globalTags } : {}) },
      },
    });
  } catch (err) {
    if (err instanceof IllegalStateError) {
      throw new TemporalMetricsInstallError(
        `installTemporalRuntimeMetrics(${bindAddress}) ran too late: the Temporal runtime already exists ` +
          `(${err.message}). Call it first thing in the worker entry, before NativeConnection.connect or Worker.create.`,
      );
    }
    throw err;
  }
  installedAt = bindAddress;
}
