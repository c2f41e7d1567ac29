import type {
  EvaluateInput,
  EvaluationExtrasRef,
  EvaluationRole,
  Metrics,
  ReduceEvaluationInput,
} from '../schemas/payloads';
import { blackBoxFlag, evaluate, reduceSuite, sampleAdversarialExamples, sanityPanel } from '../tensor/eval';
import { openSplit } from './datasets';
import { ensureBackend, execution, heartbeat, workPrefix } from './context';
import type { ActivityDeps } from './deps';
import type { ShardFile } from './evaluate-shard';
import { buildMetrics } from './evaluation-metrics';
import type { EvaluationExtras } from './evaluation-metrics';
import { checkModelFits, readModel } from './models';
import { curveAttack, epsCurve, evalAttack } from './spec-to-core';

/** Where an evaluation keeps the example images it drew (the report reads them). */
export const examplesKey = (workflowId: string, role: EvaluationRole) =>
  `${workPrefix(workflowId)}${role}/examples.json`;

/**
 * baselineEval / benchmark: the tensor core's evaluation of one model on the first `evaluation.testImages` test
 * images (the same images for both models), under every spec attack, along the ε curve, per class, with a few
 * clean/adversarial pairs kept for the report. Seeds come from the spec, so a retried evaluation repeats exactly.
 */
export async function evaluateModel(deps: ActivityDeps, input: EvaluateInput): Promise<Metrics> {
  const { spec, dataset, role } = input;
  const backend = await ensureBackend(deps, spec);
  const { workflowId } = execution();
  const test = await openSplit(deps, dataset, spec, 'test');
  const model = await readModel(deps.store, input.model);
  try {
    checkModelFits(model, test, input.model.uri);
    const attacks = spec.evaluation.attacks.map(evalAttack);
    const curve = curveAttack(spec);
    const report = await evaluate(model, test, {
      attacks,
      epsCurve: epsCurve(spec),
      batchSize: spec.evaluation.batchSize,
      seed: spec.training.seed,
      onProgress: (done, total) => heartbeat({ role, done, total }),
    });
    const gateAttack = spec.evaluation.attacks.find((a) => a.name === spec.gate.attack) ?? curve;
    const gateRobust = report.perClassRobust.find((r) => r.attack === gateAttack.name)?.accuracy;
    const samples = await sampleAdversarialExamples(model, test, evalAttack(gateAttack), {
      count: spec.evaluation.examples,
    });
    const key = examplesKey(workflowId, role);
    await deps.store.putJson(spec.artifacts.bucket, key, samples);
    const metrics: Metrics = {
      clean: report.cleanAccuracy,
      robust: report.attacks.map((a) => ({ attack: a.name, eps: a.eps, accuracy: a.robustAccuracy })),
      epsCurve: (report.epsCurve?.points ?? []).map((p) => ({ eps: p.eps, accuracy: p.robustAccuracy })),
      perClass: report.perClassCount.map((images, label) => ({
        label,
        ...(test.classNames[label] ? { name: test.classNames[label] } : {}),
        clean: report.perClassAccuracy[label] ?? 0,
        ...(gateRobust?.[label] != null ? { robust: gateRobust[label] as number } : {}),
        images,
      })),
      confusion: report.confusion,
      examples: samples.samples.map((s) => ({
        index: s.index,
        label: s.label,
        cleanPrediction: s.cleanPrediction,
        adversarialPrediction: s.adversarialPrediction,
        attack: gateAttack.name,
        imageKey: `s3://${spec.artifacts.bucket}/${key}`,
      })),
      images: report.count,
      seconds: report.seconds,
      backend,
    };
    deps.metrics?.evaluation({
      workflowId,
      role,
      clean: metrics.clean,
      robust: metrics.robust.map((r) => ({ attack: r.attack, accuracy: r.accuracy })),
    });
    return metrics;
  } finally {
    model.dispose();
  }
}

/** Where the extras activity keeps what it measured. */
export const extrasKey = (workflowId: string, role: EvaluationRole) => `${workPrefix(workflowId)}${role}/extras.json`;

