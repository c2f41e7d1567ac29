import type { Activities } from './contract';
import { adversarialTrain } from './adversarial-train';
import { execution } from './context';
import type { ActivityDeps } from './deps';
import { evaluateModel, evaluationExtras, reduceEvaluation } from './evaluate';
import { evaluateShard } from './evaluate-shard';
import { fetchDataset } from './fetch-dataset';
import { prepareModel } from './prepare-model';
import { promoteArtifact } from './promote';
import { cachedEvaluation, cachedPreparation, lookupEvaluation, storeEvaluation } from './step-cache';
import { writeReport } from './report';

export type { ActivityDeps, ActivityMetrics } from './deps';
export type { Activities } from './contract';

/** Which queue each activity polls: heavy tensor work apart from I/O, so GPU workers scale on their own. */
export const IO_ACTIVITIES = [
  'fetchDataset',
  'promoteArtifact',
  'writeReport',
  'reduceEvaluation',
  'lookupEvaluation',
  'storeEvaluation',
] as const;
export const HEAVY_ACTIVITIES = [
  'prepareModel',
  'baselineEval',
  'adversarialTrain',
  'benchmark',
  'evaluateShard',
  'evaluationExtras',
] as const;

/** The activities bound to their dependencies; the worker passes the real ones, tests may pass fakes. */
export function createActivities(deps: ActivityDeps): Activities {
  const timed =
    <A extends unknown[], R>(name: string, fn: (deps: ActivityDeps, ...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      deps.metrics?.retry(name, execution().attempt);
      const stop = deps.metrics?.stage(name);
      try {
        const r = await fn(deps, ...args);
        stop?.('ok');
        return r;
      } catch (err) {
        stop?.((err as { name?: string }).name === 'CancelledFailure' ? 'cancelled' : 'error');
        throw err;
      }
    };
  return {
    fetchDataset: timed('fetchDataset', fetchDataset),
    prepareModel: timed('prepareModel', (d, input) => cachedPreparation(d, input, () => prepareModel(d, input))),
    baselineEval: timed('baselineEval', (d, input) =>
      cachedEvaluation(d, { ...input, role: 'baseline' }, () => evaluateModel(d, { ...input, role: 'baseline' })),
    ),
    adversarialTrain: timed('adversarialTrain', adversarialTrain),
    benchmark: timed('benchmark', (d, input) =>
      cachedEvaluation(d, { ...input, role: 'hardened' }, () => evaluateModel(d, { ...input, role: 'hardened' })),
    ),
    evaluateShard: timed('evaluateShard', evaluateShard),
    evaluationExtras: timed('evaluationExtras', evaluationExtras),
    reduceEvaluation: timed('reduceEvaluation', reduceEvaluation),
    lookupEvaluation: timed('lookupEvaluation', lookupEvaluation),
    storeEvaluation: timed('storeEvaluation', storeEvaluation),
    promoteArtifact: timed('promoteArtifact', promoteArtifact),
    writeReport: timed('writeReport', writeReport),
  };
}

/** The subset of activities one queue runs. */
export function activitiesFor(all: Activities, queue: 'io' | 'heavy'): Partial<Activities> {
  const names: readonly (keyof Activities)[] = queue === 'io' ? IO_ACTIVITIES : HEAVY_ACTIVITIES;
  return Object.fromEntries(names.map((n) => [n, all[n]])) as Partial<Activities>;
}
