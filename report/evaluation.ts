/**
 * The report's evaluation sections: the worst-case headline with its interval and the suite named, the reported
 * (each listed attack alone) vs worst-case gap, the waterfall of how many points each attack broke, and the
 * sanity panel. Pure HTML strings; every text is escaped. Empty for metrics recorded before suites existed.
 */
import type { Interval, Metrics } from '../schemas/payloads';
import { SANITY_CHECKS, sanityNumbers } from '../workflows/gate';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (v: unknown) => String(v).replace(/[&<>"']/g, (c) => ESCAPES[c]);
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const interval = (i: Interval) => `${pct(i.low)} – ${pct(i.high)}`;

/** The suite's attacks in the order they ran, e.g. `APGD-CE → APGD-T → FAB-T → Square`. */
const chain = (m: Metrics) => (m.suiteAttacks ?? []).map((a) => esc(a.attack)).join(' → ');

/** The headline: worst-case robust accuracy of the hardened model (and the baseline's), and the gap. */
export function worstCaseSection(baseline: Metrics | undefined, hardened: Metrics | undefined): string {
  const w = hardened?.worstCase;
  if (!hardened || !w) return '';
  const suite = hardened.suite ?? 'custom';
  const listed = suite === 'custom' ? [] : hardened.robust;
  const gaps = listed.map((r) => {
    const gap = r.accuracy - w.accuracy;
    return `<li><b>${esc(r.attack)}</b> alone reports ${pct(r.accuracy)}${r.interval ? ` <span class="muted">(${interval(r.interval)})</span>` : ''}: the worst case is <b class="${gap > 0.0005 ? 'bad' : ''}">${(gap * 100).toFixed(1)} points</b> lower.</li>`;
  });
  const b = baseline?.worstCase;
  return `<section class="worst-case">
<div class="wc-head">
  <div><div class="kpi-label">Worst-case robust accuracy · hardened</div>
  <div class="wc-value">${pct(w.accuracy)}</div>
  <div class="wc-interval">95% interval ${interval(w.interval)} · ${w.robust} of ${hardened.images} test images robust to every attack</div></div>
  <div class="wc-suite"><div class="kpi-label">Suite</div><div class="wc-suite-name">${esc(suite)}</div>
  <div class="muted">${chain(hardened)}${listed.length ? ` · and ${listed.map((r) => esc(r.attack)).join(', ')} on its own` : ''} · ε = ${esc(w.eps)}</div>
  ${b ? `<div class="muted">Baseline worst case: ${pct(b.accuracy)} (${interval(b.interval)})</div>` : ''}</div>
</div>
${gaps.length ? `<h3>Reported vs worst case</h3><ul class="gaps">${gaps.join('')}</ul>` : ''}
<p class="caption">A test image counts as robust only if the model classifies it correctly clean and no attack of the evaluation changes its class (the per-example worst case). Intervals are 95% Wilson score intervals.</p>
</section>`;
}

/** How many points each attack broke, in the order they ran, on top of the clean errors. */
export function waterfallSection(hardened: Metrics | undefined): string {
  const steps = hardened?.suiteAttacks;
  if (!hardened || !steps?.length) return '';
  const n = hardened.images;
  const clean = Math.round(hardened.clean * n);
  const row = (label: string, before: number, after: number, note: string, cls: string) => {
    const w = (k: number) => (n === 0 ? 0 : (100 * k) / n).toFixed(2);
    return `<tr><th scope="row">${label}</th><td class="wf-cell"><div class="wf-track"><span class="wf-kept" style="width:${w(after)}%"></span><span class="wf-${cls}" style="width:${w(before - after)}%"></span></div></td><td class="num">${note}</td><td class="num strong">${pct(n ? after / n : 0)}</td></tr>`;
  };
  const rows = [row('Clean', n, clean, `${n - clean} wrong`, 'lost')];
  let before = clean;
  for (const s of steps) {
    const after = before - s.broke;
    rows.push(row(`<b>${esc(s.attack)}</b>`, before, after, `−${s.broke} broken`, 'broke'));
    before = after;
  }
  const w = hardened.worstCase;
  if (w && w.robust < before)
    rows.push(
      row(
        '<b>listed attacks</b> <span class="muted">(on their own)</span>',
        before,
        w.robust,
        `−${before - w.robust} broken`,
        'broke',
      ),
    );
  return `<section><h2>Waterfall · hardened model, ${n} test images</h2>
<table class="waterfall"><thead><tr><th></th><th></th><th class="num">Points</th><th class="num">Robust after</th></tr></thead><tbody>${rows.join('')}</tbody></table>
<p class="caption">Each attack runs only on the points every earlier attack left robust; the bar is what remains robust, the red part what this attack broke.</p>
</section>`;
}

/** The sanity panel: every check, what it expects, whether it fired, and its numbers. */
export function sanitySection(hardened: Metrics | undefined): string {
  const flags = hardened?.sanity;
  if (!flags?.length) return '';
  const rows = flags.map((f) => {
    const status = !f.evaluated
      ? '<span class="muted">not evaluated</span>'
      : f.fired
        ? '<span class="flag-fired">FIRED</span>'
        : '<span class="ok">passed</span>';
    return `<tr class="${f.fired ? 'fired' : ''}"><th scope="row"><code>${esc(f.name)}</code></th><td>${esc(SANITY_CHECKS[f.name] ?? '')}</td><td>${status}</td><td class="numbers">${esc(sanityNumbers(f))}</td></tr>`;
  });
  const fired = flags.filter((f) => f.fired).length;
  return `<section><h2>Sanity panel · gradient-masking checks</h2>
<table class="sanity"><thead><tr><th>Check</th><th>Expected</th><th>Result</th><th>Numbers</th></tr></thead><tbody>${rows.join('')}</tbody></table>
<p class="caption">${fired ? `${fired} check${fired > 1 ? 's' : ''} fired: the robust figure may be inflated by gradient masking or an attack that did not converge.` : 'No check fired.'} Checks after Carlini et al. (2019) and AutoAttack.</p>
</section>`;
}

export const EVALUATION_CSS = `
.worst-case{border-left:6px solid var(--blue)}
.wc-head{display:grid;grid-template-columns:1fr 1fr;gap:24px}
.wc-value{font-size:40px;font-weight:700;letter-spacing:-.02em;font-variant-numeric:tabular-nums;color:var(--blue)}
.wc-interval{color:#334155}
.wc-suite-name{font-size:20px;font-weight:650}
.gaps{margin:6px 0 0;padding-left:20px}
.waterfall .wf-cell{width:55%}
.wf-track{display:flex;height:14px;background:#f1f5f9;border-radius:3px;overflow:hidden}
.wf-kept{background:#1d4ed8}.wf-broke{background:#dc2626}.wf-lost{background:#cbd5e1}
.sanity th code{white-space:nowrap}
.sanity .numbers{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:#334155}
.sanity tr.fired{background:#fef2f2}
.flag-fired{color:var(--red);font-weight:700}
`;
