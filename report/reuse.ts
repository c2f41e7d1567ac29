import type { RunSummary } from '../schemas/payloads';

/**
 * One line saying which stages a run did not compute itself: taken over from the run it resumed, or found in the
 * step cache. Undefined when it computed everything. The CLI's result table and the HTML report both show it.
 */
export function reuseLine(s: Pick<RunSummary, 'resumedFrom' | 'reused' | 'cached'>): string | undefined {
  const parts: string[] = [];
  if (s.resumedFrom) {
    const what = s.reused && s.reused.length > 0 ? s.reused.join(', ') : 'no finished stage';
    parts.push(`resumed run ${s.resumedFrom.temporalRunId} of ${s.resumedFrom.workflowId}, reusing ${what}`);
  }
  if (s.cached && s.cached.length > 0)
    parts.push(`cached from an earlier run with the same inputs: ${s.cached.join(', ')}`);
  return parts.length > 0 ? parts.join('; ') : undefined;
}
