import type { EvaluateInput, Metrics } from '../schemas/payloads';
import { evaluate, sampleAdversarialExamples } from '../tensor/eval';
import { openSplit } from './datasets';
import { ensureBackend, execution, heartbeat, workPrefix } from './context';
import type { ActivityDeps } from './deps';
import { checkModelFits, readModel } from './models';
import { curveAttack, epsCurve, evalAttack } from './spec-to-core';

/** Where an evaluation keeps the example images it drew (the report reads them). */
export const examplesKey = (workflowId: string, role: 'baseline' | 'hardened') =>
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
      runId: workflowId,
      role,
      clean: metrics.clean,
      robust: metrics.robust.map((r) => ({ attack: r.attack, accuracy: r.accuracy })),
    });
    return metrics;
  } finally {
    model.dispose();
  }
}
