import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { buildReport } from '../../../report/build';
import { encodePng, perturbationPixels } from '../../../report/images';
import { esc, fmtEps, linePlot, pp, renderReport } from '../../../report/render';
import type { RunSummary } from '../../../schemas/payloads';
import {
  CLASS_NAMES,
  EVIL,
  baseline,
  examplePixels,
  hardened,
  spec,
  suiteBaseline,
  suiteHardened,
  suiteSpec,
  suiteSummary,
  summary,
} from './fixture';

const FIXED = new Date('2025-01-31T12:00:00Z');

test('shows the headline numbers, deltas and the gate reasons', () => {
  const html = renderReport({ summary, spec, baseline, hardened, generatedAt: FIXED });
  assert.ok(html.includes('Robust accuracy (hardened, under pgd10)'));
  for (const n of ['87.4%', '79.2%', '12.6%', '58.3%', '1.8%', '51.7%']) assert.ok(html.includes(n), `missing ${n}`);
  assert.ok(html.includes('−8.2 pp'), 'clean drop');
  assert.ok(html.includes('+49.9 pp'), 'pgd10 gain');
  assert.ok(html.includes('+45.7 pp'), 'fgsm gain');
  assert.ok(html.includes('PASSED'));
  for (const r of summary.gate?.reasons ?? []) assert.ok(html.includes(esc(r)), `missing reason ${r}`);
  assert.ok(html.includes('2025-01-31 12:00:00 UTC'));
  assert.ok(html.includes('version <code>v7</code>'));
});

