import type { ReportResult, WriteReportInput } from '../schemas/payloads';
import { formatS3Uri, parseS3Uri } from '../storage/object-store';
import { buildReport } from '../report';
import type { ExamplePixels } from '../report';
import type { AdversarialSamples } from '../tensor/eval';
import { execution, workPrefix } from './context';
import type { ActivityDeps } from './deps';

/**
 * writeReport: renders the self-contained `report.html` (and `metrics.json`) of a run next to its artifact
 * version, or under the run's working prefix when nothing was promoted.
 */
export async function writeReport(deps: ActivityDeps, input: WriteReportInput): Promise<ReportResult> {
  const { spec, summary, baseline, hardened } = input;
  const { workflowId } = execution();
  const bucket = spec.artifacts.bucket;
  const examples = await loadExamples(deps, hardened?.examples[0]?.imageKey, summary.dataset?.classNames);
  const html = await buildReport({ summary, spec, baseline, hardened, examples });
  const dir = summary.artifact
    ? parseS3Uri(summary.artifact.uri, { requireKey: false }).key
    : `${workPrefix(workflowId)}`;
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  await deps.store.putJson(bucket, `${prefix}metrics.json`, { summary, baseline, hardened });
  await deps.store.putBytes(bucket, `${prefix}report.html`, Buffer.from(html, 'utf8'), {
    'Content-Type': 'text/html; charset=utf-8',
  });
  return { uri: formatS3Uri(bucket, `${prefix}report.html`) };
}

async function loadExamples(
  deps: ActivityDeps,
  uri: string | undefined,
  classNames: readonly string[] | undefined,
): Promise<ExamplePixels[]> {
  if (!uri) return [];
  const { bucket, key } = parseS3Uri(uri);
  const s = await deps.store.getJson<AdversarialSamples>(bucket, key);
  return s.samples.map((e) => ({
    label: e.label,
    name: classNames?.[e.label],
    cleanPrediction: e.cleanPrediction,
    adversarialPrediction: e.adversarialPrediction,
    attack: s.attack.name,
    eps: s.attack.eps,
    clean: Uint8Array.from(e.clean),
    adversarial: Uint8Array.from(e.adversarial),
    height: s.height,
    width: s.width,
    channels: s.channels,
  }));
}
