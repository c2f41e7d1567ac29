// Task queue names shared by the workflow (where a run's tensor work goes) and the worker (what it polls).
// Pure: safe to import from workflows.

/**
 * The heavy task queue of a run: the plain `heavyQueue` when `compute.backend` is `auto` (any worker), else
 * `<heavyQueue>@<backend>`, which only workers running that backend poll (`tempered worker --backend <backend>`),
 * so a run that asks for a backend waits for such a worker instead of training elsewhere.
 */
export function heavyQueueFor(heavyQueue: string, backend: string): string {
  return backend === 'auto' ? heavyQueue : `${heavyQueue}@${backend}`;
}
