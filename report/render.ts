/**
 * The run report: one self-contained `report.html` a security team reads and signs off on. Inline CSS, inline
 * SVG plots, images as `data:` URIs, and a Content-Security-Policy that forbids scripts and every network
 * fetch, so the file opens offline and a spec string cannot turn into markup (all text is escaped as well).
 *
 * `renderReport` is pure and synchronous: it takes example images already encoded as PNG. `buildReport`
 * (`report/build.ts`) encodes raw pixels with sharp first.
 */
import { reuseLine } from './reuse';
import { stringify as toYaml } from 'yaml';
import type { AttackAccuracy, ClassMetrics, EvaluationRole, Metrics, RunSummary } from '../schemas/payloads';
import { EVALUATION_CSS, sanitySection, waterfallSection, worstCaseSection } from './evaluation';

/** One adversarial example with its images encoded as PNG (see `report/images.ts`). */
export interface EncodedExample {
  /** True label. */
  label: number;
  /** Name of the true label (falls back to the class names, then the index). */
  name?: string;
  cleanPrediction: number;
  adversarialPrediction: number;
  attack?: string;
  eps?: number;
  clean: Uint8Array;
  adversarial: Uint8Array;
  /** The amplified perturbation (adversarial − clean), if rendered. */
  perturbation?: Uint8Array;
  /** The factor the perturbation was amplified by. */
  amplification?: number;
}

/** Everything the report shows apart from the example images. */
export interface ReportData {
  /** What `hardeningRun` returned (or what it knows so far). */
  summary: RunSummary;
  /** The parsed spec (or its input): shown as YAML. Anything YAML-serialisable. */
  spec?: unknown;
  baseline?: Metrics;
  hardened?: Metrics;
  /** Class names by label; `summary.dataset.classNames` when absent. */
  classNames?: readonly string[];
  /** When the report was rendered. Default now. */
  generatedAt?: Date;
}

export interface RenderInput extends ReportData {
  examples?: readonly EncodedExample[];
}

// ---------------------------------------------------------------------------------------------------------------
// Text helpers

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content and quoted attribute values. */
export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** 0.9123 → "91.2%". */
export function pct(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? '—' : `${(x * 100).toFixed(1)}%`;
}

/** A difference of accuracies in percentage points: "+12.3 pp", "−4.0 pp". */
export function pp(d: number | undefined): string {
  if (d === undefined || !Number.isFinite(d)) return '—';
  const v = d * 100;
  if (Math.abs(v) < 0.05) return '±0.0 pp';
  return `${v > 0 ? '+' : '−'}${Math.abs(v).toFixed(1)} pp`;
}

/** ε as a short number, with its /255 form when it is a whole number of 8-bit steps (8/255 ≈ 0.0314). */
export function fmtEps(eps: number): string {
  const short = Number(eps.toPrecision(3)).toString();
  const steps = eps * 255;
  const whole = Math.round(steps);
  return whole >= 1 && Math.abs(steps - whole) < 0.01 && whole % 255 !== 0 && !Number.isInteger(eps * 100)
    ? `${short} (${whole}/255)`
    : short;
}

function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return '—';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function fmtDate(d: Date): string {
  return d
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
}

function pngDataUri(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
}

// ---------------------------------------------------------------------------------------------------------------
// SVG line plot

export interface PlotSeries {
  name: string;
  color: string;
  /** `label` is written next to a marker-only point (e.g. the attack name). */
  points: readonly { x: number; y: number; label?: string }[];
  /** Draw markers only (no line), e.g. a few attack results. */
  markersOnly?: boolean;
  dashed?: boolean;
}

/** A tick step of 1, 2, 2.5 or 5 × 10^k giving about `target` ticks over [0, max]. */
function niceStep(max: number, target = 6): number {
  const raw = max / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => raw <= s) ?? 10 * mag;
  return step;
}

/**
 * An accuracy-against-ε line plot as inline SVG (y in [0, 1] shown as percent). `marker` draws a vertical
 * guide (e.g. the training ε).
 */
