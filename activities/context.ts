import { Context } from '@temporalio/activity';
import { Failure, fail } from '../schemas/failures';
import type { Backend } from '../schemas/payloads';
import type { Spec } from '../schemas/spec';
import { initBackend } from '../tensor/backend';
import type { ActivityDeps } from './deps';
import { runPrefix } from './names';

/** The workflow execution an activity works for (stable across its retries), or a local stand-in in unit tests. */
export function execution(): { workflowId: string; temporalRunId: string; attempt: number } {
  try {
    const info = Context.current().info;
    const wf = info.workflowExecution;
    return {
      workflowId: wf?.workflowId ?? 'standalone',
      temporalRunId: wf?.runId ?? info.activityId,
      attempt: info.attempt,
    };
  } catch {
    return { workflowId: 'local', temporalRunId: 'local', attempt: 1 };
  }
}

/** The object-store prefix for this execution's working files. */
export function workPrefix(workflowId: string): string {
  return `${runPrefix(workflowId, execution().temporalRunId)}/`;
}

/**
 * Starts the tfjs backend the spec asks for (or the worker's default); a backend this worker cannot start is a
 * permanent failure, since retrying on the same worker will not make it appear.
 */
export async function ensureBackend(deps: ActivityDeps, spec: Spec): Promise<Backend> {
  const wanted = spec.compute.backend !== 'auto' ? spec.compute.backend : (deps.backend ?? 'auto');
  try {
    const report = await initBackend(wanted as Parameters<typeof initBackend>[0]);
    if (wanted !== 'auto' && report.name !== wanted) {
      throw fail(
        Failure.BackendUnavailable,
        `compute.backend: this worker already runs ${report.name}, the spec asks for ${wanted}; run a worker started ` +
          `with TEMPERED_BACKEND=${wanted}`,
      );
    }
    return report.name;
  } catch (err) {
    if ((err as { type?: string }).type === Failure.BackendUnavailable) throw err;
    throw fail(Failure.BackendUnavailable, `compute.backend ${wanted}: ${(err as Error).message}`);
  }
}

/** Heartbeats when running inside an activity; a no-op in unit tests. */
export function heartbeat(details?: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // not in an activity
  }
}
