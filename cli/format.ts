// Pure formatting for the run commands: the progress line, the result table, run and schedule listings, and
// the exit code of a finished run. No I/O, so each is unit-tested on its own.
import { reuseLine } from '../report/reuse';
import type { RunListing } from '../client/index';
import type { ScheduleListing } from '../client/schedules';
import type {
  AccuracySummary,
  EvaluationProgress,
  LiveProgress,
  RunProgress,
  RunSummary,
  TrainProgress,
} from '../schemas/payloads';

/** Exit codes of `tempered run --wait` (and `show` on a finished run). */
export const EXIT = { completed: 0, failed: 1, usage: 2, rejected: 3, cancelled: 4 } as const;

export function exitCodeFor(status: RunSummary['status'] | 'failed'): number {
  return EXIT[status];
}

const pct = (x: number | undefined) => (x === undefined ? '-' : `${(x * 100).toFixed(1)}%`);

/** `1h02m`, `4m05s`, `12s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** A text bar of `width` cells for a fraction in [0, 1]. */
export function bar(fraction: number, width = 20): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

export interface ProgressLineOptions {
  /** Images per batch (the spec's `training.batchSize`), for the ETA. Without it no ETA is shown. */
  batchSize?: number;
  /** Bar cells. Default 20. */
  width?: number;
}

/**
 * One line for the progress bar: the stage, and for the long stages a bar and an ETA. Training (the hardening, or
 * the baseline's while `preparing-model` trains one): epoch/epochs, batch, ε, loss, images/s (`epoch` counts
 * from 0 in the payload, from 1 here). An evaluation: images done of total (running shards counted by the share
 * of their attacks done), shards, the attacks running.
 */
export function formatProgressLine(p: LiveProgress | RunProgress, options: ProgressLineOptions = {}): string {
  const flags = [
    p.awaitingApproval ? 'awaiting approval (tempered approve|reject <id> --by NAME)' : '',
    p.cancelRequested ? 'cancel requested' : '',
  ].filter(Boolean);
  const live = p as LiveProgress;
  if (p.stage === 'training' && p.training) return trainingLine('training', p.training, options, flags, true);
  if (p.stage === 'preparing-model' && live.baselineTraining)
    return trainingLine('baseline training', live.baselineTraining, options, flags, false);
  if ((p.stage === 'baseline-eval' || p.stage === 'benchmark') && live.evaluation)
    return evaluationLine(live.evaluation, options, flags);
  const ck = p.checkpoints > 0 ? `  checkpoints ${p.checkpoints}` : '';
  return [`${p.stage}`, ...flags].join('  ') + ck;
}

function trainingLine(
  label: string,
  t: TrainProgress,
  options: ProgressLineOptions,
  flags: string[],
  adversarial: boolean,
): string {
  const { width = 20 } = options;
  const batchSize = t.batchSize ?? options.batchSize;
  const total = t.epochs * t.batchesPerEpoch;
  const done = Math.min(total, t.epoch * t.batchesPerEpoch + t.batch);
  const remaining = total - done;
  const eta =
    batchSize !== undefined && t.imagesPerSecond > 0
      ? formatDuration((remaining * batchSize) / t.imagesPerSecond)
      : '?';
  return [
    `${label} ${bar(done / total, width)} ${((100 * done) / total).toFixed(0).padStart(3)}%`,
    `epoch ${Math.min(t.epoch + 1, t.epochs)}/${t.epochs}`,
    `batch ${t.batch}/${t.batchesPerEpoch}`,
    ...(adversarial ? [`ε ${t.epsilon.toFixed(3)}`] : []),
    `loss ${Number.isFinite(t.loss) ? t.loss.toFixed(4) : String(t.loss)}`,
    `${t.imagesPerSecond.toFixed(0)} img/s`,
    `ETA ${eta}`,
    ...flags,
  ].join('  ');
}

function evaluationLine(e: EvaluationProgress, options: ProgressLineOptions, flags: string[]): string {
  const { width = 20 } = options;
  const fraction = e.images > 0 ? e.imagesEstimate / e.images : 0;
  const eta = fraction > 0 && fraction < 1 ? formatDuration((e.elapsed * (1 - fraction)) / fraction) : '?';
  return [
    `${e.role} evaluation ${bar(fraction, width)} ${(100 * fraction).toFixed(0).padStart(3)}%`,
    `images ${Math.floor(e.imagesEstimate)}/${e.images}`,
    `shards ${e.shardsDone}/${e.shards}`,
    ...(e.attacks.length > 0 ? [e.attacks.join(', ')] : []),
    `ETA ${eta}`,
    ...flags,
  ].join('  ');
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd(),
  );
}

const delta = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined ? '' : `${b - a >= 0 ? '+' : ''}${((b - a) * 100).toFixed(1)} pts`;

export interface ResultTableOptions {
  workflowId?: string;
  /** The run's page in the Temporal Web UI. */
  link?: string;
}