/**
 * evaluationExtras (heavy queue): what an evaluation measures beside its shards, on the same test images: the ε
 * curve (PGD with the first multi-step listed attack's steps and step fraction), a few clean/adversarial example
 * pairs for the report, and the sanity probes. Runs beside the shards; heartbeats every batch.
 */
export async function evaluationExtras(deps: ActivityDeps, input: EvaluateInput): Promise<EvaluationExtrasRef> {
  const { spec, dataset, role } = input;
  const backend = await ensureBackend(deps, spec);
  const { workflowId } = execution();
  const test = await openSplit(deps, dataset, spec, 'test');
  const model = await readModel(deps.store, input.model);
  const started = performance.now();
  // The sanity panel's attacks await between iterations but report no progress: heartbeat for liveness.
  const timer = setInterval(() => heartbeat({ role, extras: true }), 5_000);
  try {
    checkModelFits(model, test, input.model.uri);
    const curve = curveAttack(spec);
    const report = await evaluate(model, test, {
      epsCurve: epsCurve(spec),
      batchSize: spec.evaluation.batchSize,
      seed: spec.training.seed,
      onProgress: (done, total) => heartbeat({ role, done, total }),
    });
    const exampleAttack = spec.evaluation.attacks.find((a) => a.name === spec.gate.attack) ?? curve;
    const samples = await sampleAdversarialExamples(model, test, evalAttack(exampleAttack), {
      count: spec.evaluation.examples,
    });
    const imagesKey = examplesKey(workflowId, role);
    await deps.store.putJson(spec.artifacts.bucket, imagesKey, samples);
    const extras: EvaluationExtras = {
      epsCurve: (report.epsCurve?.points ?? []).map((p) => ({ eps: p.eps, accuracy: p.robustAccuracy })),
      examples: samples.samples.map((s) => ({
        index: s.index,
        label: s.label,
        cleanPrediction: s.cleanPrediction,
        adversarialPrediction: s.adversarialPrediction,
        attack: exampleAttack.name,
        imageKey: `s3://${spec.artifacts.bucket}/${imagesKey}`,
      })),
      sanity:
        spec.evaluation.sanityImages > 0 && spec.epsilon.max > 0
          ? await sanityPanel(model, test, {
              norm: spec.attack.norm,
              eps: spec.epsilon.max,
              count: Math.min(spec.evaluation.sanityImages, test.count),
              seed: spec.training.seed,
            })
          : [],
    };
    const key = extrasKey(workflowId, role);
    await deps.store.putJson(spec.artifacts.bucket, key, extras);
    return { key, seconds: (performance.now() - started) / 1000, backend };
  } finally {
    clearInterval(timer);
    model.dispose();
  }
}

/**
 * reduceEvaluation (io queue): reads the shards' per-example results and the extras, reduces them to `Metrics`
 * (worst case, waterfall, intervals, per class, confusion) and reports them to the worker's metrics.
 */
export async function reduceEvaluation(deps: ActivityDeps, input: ReduceEvaluationInput): Promise<Metrics> {
  const { spec, dataset, role } = input;
  const bucket = spec.artifacts.bucket;
  const read = async <T>(key: string) => JSON.parse((await deps.store.getBytes(bucket, key)).toString('utf8')) as T;
  const [shards, extras] = await Promise.all([
    Promise.all(input.shards.map((s) => read<ShardFile>(s.key))),
    read<EvaluationExtras>(input.extras.key),
  ]);
  // The black-box check reads the suite's waterfall, which only the reduction sees.
  const suite = reduceSuite(shards.map((s) => s.suite));
  const sanity = extras.sanity.map((f) => (f.name === 'black-box' ? blackBoxFlag(suite) : f));
  const metrics = buildMetrics({
    spec,
    shards,
    extras: { ...extras, sanity },
    classNames: dataset.classNames,
    numClasses: dataset.counts.classes,
    seconds: input.seconds,
    backend: input.shards[0]?.backend ?? input.extras.backend,
  });
  // Labelled with the hardening run's id (the input's), not this child workflow's: a dashboard subtracts the
  // baseline's series from the hardened model's of the same run.
  deps.metrics?.evaluation({
    workflowId: input.workflowId,
    role,
    clean: metrics.clean,
    robust: metrics.robust.map((r) => ({ attack: r.attack, accuracy: r.accuracy })),
  });
  return metrics;
}
