import { Context } from '@temporalio/activity';
import { Failure, fail } from '../schemas/failures';
import type { Backend } from '../schemas/payloads';
import type { Spec } from '../schemas/spec';
import { initBackend } from '../tensor/backend';
import type { ActivityDeps } from './deps';
import { runPrefix } from './names';

/**
 * The workflow execution an activity works for (stable across its retries). Activities run inside one, in a
 * worker or in tests under `MockActivityEnvironment`; outside it this throws, as `Context.current()` does.
 */
export function execution(): { workflowId: string; temporalRunId: string; attempt: number } {
  const { workflowExecution, attempt, activityType } = Context.current().info;
  // Temporal also runs activities started by a client alone; ours keep their files under a workflow's prefix.
  if (!workflowExecution) throw new Error(`${activityType}: runs only as part of a workflow`);
  return { workflowId: workflowExecution.workflowId, temporalRunId: workflowExecution.runId, attempt };
}

/** The object-store prefix for this execution's working files. */
export function workPrefix(workflowId: string): string {
  return `${runPrefix(workflowId, execution().temporalRunId)}/`;
}

/**
 * Starts the tfjs backend the spec asks for (or the worker's default); a backend this worker cannot start is a
 * permanent failure, since retrying on the same worker will not make it appear.
 */
export async function ensureBackend(deps: ActivityDeps, spec: Pick<Spec, 'compute'>): Promise<Backend> {
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

export function heartbeat(details?: unknown): void {
  Context.current().heartbeat(details);
}