test('escapes user text everywhere: no live <script> from the model name, spec or warnings', () => {
  const html = renderReport({ summary, spec, baseline, hardened, generatedAt: FIXED });
  assert.ok(!/<script/i.test(html), 'a <script> tag survived');
  assert.ok(html.includes(esc(EVIL)));
  assert.ok(html.includes('fashion-mnist-demo &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'));
  assert.ok(html.includes('hostile description &lt;script&gt;'), 'spec YAML escaped');
  assert.ok(html.includes('a warning mentioning &lt;script&gt;'));
  const attr = renderReport({
    summary: { ...summary, gate: undefined, status: 'cancelled', cancel: { by: '"><img src=x onerror=alert(1)>' } },
    generatedAt: FIXED,
  });
  assert.ok(!attr.includes('<img src=x'), 'markup in a cancel reason survived');
  assert.equal(esc(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
});

test('is self-contained: no network references, scripts forbidden by CSP, images inline', async () => {
  const html = await buildReport({ summary, spec, baseline, hardened, examples: examplePixels(), generatedAt: FIXED });
  assert.ok(!/\b(src|href)\s*=\s*["']?\s*(https?:)?\/\//i.test(html), 'a network resource reference');
  assert.ok(!/<link\b/i.test(html), 'a <link> element');
  assert.ok(!/url\(\s*["']?(https?:)?\/\//i.test(html), 'a CSS url() to the network');
  assert.ok(!/@import/i.test(html));
  assert.match(html, /Content-Security-Policy" content="default-src 'none'; img-src data:/);
  const imgs = [...html.matchAll(/<img src="([^"]+)"/g)].map((m) => m[1]);
  assert.equal(imgs.length, 6 * 3, 'clean, perturbation, adversarial per example');
  assert.ok(imgs.every((src) => src.startsWith('data:image/png;base64,')));
});

test('draws the ε curve for both models, the per-class table and the confusion heat map', () => {
  const html = renderReport({ summary, spec, baseline, hardened, generatedAt: FIXED });
  const svg = /<svg class="plot"[^]*?<\/svg>/.exec(html)?.[0] ?? '';
  assert.equal((svg.match(/<path class="series"/g) ?? []).length, 2, 'two lines');
  assert.equal((svg.match(/<circle /g) ?? []).length, 6 + 6 + 2 + 2, 'curve points and attack markers');
  assert.ok(svg.includes('training ε = 0.1'));
  for (const name of CLASS_NAMES) assert.ok(html.includes(esc(name)), `class ${name}`);
  assert.equal((html.match(/<td class="cm/g) ?? []).length, 100);
  assert.ok(html.includes('title="true Shirt, predicted Shirt: 28 of 50 (56.0%)"'));
  assert.ok(html.includes('<summary>Run spec (YAML)</summary>'));
  assert.ok(html.includes('minRobustAccuracy: 0.4'));
});

test('plots higher accuracy higher up (y axis is not inverted)', () => {
  const svg = linePlot(
    [
      {
        name: 'a',
        color: '#000',
        points: [
          { x: 0, y: 1 },
          { x: 1, y: 0 },
        ],
      },
    ],
    {
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
    },
  );
  const d = /d="M([\d.]+) ([\d.]+) L([\d.]+) ([\d.]+)"/.exec(svg);
  assert.ok(d, svg);
  assert.ok(Number(d[2]) < Number(d[4]), 'y = 1 drawn above y = 0');
  assert.ok(Number(d[1]) < Number(d[3]));
});

test('a cancelled run without metrics still renders, saying where it stopped', () => {
  const cancelled: RunSummary = {
    status: 'cancelled',
    workflowId: 'harden-x-1',
    modelName: 'x',
    stage: 'training',
    checkpoints: 3,
    checkpointKey: 'runs/x/ckpt-3',
    timings: { training: 12 },
    cancel: { by: 'alice', reason: 'wrong dataset' },
    warnings: [],
  };
  const html = renderReport({ summary: cancelled, generatedAt: FIXED });
  assert.ok(html.includes('Cancelled'));
  assert.ok(html.includes('cancelled during <b>training</b> by alice: wrong dataset'));
  assert.ok(!html.includes('<svg'), 'no plot without data');
});

test('formats deltas and ε', () => {
  assert.equal(pp(-0.082), '−8.2 pp');
  assert.equal(pp(0.00001), '±0.0 pp');
  assert.equal(fmtEps(8 / 255), '0.0314 (8/255)');
  assert.equal(fmtEps(0.1), '0.1');
});

test('encodePng upscales with nearest neighbour and keeps the pixels', async () => {
  const pixels = new Float32Array([0, 1, 0.5, 0.25]);
  const png = await encodePng(pixels, 2, 2, 1, 3);
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['png', 6, 6, 1], 'a grey PNG stays grey');
  const { data } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([data[0], data[2], data[3], data[5], data[18], data[21], data[35]], [0, 0, 255, 255, 128, 64, 64]);
  await assert.rejects(encodePng(new Uint8Array(5), 2, 2, 1), /5 values but the shape 2 × 2 × 1 needs 4/);
  const rgb = await encodePng(new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]), 2, 2, 3);
  const rgbMeta = await sharp(rgb).metadata();
  assert.deepEqual([rgbMeta.width, rgbMeta.channels], [2 * 56, 3], 'colour kept, default scale ≈ 112 px');
});

test('perturbationPixels centres on grey and stretches the largest change to the range', () => {
  const { pixels, amplification } = perturbationPixels(
    new Uint8Array([100, 100, 100]),
    new Float32Array([100 / 255 + 0.1, 100 / 255 - 0.05, 100 / 255]),
  );
  assert.ok(Math.abs(amplification - 5) < 1e-3);
  assert.ok(Math.abs(pixels[0] - 1) < 1e-5);
  assert.ok(Math.abs(pixels[1] - 0.25) < 1e-5);
  assert.ok(Math.abs(pixels[2] - 0.5) < 1e-5);
});

test('a suite run: the worst-case headline with its interval and suite, the gap to the listed attack', () => {
  const html = renderReport({
    summary: suiteSummary,
    spec: suiteSpec,
    baseline: suiteBaseline,
    hardened: suiteHardened,
    generatedAt: FIXED,
  });
  const head = html.slice(
    html.indexOf('<section class="worst-case">'),
    html.indexOf('</section>', html.indexOf('worst-case">')),
  );
  assert.match(head, /Worst-case robust accuracy · hardened<\/div>\s*<div class="wc-value">57\.6%<\/div>/);
  assert.match(head, /95% interval 54\.5% – 60\.6% · 576 of 1000 test images robust to every attack/);
  assert.match(head, /<div class="wc-suite-name">standard<\/div>/);
  assert.match(head, /apgd-ce → apgd-t → fab-t → square · and pgd20 on its own · ε = 0\.1/);
  assert.match(head, /<b>pgd20<\/b> alone reports 61\.8%.*the worst case is <b class="bad">4\.2 points<\/b> lower/);
  assert.match(html, /Robust accuracy \(hardened, worst case, standard suite\)/);
});

test('a suite run: the waterfall counts what each attack broke; the sanity panel lists every check', () => {
  const html = renderReport({
    summary: suiteSummary,
    spec: suiteSpec,
    baseline: suiteBaseline,
    hardened: suiteHardened,
  });
  const rows = [
    ...html.matchAll(
      /<tr><th scope="row">(.*?)<\/th><td class="wf-cell">.*?<td class="num">(.*?)<\/td><td class="num strong">(.*?)<\/td>/g,
    ),
  ].map((m) => [m[1].replace(/<[^>]+>/g, ''), m[2], m[3]]);
  assert.deepEqual(rows, [
    ['Clean', '195 wrong', '80.5%'],
    ['apgd-ce', '−213 broken', '59.2%'],
    ['apgd-t', '−15 broken', '57.7%'],
    ['fab-t', '−0 broken', '57.7%'],
    ['square', '−0 broken', '57.7%'],
    ['listed attacks (on their own)', '−1 broken', '57.6%'],
  ]);
  assert.equal((html.match(/<table class="sanity">/g) ?? []).length, 1);
  assert.equal((html.match(/<span class="ok">passed<\/span>/g) ?? []).length, 8);
  assert.match(html, /No check fired\./);
  const fired = renderReport({
    summary: suiteSummary,
    hardened: {
      ...suiteHardened,
      sanity: [{ name: 'zero-gradients', fired: true, evaluated: true, numbers: { share: 0.25, images: 64 } }],
    },
  });
  assert.match(
    fired,
    /<tr class="fired"><th scope="row"><code>zero-gradients<\/code><\/th>.*FIRED.*share=0\.25, images=64/,
  );
  assert.match(fired, /1 check fired: the robust figure may be inflated/);
});

test('metrics recorded before suites: no headline, waterfall or panel', () => {
  const html = renderReport({ summary, spec, baseline, hardened });
  assert.doesNotMatch(html, /class="worst-case"|class="waterfall"|class="sanity"/);
});
