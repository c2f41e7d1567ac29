/**
 * The gate: pure functions over metrics, deterministic, used by the workflow and unit-tested on their own.
 */
import type { AccuracySummary, AttackAccuracy, GateDecision, Metrics } from '../schemas/payloads';
import type { GateSpec } from '../schemas/spec';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const EPS = 1e-9;

/** The robust result the gate reads: its named attack, or the weakest result over all attacks. */
export function gateRobust(gate: Pick<GateSpec, 'attack'>, metrics: Metrics): AttackAccuracy | undefined {
  if (gate.attack !== undefined) return metrics.robust.find((r) => r.attack === gate.attack);
  return metrics.robust.reduce<AttackAccuracy | undefined>(
    (min, r) => (!min || r.accuracy < min.accuracy ? r : min),
    undefined,
  );
}

/** Clean and gate-robust accuracy of one evaluation. */
export function summarize(gate: Pick<GateSpec, 'attack'>, metrics: Metrics): AccuracySummary {
  return { clean: metrics.clean, robust: gateRobust(gate, metrics)?.accuracy ?? 0, robustByAttack: metrics.robust };
}

/**
 * The automatic decision: the hardened model must reach `minRobustAccuracy` under the gate's attack and lose at
 * most `maxCleanAccuracyDrop` clean accuracy against the baseline. Every criterion gives a reason, met or not.
 */
export function evaluateGate(
  gate: Pick<GateSpec, 'attack' | 'minRobustAccuracy' | 'maxCleanAccuracyDrop'>,
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
      `robust accuracy ${pct(robust.accuracy)} under ${robust.attack} (ε=${robust.eps}) ${
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
  return { passed, reasons, decidedBy: 'gate' };
}