/** The result of a finished run: accuracy before/after, the gate's decision and reasons, artifact, report, link. */
export function formatResultTable(s: RunSummary, options: ResultTableOptions = {}): string {
  const b: AccuracySummary | undefined = s.baseline;
  const h: AccuracySummary | undefined = s.hardened;
  const lines: string[] = [];
  lines.push(
    `run ${options.workflowId ?? s.workflowId}: ${s.status.toUpperCase()}  (model ${s.modelName}, stage ${s.stage})`,
  );
  lines.push('');
  const rows = [
    ['', 'baseline', 'hardened', 'change'],
    ['clean accuracy', pct(b?.clean), pct(h?.clean), delta(b?.clean, h?.clean)],
    ['robust accuracy', pct(b?.robust), pct(h?.robust), delta(b?.robust, h?.robust)],
  ];
  const attacks = new Map<string, { base?: number; hard?: number }>();
  const key = (a: { attack: string; eps: number }) => `  ${a.attack} ε=${a.eps}`;
  for (const a of b?.robustByAttack ?? []) attacks.set(key(a), { base: a.accuracy });
  for (const a of h?.robustByAttack ?? []) attacks.set(key(a), { ...attacks.get(key(a)), hard: a.accuracy });
  if (attacks.size > 1) for (const [k, v] of attacks) rows.push([k, pct(v.base), pct(v.hard), delta(v.base, v.hard)]);
  lines.push(...table(rows));
  lines.push('');
  if (s.gate) {
    const who = s.gate.decidedBy === 'person' ? `${s.gate.by ?? 'a person'}` : s.gate.decidedBy;
    lines.push(`gate      ${s.gate.passed ? 'PASSED' : 'FAILED'} (decided by ${who})`);
    for (const r of s.gate.reasons) lines.push(`          - ${r}`);
  } else {
    lines.push('gate      not reached');
  }
  if (s.artifact) {
    const promoted = s.artifact.promoted ? 'promoted to production' : 'stored, not promoted';
    lines.push(`artifact  ${s.artifact.version}  ${s.artifact.uri}  (${promoted})`);
  }
  if (s.reportUri) lines.push(`report    ${s.reportUri}`);
  if (s.status === 'cancelled') {
    const why = s.cancel?.reason ? `: ${s.cancel.reason}` : '';
    lines.push(`cancelled${s.cancel?.by ? ` by ${s.cancel.by}` : ''}${why}`);
    if (s.checkpointKey) lines.push(`checkpoint ${s.checkpointKey}`);
  }
  const reuse = reuseLine(s);
  if (reuse) lines.push(`reused    ${reuse}`);
  if (s.backend) lines.push(`backend   ${s.backend}`);
  const total = Object.values(s.timings).reduce((a, x) => a + x, 0);
  if (total > 0) lines.push(`time      ${formatDuration(total)}`);
  for (const w of s.warnings) lines.push(`warning   ${w}`);
  if (options.link) lines.push(`temporal  ${options.link}`);
  return lines.join('\n');
}

const iso = (d: Date | undefined) => (d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-');

/** `tempered runs`: one row per run, newest first. */
export function formatRuns(runs: RunListing[]): string {
  if (runs.length === 0) return 'no hardening runs';
  return table([
    ['WORKFLOW ID', 'STATUS', 'MODEL', 'STARTED', 'CLOSED'],
    ...runs.map((r) => [r.workflowId, r.status, r.modelName ?? '-', iso(r.startTime), iso(r.closeTime)]),
  ]).join('\n');
}

/** `tempered schedule list`. */
export function formatSchedules(list: ScheduleListing[]): string {
  if (list.length === 0) return 'no schedules';
  return table([
    ['SCHEDULE ID', 'CRON', 'STATE', 'NEXT RUN', 'LAST RUN'],
    ...list.map((s) => [
      s.scheduleId,
      s.cron.join('; ') || '-',
      s.paused ? 'paused' : 'active',
      iso(s.nextActionTimes[0]),
      s.recentRuns.at(-1)?.workflowId ?? '-',
    ]),
  ]).join('\n');
}

/** `tempered show` on a running workflow: the progress line and what is known so far. */
export function formatProgress(
  p: LiveProgress | RunProgress,
  options: ProgressLineOptions & { workflowId?: string; link?: string } = {},
) {
  const lines = [`run ${options.workflowId ?? ''}: ${p.status}`.trimEnd(), formatProgressLine(p, options)];
  if (p.baseline)
    lines.push(
      `baseline  clean ${pct(p.baseline.clean)}  ${p.baseline.robust.map((r) => `${r.attack} ${pct(r.accuracy)}`).join('  ')}`,
    );
  if (p.hardened)
    lines.push(
      `hardened  clean ${pct(p.hardened.clean)}  ${p.hardened.robust.map((r) => `${r.attack} ${pct(r.accuracy)}`).join('  ')}`,
    );
  if (p.gate) lines.push(`gate      ${p.gate.passed ? 'PASSED' : 'FAILED'}: ${p.gate.reasons.join('; ')}`);
  if (p.checkpointKey) lines.push(`checkpoint ${p.checkpointKey} (${p.checkpoints})`);
  if (options.link) lines.push(`temporal  ${options.link}`);
  return lines.join('\n');
}