export function linePlot(
  series: readonly PlotSeries[],
  options: { title: string; xLabel: string; yLabel: string; marker?: { x: number; label: string } },
): string {
  const W = 900;
  const H = 320;
  const m = { l: 60, r: 20, t: 16, b: 52 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  if (options.marker) xs.push(options.marker.x);
  const rawMax = Math.max(0, ...xs);
  const step = rawMax > 0 ? niceStep(rawMax) : 1;
  const xMax = rawMax > 0 ? Math.ceil(rawMax / step - 1e-9) * step : 1;
  const sx = (x: number) => m.l + (x / xMax) * pw;
  const sy = (y: number) => m.t + (1 - Math.min(1, Math.max(0, y))) * ph;
  const r = (v: number) => v.toFixed(1);
  const parts: string[] = [];
  for (let i = 0; i <= 5; i++) {
    const y = i / 5;
    parts.push(
      `<line class="grid" x1="${m.l}" x2="${m.l + pw}" y1="${r(sy(y))}" y2="${r(sy(y))}"/>`,
      `<text class="tick" x="${m.l - 8}" y="${r(sy(y) + 4)}" text-anchor="end">${i * 20}%</text>`,
    );
  }
  const decimals = Math.max(
    0,
    -Math.floor(Math.log10(step) + 1e-9) + (step / 10 ** Math.floor(Math.log10(step)) === 2.5 ? 1 : 0),
  );
  for (let x = 0; x <= xMax + step / 2; x += step) {
    parts.push(
      `<line class="grid vertical" x1="${r(sx(x))}" x2="${r(sx(x))}" y1="${m.t}" y2="${m.t + ph}"/>`,
      `<text class="tick" x="${r(sx(x))}" y="${m.t + ph + 18}" text-anchor="middle">${x.toFixed(decimals)}</text>`,
    );
  }
  parts.push(
    `<line class="axis" x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}"/>`,
    `<line class="axis" x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}"/>`,
    `<text class="label" x="${m.l + pw / 2}" y="${H - 10}" text-anchor="middle">${esc(options.xLabel)}</text>`,
    `<text class="label" transform="translate(16 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(options.yLabel)}</text>`,
  );
  if (options.marker) {
    const x = r(sx(options.marker.x));
    parts.push(
      `<line class="marker" x1="${x}" x2="${x}" y1="${m.t}" y2="${m.t + ph}"/>`,
      `<text class="marker-label" x="${Number(x) + 6}" y="${m.t + 14}">${esc(options.marker.label)}</text>`,
    );
  }
  for (const s of series) {
    const pts = [...s.points].filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    if (pts.length === 0) continue;
    const color = esc(s.color);
    if (!s.markersOnly && pts.length > 1) {
      const d = pts.map((p, i) => `${i === 0 ? 'M' : 'L'}${r(sx(p.x))} ${r(sy(p.y))}`).join(' ');
      parts.push(
        `<path class="series" d="${d}" stroke="${color}"${s.dashed ? ' stroke-dasharray="6 4"' : ''}><title>${esc(s.name)}</title></path>`,
      );
    }
    for (const p of pts) {
      parts.push(
        `<circle cx="${r(sx(p.x))}" cy="${r(sy(p.y))}" r="${s.markersOnly ? 5 : 3.5}" fill="${s.markersOnly ? '#fff' : color}" stroke="${color}" stroke-width="2"><title>${esc(s.name)}${p.label ? ` · ${esc(p.label)}` : ''}: ε ${esc(fmtEps(p.x))} → ${pct(p.y)}</title></circle>`,
      );
      if (s.markersOnly && p.label) {
        parts.push(
          `<text class="point-label" x="${r(sx(p.x) + 9)}" y="${r(sy(p.y) + 4)}" fill="${color}">${esc(p.label)}</text>`,
        );
      }
    }
  }
  return (
    `<svg class="plot" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(options.title)}">` +
    `<title>${esc(options.title)}</title>${parts.join('')}</svg>`
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Sections

const BASELINE_COLOR = '#94a3b8';
const HARDENED_COLOR = '#1d4ed8';
/** Per-class bars: clean in a light tint, robust in the model's colour. */
const BAR_COLORS = { baseline: ['#cbd5e1', '#64748b'], hardened: ['#93c5fd', '#1d4ed8'] } as const;

interface Ctx {
  s: RunSummary;
  baseline?: Metrics;
  hardened?: Metrics;
  names: readonly string[];
  spec?: unknown;
}

const className = (ctx: Ctx, label: number, name?: string) => name ?? ctx.names[label] ?? `class ${label}`;

function robustOf(metrics: Metrics | undefined, fallback: RunSummary['baseline']): readonly AttackAccuracy[] {
  return metrics?.robust ?? fallback?.robustByAttack ?? [];
}

function deltaCell(d: number | undefined): string {
  if (d === undefined || !Number.isFinite(d)) return '<td class="num muted">—</td>';
  const cls = Math.abs(d) < 0.0005 ? 'flat' : d > 0 ? 'up' : 'down';
  return `<td class="num delta ${cls}">${pp(d)}</td>`;
}

function statusBadge(s: RunSummary): string {
  const label = { completed: 'Completed · promoted', rejected: 'Rejected', cancelled: 'Cancelled' }[s.status];
  return `<span class="badge status-${esc(s.status)}">${esc(label)}</span>`;
}

function header(ctx: Ctx, generatedAt: Date): string {
  const { s } = ctx;
  const ds = s.dataset;
  const facts: [string, string][] = [
    ['Run', `<code>${esc(s.workflowId)}</code>`],
    ['Stage at end', esc(s.stage)],
    [
      'Dataset',
      ds
        ? `${esc(ds.source)} <span class="muted">(${esc(ds.format)}, ${ds.counts.train} train / ${ds.counts.test} test, ${ds.imageShape.join('×')})</span>`
        : '—',
    ],
    ['Backend', esc(s.backend ?? ctx.hardened?.backend ?? ctx.baseline?.backend ?? '—')],
    ['Baseline model', s.baselineModel ? `<code>${esc(s.baselineModel.uri)}</code>` : '—'],
    ['Generated', esc(fmtDate(generatedAt))],
  ];
  return `<header class="top">
  <div class="brand">tempered · adversarial hardening report</div>
  <div class="title-row"><h1>${esc(s.modelName)}</h1>${statusBadge(s)}</div>
  <dl class="facts">${facts.map(([k, v]) => `<div><dt>${k}</dt><dd>${v}</dd></div>`).join('')}</dl>
</header>`;
}

function kpis(ctx: Ctx): string {
  const { s } = ctx;
  const b = s.baseline;
  const h = s.hardened;
  const gateSpec = (ctx.spec as { gate?: { attack?: unknown } } | undefined)?.gate;
  const gateAttack = typeof gateSpec?.attack === 'string' ? gateSpec.attack : undefined;
  const card = (label: string, value: number | undefined, base: number | undefined, note: string) => {
    const d = value !== undefined && base !== undefined ? value - base : undefined;
    const cls = d === undefined ? '' : Math.abs(d) < 0.0005 ? 'flat' : d > 0 ? 'up' : 'down';
    return `<div class="kpi"><div class="kpi-label">${esc(label)}</div><div class="kpi-value">${pct(value)}</div>
<div class="kpi-note">${d === undefined ? esc(note) : `<span class="delta ${cls}">${pp(d)}</span> vs baseline ${pct(base)}`}</div></div>`;
  };
  return `<section class="kpis">
${card(`Robust accuracy (hardened, ${gateAttack ? `under ${gateAttack}` : ctx.hardened?.worstCase ? `worst case, ${ctx.hardened.suite ?? 'custom'} suite` : 'weakest attack'})`, h?.robust, b?.robust, 'no hardened evaluation')}
${card('Clean accuracy (hardened)', h?.clean, b?.clean, 'no hardened evaluation')}
<div class="kpi"><div class="kpi-label">Checkpoints written</div><div class="kpi-value">${s.checkpoints}</div><div class="kpi-note">${s.checkpointKey ? `last: <code>${esc(s.checkpointKey)}</code>` : '&nbsp;'}</div></div>
</section>`;
}

function gateSection(ctx: Ctx): string {
  const { s } = ctx;
  const g = s.gate;
  if (!g) {
    const why =
      s.status === 'cancelled'
        ? `The run was cancelled during <b>${esc(s.stage)}</b>${s.cancel?.by ? ` by ${esc(s.cancel.by)}` : ''}${s.cancel?.reason ? `: ${esc(s.cancel.reason)}` : ''} before the gate decided.`
        : 'The gate did not decide in this run.';
    return `<section class="gate gate-none"><h2>Gate decision</h2><p>${why}</p></section>`;
  }
  const who =
    g.decidedBy === 'person'
      ? `decided by ${esc(g.by ?? 'a person')}`
      : g.decidedBy === 'timeout'
        ? 'no decision before the approval timeout'
        : 'decided by the gate';
  const verdict = g.passed ? 'PASSED' : 'REJECTED';
  const promoted = s.artifact
    ? s.artifact.promoted
      ? `Production now names version <code>${esc(s.artifact.version)}</code>.`
      : `Version <code>${esc(s.artifact.version)}</code> was stored; production did not move.`
    : '';
  return `<section class="gate ${g.passed ? 'gate-pass' : 'gate-fail'}">
  <div class="gate-head"><span class="verdict">${verdict}</span><span class="who">${who}</span></div>
  <ul class="reasons">${g.reasons.map((r) => `<li>${esc(r)}</li>`).join('')}</ul>
  ${promoted ? `<p class="promoted">${promoted}</p>` : ''}
</section>`;
}

function comparisonTable(ctx: Ctx): string {
  const { s } = ctx;
  const bClean = ctx.baseline?.clean ?? s.baseline?.clean;
  const hClean = ctx.hardened?.clean ?? s.hardened?.clean;
  const bRobust = robustOf(ctx.baseline, s.baseline);
  const hRobust = robustOf(ctx.hardened, s.hardened);
  const attacks: string[] = [];
  for (const a of [...hRobust, ...bRobust]) if (!attacks.includes(a.attack)) attacks.push(a.attack);
  const row = (label: string, b: number | undefined, h: number | undefined, cls = '') =>
    `<tr class="${cls}"><th scope="row">${label}</th><td class="num">${pct(b)}</td><td class="num strong">${pct(h)}</td>${deltaCell(b !== undefined && h !== undefined ? h - b : undefined)}</tr>`;
  const rows = [row('Clean accuracy', bClean, hClean, 'clean-row')];
  for (const name of attacks) {
    const b = bRobust.find((a) => a.attack === name);
    const h = hRobust.find((a) => a.attack === name);
    const eps = (h ?? b)?.eps;
    rows.push(
      row(
        `Robust · <b>${esc(name)}</b>${eps !== undefined ? ` <span class="muted">ε = ${esc(fmtEps(eps))}</span>` : ''}`,
        b?.accuracy,
        h?.accuracy,
      ),
    );
  }
  const images = ctx.hardened?.images ?? ctx.baseline?.images;
  return `<section><h2>Baseline vs hardened</h2>
<table class="compare"><thead><tr><th></th><th class="num">Baseline</th><th class="num">Hardened</th><th class="num">Δ</th></tr></thead>
<tbody>${rows.join('')}</tbody></table>
${images !== undefined ? `<p class="caption">Measured on ${images} test images. Δ in percentage points (hardened − baseline).</p>` : ''}
</section>`;
}

function epsSection(ctx: Ctx): string {
  const series: PlotSeries[] = [];
  const curve = (m: Metrics | undefined) => (m?.epsCurve ?? []).map((p) => ({ x: p.eps, y: p.accuracy }));
  const attackPoints = (m: Metrics | undefined) =>
    (m?.robust ?? []).map((a) => ({ x: a.eps, y: a.accuracy, label: a.attack }));
  for (const [role, m, color] of [
    ['Baseline', ctx.baseline, BASELINE_COLOR],
    ['Hardened', ctx.hardened, HARDENED_COLOR],
  ] as const) {
    const c = curve(m);
    if (c.length > 0) series.push({ name: `${role} (ε sweep)`, color, points: c });
    const a = attackPoints(m);
    if (a.length > 0) series.push({ name: `${role} (evaluation attacks)`, color, points: a, markersOnly: true });
  }
  if (series.length === 0) return '';
  const spec = ctx.spec as { epsilon?: { max?: unknown }; attack?: { norm?: unknown } } | undefined;
  const norm = spec?.attack?.norm === 'l2' ? 'L2' : spec?.attack?.norm === 'linf' ? 'L∞' : 'L∞ or L2';
  const trainEps = typeof spec?.epsilon?.max === 'number' ? spec.epsilon.max : undefined;
  const plot = linePlot(series, {
    title: 'Robust accuracy against ε',
    xLabel: `ε (${norm} radius, pixels in [0, 1])`,
    yLabel: 'accuracy',
    marker: trainEps !== undefined ? { x: trainEps, label: `training ε = ${fmtEps(trainEps)}` } : undefined,
  });
  const legend = series
    .map(
      (s) =>
        `<span class="legend-item"><span class="swatch ${s.markersOnly ? 'ring' : ''}" style="--c:${esc(s.color)}"></span>${esc(s.name)}</span>`,
    )
    .join('');
  return `<section><h2>Robust accuracy against ε</h2>
<figure class="plot-figure">${plot}<figcaption class="legend">${legend}</figcaption></figure>
<p class="caption">Accuracy under attack as the perturbation budget ε grows (ε = 0 is clean accuracy). Open circles are the configured evaluation attacks.</p>
</section>`;
}

function bar(value: number | undefined, kind: EvaluationRole, robust = false): string {
  if (value === undefined || !Number.isFinite(value)) return '<td class="bar-cell muted">—</td>';
  const w = Math.max(0, Math.min(100, value * 100)).toFixed(1);
  return `<td class="bar-cell"><div class="bar"><span style="width:${w}%;background:${BAR_COLORS[kind][robust ? 1 : 0]}"></span></div><span class="bar-value">${pct(value)}</span></td>`;
}

function perClassSection(ctx: Ctx): string {
  const b = ctx.baseline?.perClass ?? [];
  const h = ctx.hardened?.perClass ?? [];
  if (b.length === 0 && h.length === 0) return '';
  const labels = [...new Set([...h, ...b].map((c) => c.label))].sort((x, y) => x - y);
  const find = (list: readonly ClassMetrics[], label: number) => list.find((c) => c.label === label);
  const rows = labels.map((label) => {
    const bc = find(b, label);
    const hc = find(h, label);
    const name = className(ctx, label, hc?.name ?? bc?.name);
    return `<tr><th scope="row"><span class="label-index">${label}</span> ${esc(name)}</th><td class="num muted">${hc?.images ?? bc?.images ?? '—'}</td>${bar(bc?.clean, 'baseline')}${bar(bc?.robust, 'baseline', true)}${bar(hc?.clean, 'hardened')}${bar(hc?.robust, 'hardened', true)}</tr>`;
  });
  return `<section><h2>Accuracy per class</h2>
<table class="per-class"><thead>
<tr><th rowspan="2">Class</th><th rowspan="2" class="num">Images</th><th colspan="2" class="group">Baseline</th><th colspan="2" class="group">Hardened</th></tr>
<tr><th>clean</th><th>robust</th><th>clean</th><th>robust</th></tr></thead>
<tbody>${rows.join('')}</tbody></table>
<p class="caption">Robust accuracy per class is measured under the gate's attack (or the first evaluation attack).</p>
</section>`;
}

function confusionSection(ctx: Ctx): string {
  const cm = ctx.hardened?.confusion ?? [];
  if (cm.length === 0) return '';
  const n = cm.length;
  const head = Array.from(
    { length: n },
    (_, j) => `<th class="col-head"><span>${esc(className(ctx, j))}</span></th>`,
  ).join('');
  const rows = cm.map((row, i) => {
    const total = row.reduce((a, v) => a + v, 0);
    const cells = row.map((v, j) => {
      const f = total > 0 ? v / total : 0;
      const diag = i === j;
      const alpha = diag ? 0.08 + 0.92 * f : Math.min(1, f * 2.5);
      const bg =
        v === 0 ? 'transparent' : diag ? `rgba(29,78,216,${alpha.toFixed(3)})` : `rgba(220,38,38,${alpha.toFixed(3)})`;
      const dark = alpha > 0.5 && v > 0;
      const title = `true ${className(ctx, i)}, predicted ${className(ctx, j)}: ${v} of ${total} (${pct(f)})`;
      return `<td class="cm${diag ? ' diag' : ''}${dark ? ' dark' : ''}" style="background:${bg}" title="${esc(title)}">${v}</td>`;
    });
    return `<tr><th scope="row" class="row-head">${esc(className(ctx, i))}</th>${cells.join('')}<td class="num muted row-acc">${pct(total > 0 ? row[i] / total : undefined)}</td></tr>`;
  });
  return `<section><h2>Confusion matrix · hardened model, clean images</h2>
<div class="scroll"><table class="confusion"><thead><tr><th class="corner">true ↓ · predicted →</th>${head}<th class="col-head"><span>recall</span></th></tr></thead>
<tbody>${rows.join('')}</tbody></table></div>
<p class="caption">Rows are the true class, columns the prediction. Blue: correct (shade = share of the row); red: confusions.</p>
</section>`;
}

function examplesSection(ctx: Ctx, examples: readonly EncodedExample[]): string {
  if (examples.length > 0) {
    const cards = examples.map((e) => {
      const truth = className(ctx, e.label, e.name);
      const cleanOk = e.cleanPrediction === e.label;
      const advOk = e.adversarialPrediction === e.label;
      const img = (png: Uint8Array, alt: string, cap: string, pred?: { label: number; ok: boolean }) =>
        `<figure><img src="${pngDataUri(png)}" alt="${esc(alt)}"/><figcaption>${cap}${pred ? `<span class="pred ${pred.ok ? 'ok' : 'bad'}">${esc(className(ctx, pred.label))}</span>` : ''}</figcaption></figure>`;
      const amp = e.amplification !== undefined ? ` ×${Number(e.amplification.toPrecision(2))}` : '';
      return `<div class="example">
<div class="example-head"><span>true: <b>${esc(truth)}</b></span>${e.attack ? `<span class="muted">${esc(e.attack)}${e.eps !== undefined ? ` · ε ${esc(fmtEps(e.eps))}` : ''}</span>` : ''}</div>
<div class="triple">${img(e.clean, `clean image of ${truth}`, 'clean → ', { label: e.cleanPrediction, ok: cleanOk })}${e.perturbation ? img(e.perturbation, 'perturbation', `perturbation${esc(amp)}`) : ''}${img(e.adversarial, `adversarial image of ${truth}`, 'adversarial → ', { label: e.adversarialPrediction, ok: advOk })}</div>
</div>`;
    });
    return `<section><h2>Adversarial examples</h2>
<div class="examples">${cards.join('')}</div>
<p class="caption">Each example shows the clean test image, the perturbation the attack added (amplified so it is visible; grey is no change) and the adversarial image, with the hardened model's prediction for each. Green: correct; red: wrong.</p>
</section>`;
  }
  const kept = ctx.hardened?.examples ?? [];
  if (kept.length === 0) return '';
  const rows = kept.map(
    (e) =>
      `<tr><td class="num">${e.index}</td><td>${esc(className(ctx, e.label))}</td><td class="${e.cleanPrediction === e.label ? 'ok' : 'bad'}">${esc(className(ctx, e.cleanPrediction))}</td><td class="${e.adversarialPrediction === e.label ? 'ok' : 'bad'}">${esc(className(ctx, e.adversarialPrediction))}</td><td>${esc(e.attack)}</td></tr>`,
  );
  return `<section><h2>Adversarial examples</h2>
<table class="plain"><thead><tr><th class="num">Test image</th><th>True</th><th>Clean prediction</th><th>Adversarial prediction</th><th>Attack</th></tr></thead><tbody>${rows.join('')}</tbody></table></section>`;
}

function detailsSection(ctx: Ctx): string {
  const { s } = ctx;
  const timings = Object.entries(s.timings);
  const total = timings.reduce((a, [, v]) => a + v, 0);
  const timingRows = timings
    .map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td class="num">${esc(fmtSeconds(v))}</td></tr>`)
    .join('');
  const artifact = s.artifact
    ? `<dl class="kv"><dt>Stored at</dt><dd><code>${esc(s.artifact.uri)}</code></dd><dt>Version</dt><dd>${esc(s.artifact.version)}</dd><dt>Promoted</dt><dd>${s.artifact.promoted ? 'yes' : 'no'}</dd>${s.artifact.productionUri ? `<dt>Production</dt><dd><code>${esc(s.artifact.productionUri)}</code></dd>` : ''}</dl>`
    : '<p class="muted">No artifact was stored.</p>';
  const warnings =
    s.warnings.length > 0
      ? `<div class="warnings"><h3>Warnings</h3><ul>${s.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></div>`
      : '';
  const reuse = reuseLine(s);
  const sha = s.dataset ? Object.entries(s.dataset.sha256s) : [];
  const shaRows = sha
    .map(([f, h]) => `<tr><td><code>${esc(f)}</code></td><td><code class="hash">${esc(h)}</code></td></tr>`)
    .join('');
  return `<section class="two-col">
<div><h2>Artifact</h2>${artifact}${reuse ? `<p class="muted">Reused: ${esc(reuse)}</p>` : ''}${warnings}</div>
<div><h2>Timings</h2>${timings.length > 0 ? `<table class="plain timings"><tbody>${timingRows}<tr class="total"><th scope="row">total</th><td class="num">${esc(fmtSeconds(total))}</td></tr></tbody></table>` : '<p class="muted">None recorded.</p>'}</div>
</section>
${sha.length > 0 ? `<section><h2>Dataset checksums (SHA-256)</h2><table class="plain"><tbody>${shaRows}</tbody></table></section>` : ''}`;
}

function specSection(spec: unknown): string {
  if (spec === undefined) return '';
  let text: string;
  try {
    text = toYaml(spec, { lineWidth: 0 });
  } catch {
    text = JSON.stringify(spec, null, 2);
  }
  return `<section><details class="spec"><summary>Run spec (YAML)</summary><pre>${esc(text)}</pre></details></section>`;
}

// ---------------------------------------------------------------------------------------------------------------
// Page

const CSS = `
:root{--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f8fafc;--card:#fff;--blue:#1d4ed8;--green:#15803d;--red:#b91c1c;--amber:#b45309}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1080px;margin:0 auto;padding:28px 32px 48px}
h1{font-size:26px;margin:0;letter-spacing:-.01em}
h2{font-size:16px;margin:0 0 12px;color:var(--fg)}
h3{font-size:14px;margin:16px 0 6px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin:16px 0}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f1f5f9;border-radius:4px;padding:1px 4px;word-break:break-all}
.muted{color:var(--muted)}
.caption{color:var(--muted);font-size:12.5px;margin:10px 0 0}
.top{padding:4px 0 8px}
.brand{text-transform:uppercase;letter-spacing:.12em;font-size:11px;color:var(--muted);font-weight:600}
.title-row{display:flex;align-items:center;gap:14px;margin:6px 0 14px;flex-wrap:wrap}
.badge{display:inline-block;border-radius:999px;padding:3px 12px;font-size:12px;font-weight:600;border:1px solid}
.status-completed{color:var(--green);background:#f0fdf4;border-color:#bbf7d0}
.status-rejected{color:var(--red);background:#fef2f2;border-color:#fecaca}
.status-cancelled{color:var(--amber);background:#fffbeb;border-color:#fde68a}
.facts{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:8px 24px;margin:0}
.facts div{min-width:0}
.facts dt{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted)}
.facts dd{margin:0;overflow-wrap:anywhere}
.kpis{display:grid;grid-template-columns:repeat(3,1fr);gap:0;padding:0}
.kpi{padding:16px 20px;border-right:1px solid var(--line)}
.kpi:last-child{border-right:0}
.kpi-label{font-size:12px;color:var(--muted)}
.kpi-value{font-size:28px;font-weight:650;letter-spacing:-.02em;font-variant-numeric:tabular-nums}
.kpi-note{font-size:12.5px;color:var(--muted);overflow-wrap:anywhere}
.delta.up{color:var(--green)}.delta.down{color:var(--red)}.delta.flat{color:var(--muted)}
.kpi .delta{font-weight:600}
.gate{border-left-width:6px}
.gate-pass{border-left-color:var(--green)}.gate-fail{border-left-color:var(--red)}.gate-none{border-left-color:var(--amber)}
.gate-head{display:flex;align-items:baseline;gap:12px}
.verdict{font-size:20px;font-weight:700;letter-spacing:.04em}
.gate-pass .verdict{color:var(--green)}.gate-fail .verdict{color:var(--red)}
.who{color:var(--muted)}
.reasons{margin:10px 0 0;padding-left:20px}
.reasons li{margin:3px 0}
.promoted{margin:10px 0 0}
table{border-collapse:collapse;width:100%}
th,td{padding:7px 10px;text-align:left;border-bottom:1px solid var(--line);vertical-align:middle}
thead th{font-size:12px;color:var(--muted);font-weight:600;border-bottom:1px solid #cbd5e1}
tbody tr:last-child th,tbody tr:last-child td{border-bottom:0}
th[scope=row]{font-weight:500}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.strong{font-weight:650}
.compare .clean-row{background:#f8fafc}
.delta{font-weight:600}
.plot-figure{margin:0}
.plot{width:100%;height:auto;display:block}
.plot .grid{stroke:#eef2f7}.plot .grid.vertical{stroke:#f3f6fa}
.plot .axis{stroke:#94a3b8}
.plot .tick{font-size:11px;fill:#64748b}
.plot .label{font-size:12px;fill:#334155}
.plot .series{fill:none;stroke-width:2.5;stroke-linejoin:round;stroke-linecap:round}
.plot .marker{stroke:#b45309;stroke-dasharray:4 4}
.plot .marker-label{font-size:11px;fill:#b45309}
.plot .point-label{font-size:11px;font-weight:600;paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}
.legend{display:flex;gap:18px;flex-wrap:wrap;font-size:12.5px;color:#334155;margin-top:4px;padding-left:60px}
.legend-item{display:inline-flex;align-items:center;gap:6px}
.swatch{width:18px;height:3px;background:var(--c);border-radius:2px;display:inline-block}
.swatch.ring{width:10px;height:10px;background:#fff;border:2px solid var(--c);border-radius:50%}
.per-class th.group{text-align:center;border-bottom:1px solid var(--line)}
.label-index{display:inline-block;min-width:18px;color:var(--muted);font-variant-numeric:tabular-nums}
.bar-cell{white-space:nowrap;width:17%}
.bar{display:inline-block;vertical-align:middle;width:calc(100% - 52px);height:8px;background:#f1f5f9;border-radius:4px;overflow:hidden}
.bar span{display:block;height:100%}
.bar-value{display:inline-block;width:48px;text-align:right;font-variant-numeric:tabular-nums;font-size:12.5px}
.scroll{overflow-x:auto}
.confusion{width:auto;margin:0 auto}
.confusion td.cm{width:44px;height:34px;text-align:center;font-variant-numeric:tabular-nums;font-size:12.5px;border:1px solid #f1f5f9;padding:0}
.confusion td.cm.dark{color:#fff;font-weight:600}
.confusion .col-head{vertical-align:bottom;padding:4px 2px;border-bottom:1px solid #cbd5e1}
.confusion .col-head span{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;display:inline-block;max-height:130px;overflow:hidden;text-overflow:ellipsis}
.confusion .row-head{white-space:nowrap;font-size:12.5px;padding-right:12px;border-bottom:0}
.confusion .corner{font-size:11px;vertical-align:bottom;white-space:nowrap}
.confusion .row-acc{border-bottom:0;font-size:12px}
.examples{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:14px}
.example{border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.example-head{display:flex;justify-content:space-between;gap:8px;font-size:13px;margin-bottom:8px}
.triple{display:flex;gap:10px;justify-content:space-between}
.triple figure{margin:0;text-align:center;flex:1;min-width:0}
.triple img{width:96px;height:96px;image-rendering:pixelated;border-radius:4px;border:1px solid var(--line);background:#000;display:block;margin:0 auto}
.triple figcaption{font-size:11.5px;color:var(--muted);margin-top:4px;line-height:1.35}
.pred{display:block;font-weight:600;font-size:12px}
.pred.ok,.ok{color:var(--green)}.pred.bad,.bad{color:var(--red)}
.two-col{display:grid;grid-template-columns:1fr 1fr;gap:28px}
.kv{display:grid;grid-template-columns:auto 1fr;gap:6px 14px;margin:0}
.kv dt{color:var(--muted)}.kv dd{margin:0;overflow-wrap:anywhere}
.timings .total th,.timings .total td{font-weight:650;border-top:1px solid #cbd5e1}
.warnings ul{margin:0;padding-left:18px;color:var(--amber)}
.hash{font-size:11.5px}
.spec summary{cursor:pointer;font-weight:600}
.spec pre{background:#0f172a;color:#e2e8f0;border-radius:8px;padding:14px 16px;overflow:auto;font:12.5px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;margin:12px 0 0}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:24px}
@media (max-width:760px){.facts,.kpis,.two-col{grid-template-columns:1fr}.kpi{border-right:0;border-bottom:1px solid var(--line)}}
@media print{body{background:#fff}main{padding:0;max-width:none}section{break-inside:avoid;border-color:#cbd5e1}.spec[open] pre,.spec pre{white-space:pre-wrap}}
`;

/**
 * Renders the run report as one self-contained HTML document. Every string from the spec, the summary or the
 * metrics is escaped; images are `data:` URIs; the page loads nothing and runs no script (its CSP says so).
 */
export function renderReport(input: RenderInput): string {
  const ctx: Ctx = {
    s: input.summary,
    baseline: input.baseline,
    hardened: input.hardened,
    names: input.classNames ?? input.summary.dataset?.classNames ?? [],
    spec: input.spec,
  };
  const generatedAt = input.generatedAt ?? new Date();
  const body = [
    header(ctx, generatedAt),
    kpis(ctx),
    worstCaseSection(ctx.baseline, ctx.hardened),
    gateSection(ctx),
    comparisonTable(ctx),
    waterfallSection(ctx.hardened),
    sanitySection(ctx.hardened),
    epsSection(ctx),
    perClassSection(ctx),
    confusionSection(ctx),
    examplesSection(ctx, input.examples ?? []),
    detailsSection(ctx),
    specSection(input.spec),
  ].join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="generator" content="tempered">
<title>${esc(`${input.summary.modelName} · hardening report · ${input.summary.workflowId}`)}</title>
<style>${CSS}${EVALUATION_CSS}</style>
</head>
<body>
<main>
${body}
<footer>Generated by tempered on ${esc(fmtDate(generatedAt))}. This file is self-contained: it loads nothing over the network and runs no scripts.</footer>
</main>
</body>
</html>
`;
}
