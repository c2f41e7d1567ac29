/**
 * The gate: pure functions over metrics, deterministic, used by the workflow and unit-tested on their own.
 */
import type { AccuracySummary, AttackAccuracy, GateDecision, Interval, Metrics, SanityFlag } from '../schemas/payloads';
import type { GateSpec } from '../schemas/spec';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const EPS = 1e-9;

/** The robust figure the gate reads, with the words that say what it is. */
export interface GateRobust extends AttackAccuracy {
  /** e.g. `the worst case over the standard suite (apgd-ce, apgd-t, fab-t, square) and pgd20`. */
  describe: string;
}

const interval = (i: Interval | undefined) => (i ? ` (95% interval ${pct(i.low)}–${pct(i.high)})` : '');

/**
 * The robust result the gate reads: its named attack (an `evaluation.attacks` entry on its own, or a suite attack's
 * accuracy once it and every earlier one ran), else the per-example worst case over every attack that ran, else
 * (results recorded before suites existed) the weakest result over all attacks.
 */
export function gateRobust(gate: Pick<GateSpec, 'attack'>, metrics: Metrics): GateRobust | undefined {
  if (gate.attack !== undefined) {
    const listed = metrics.robust.find((r) => r.attack === gate.attack);
    if (listed) return { ...listed, describe: `under ${listed.attack} (ε=${listed.eps})` };
    const steps = metrics.suiteAttacks ?? [];
    const i = steps.findIndex((s) => s.attack === gate.attack);
    if (i < 0 || !metrics.worstCase) return undefined;
    const s = steps[i];
    const upTo = steps.slice(0, i + 1).map((x) => x.attack);
    return {
      attack: s.attack,
      eps: metrics.worstCase.eps,
      accuracy: s.accuracyAfter,
      interval: s.interval,
      describe: `after ${upTo.join(' → ')} of the ${metrics.suite ?? ''} suite (ε=${metrics.worstCase.eps})`,
    };
  }
  if (metrics.worstCase) {
    const w = metrics.worstCase;
    const suiteNames = (metrics.suiteAttacks ?? []).map((s) => s.attack);
    const listed = metrics.suite === 'custom' ? [] : metrics.robust.map((r) => r.attack);
    const over = [
      ...(suiteNames.length ? [`the ${metrics.suite ?? ''} suite (${suiteNames.join(', ')})`] : []),
      ...listed,
    ];
    return {
      attack: 'worst-case',
      eps: w.eps,
      accuracy: w.accuracy,
      interval: w.interval,
      describe: `as the per-example worst case over ${over.join(' and ')} (ε=${w.eps})`,
    };
  }
  const min = metrics.robust.reduce<AttackAccuracy | undefined>(
    (m, r) => (!m || r.accuracy < m.accuracy ? r : m),
    undefined,
  );
  return min && { ...min, describe: `under ${min.attack} (ε=${min.eps})` };
}

/** What each sanity check looks for, in a few words. */
export const SANITY_CHECKS: Record<string, string> = {
  'eps-monotone': 'robust accuracy falls as ε grows',
  'large-eps': 'an attack at a radius that reaches every image leaves nothing robust',
  'single-step': 'the iterative attack breaks every point the single-step one breaks',
  'more-iterations': 'more iterations and restarts do not lower accuracy beyond the noise',
  'black-box': 'the black-box attack (Square) finds nothing the white-box ones missed',
  'zero-gradients': 'no image has an all-zero loss gradient at its clean point',
  'softmax-output': 'the attacked scores are logits, not probabilities',
  'non-deterministic': 'two forward passes on the same images agree',
};

/** A flag's numbers as one line, e.g. `whiteBox=0.589, afterBlackBox=0.577, broke=12` (fractions to 4 places). */
export function sanityNumbers(flag: Pick<SanityFlag, 'numbers'>): string {
  return Object.entries(flag.numbers)
    .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : Number(v.toFixed(4))}`)
    .join(', ');
}

/** Clean and gate-robust accuracy of one evaluation. */
export function summarize(gate: Pick<GateSpec, 'attack'>, metrics: Metrics): AccuracySummary {
  return { clean: metrics.clean, robust: gateRobust(gate, metrics)?.accuracy ?? 0, robustByAttack: metrics.robust };
}

/**
 * The automatic decision: the hardened model must reach `minRobustAccuracy` under the gate's figure (the worst
 * case unless `gate.attack` names one), lose at most `maxCleanAccuracyDrop` clean accuracy against the baseline,
 * and (with `failOnMaskingFlags`, the default) raise no gradient-masking flag. Every criterion gives a reason,
 * met or not.
 */
export function evaluateGate(
  gate: Pick<GateSpec, 'attack' | 'minRobustAccuracy' | 'maxCleanAccuracyDrop'> &
    Partial<Pick<GateSpec, 'failOnMaskingFlags'>>,
  baseline: Metrics,
  hardened: Metrics,
): GateDecision {
  const reasons: string[] = [];
  let passed = true;
  const robust = gateRobust(gate, hardened);
  if (!robust) {
    passed = false;
    reasons.push(
      gate.attack !== undefined
        ? `no robust accuracy for attack ${gate.attack} in the benchmark`
        : 'the benchmark reported no robust accuracy',
    );
  } else {
    const ok = robust.accuracy + EPS >= gate.minRobustAccuracy;
    passed &&= ok;
    reasons.push(
      `robust accuracy ${pct(robust.accuracy)}${interval(robust.interval)} ${robust.describe} ${
        ok ? 'meets' : 'is below'
      } the required ${pct(gate.minRobustAccuracy)}`,
    );
  }
  const drop = baseline.clean - hardened.clean;
  const ok = drop <= gate.maxCleanAccuracyDrop + EPS;
  passed &&= ok;
  reasons.push(
    `clean accuracy ${pct(hardened.clean)} vs baseline ${pct(baseline.clean)}: ${
      drop > 0 ? `a drop of ${pct(drop)}` : 'no drop'
    }, ${ok ? 'within' : 'beyond'} the allowed ${pct(gate.maxCleanAccuracyDrop)}`,
  );
  const fired = (hardened.sanity ?? []).filter((f) => f.fired);
  const refuse = gate.failOnMaskingFlags ?? true;
  for (const f of fired) {
    passed &&= !refuse;
    const expected = SANITY_CHECKS[f.name] ? ` (expected: ${SANITY_CHECKS[f.name]})` : '';
    reasons.push(
      `sanity check ${f.name} fired${expected}: ${sanityNumbers(f)}${
        refuse ? '' : '; ignored, gate.failOnMaskingFlags is false'
      }`,
    );
  }
  const ran = (hardened.sanity ?? []).filter((f) => f.evaluated).length;
  if (hardened.sanity && fired.length === 0) reasons.push(`no gradient-masking flag fired (${ran} sanity checks)`);
  return { passed, reasons, decidedBy: 'gate' };
}
