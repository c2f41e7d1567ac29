/**
 * npx tsx bench/suite.ts --model DIR [--suite standard|fast|plus] [--images 200] [--batch 500] [--eps 0.1]
 *   [--norm linf|l2] [--seed 0] [--backend auto|wasm|cpu|…] [--no-torch] [--json]
 *
 * Seconds per 1000 images of an attack suite (default AutoAttack's standard one) through tempered's runner, the
 * way an evaluation shard runs it (clean pass, then each attack on the points still robust, every batch verified),
 * against a saved layers model on the first N Fashion-MNIST test images; then, where a Python with torch and
 * torchattacks is found (TEMPERED_PYTHON, else crosscheck/.venv/bin/python), the same suite in PyTorch at the same
 * thread count (crosscheck/torch_autoattack.py --threads 1, the reference budgets set explicitly). Prints a table, or
 * with --json one line per engine: {"engine","suite","images","clean","worstCase","attacks","seconds",
 * "secondsPer1000","cpuSeconds","attackSeconds"}. The PyTorch row is skipped, with the reason, when its Python is
 * absent. CPU seconds are the steadier figure on a shared machine.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Norm } from '../tensor/attacks/options';
import { backendReport, initBackend } from '../tensor/backend';
import type { BackendPreference } from '../tensor/backend';
import { FASHION_MNIST_DIR, loadFashionMnist, subset } from '../tensor/data';
import { reduceSuite, runSuiteShard, suiteAttacks } from '../tensor/eval';
import { loadModel } from '../tensor/models';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    suite: { type: 'string', default: 'standard' },
    images: { type: 'string', default: '200' },
    batch: { type: 'string', default: '500' },
    eps: { type: 'string', default: '0.1' },
    norm: { type: 'string', default: 'linf' },
    seed: { type: 'string', default: '0' },
    backend: { type: 'string', default: 'auto' },
    'data-dir': { type: 'string', default: FASHION_MNIST_DIR },
    'no-torch': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const int = (name: 'images' | 'batch' | 'seed') => {
  const v = Number(values[name]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be an integer ≥ 0, got ${values[name]}`);
  return v;
};
if (!values.model) throw new Error('--model DIR is required');
const suite = values.suite as 'standard' | 'fast' | 'plus';
if (!['standard', 'fast', 'plus'].includes(suite)) throw new Error('--suite must be standard, fast or plus');
if (values.norm !== 'linf' && values.norm !== 'l2') throw new Error('--norm must be linf or l2');
const norm = values.norm as Norm;
const eps = Number(values.eps);
const images = int('images');

interface Row {
  engine: string;
  suite: string;
  images: number;
  clean: number;
  worstCase: number;
  attacks: Record<string, number>;
  seconds: number;
  secondsPer1000: number;
  cpuSeconds: number;
  attackSeconds?: Record<string, number>;
}

const round1 = (v: number) => Math.round(v * 10) / 10;
const log = (line: string) => process.stderr.write(`${line}\n`);

await initBackend(values.backend as BackendPreference, { log });
const test = await loadFashionMnist(values['data-dir'] as string, 'test');
const data = subset(test, { strategy: 'first', n: images });
const model = await loadModel(values.model);
const attacks = suiteAttacks(suite, { norm, numClasses: data.numClasses });
const attackSeconds: Record<string, number> = {};
let mark = performance.now();
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const shard = await runSuiteShard(model, data, {
  attacks,
  norm,
  eps,
  start: 0,
  count: data.count,
  batchSize: int('batch'),
  seed: int('seed'),
  onProgress: (_s, p) => {
    const now = performance.now();
    // The time since the last report went to the batch just finished: the clean pass, or an attack's batch.
    const done = p.imagesTotal === 0 ? 'clean' : p.attack;
    attackSeconds[done] = round1((attackSeconds[done] ?? 0) + (now - mark) / 1000);
    mark = now;
    if (p.imagesTotal > 0) log(`  ${p.attack}: ${p.imagesDone}/${p.imagesTotal}`);
  },
});
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
model.dispose();
const result = reduceSuite([shard]);
const rows: Row[] = [
  {
    engine: `tempered-${backendReport().name}`,
    suite,
    images,
    clean: result.clean.accuracy,
    worstCase: result.worstCase.accuracy,
    attacks: Object.fromEntries(result.perAttack.map((a) => [a.name, a.after.accuracy])),
    seconds: round1(seconds),
    secondsPer1000: round1((seconds * 1000) / images),
    cpuSeconds: round1((cpu.user + cpu.system) / 1e6),
    attackSeconds,
  },
];

const crosscheck = join(dirname(fileURLToPath(import.meta.url)), '..', 'crosscheck');
const python = process.env.TEMPERED_PYTHON ?? join(crosscheck, '.venv/bin/python');
let skipped: string | undefined;
if (values['no-torch']) skipped = '--no-torch';
else if (suite !== 'standard') skipped = `crosscheck/torch_autoattack.py runs the standard suite only, not ${suite}`;
else if (!existsSync(python)) skipped = `no Python at ${python} (set TEMPERED_PYTHON or create crosscheck/.venv)`;
else {
  const args = [join(crosscheck, 'torch_autoattack.py'), '--model', values.model, '--images', String(images)];
  args.push('--eps', String(eps), '--norm', norm === 'linf' ? 'Linf' : 'L2', '--threads', '1', '--json');
  args.push('--batch', String(int('batch')), '--data-dir', values['data-dir'] as string);
  const r = spawnSync(python, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  const parsed = (() => {
    try {
      return JSON.parse(last) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  })();
  if (!parsed || r.status !== 0 || 'skipped' in parsed) {
    skipped = `torch_autoattack.py exited ${r.status}${parsed?.skipped ? `: ${String(parsed.skipped)}` : ''}`;
  } else {
    rows.push({
      engine: 'pytorch-1',
      suite,
      images,
      clean: Number(parsed.clean),
      worstCase: Number(parsed.worstCase),
      attacks: Object.fromEntries(['apgd-ce', 'apgd-t', 'fab-t', 'square'].map((k) => [k, Number(parsed[k])])),
      seconds: Number(parsed.seconds),
      secondsPer1000: Number(parsed.secondsPer1000),
      cpuSeconds: Number(parsed.cpuSeconds),
    });
  }
}

if (values.json) {
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
  if (skipped) process.stdout.write(`${JSON.stringify({ engine: 'pytorch-1', skipped })}\n`);
} else {
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  process.stdout.write(`${suite} suite, ${norm} ε=${eps}, first ${images} Fashion-MNIST test images, 1 thread\n`);
  for (const r of rows) {
    process.stdout.write(
      `${r.engine.padEnd(16)} clean ${pct(r.clean)}  worst case ${pct(r.worstCase)}  ` +
        `${r.secondsPer1000} s/1000 images  (${r.seconds} s wall, ${r.cpuSeconds} s CPU)\n`,
    );
  }
  if (rows.length === 2) {
    process.stdout.write(`tempered / PyTorch CPU time: ${(rows[0].cpuSeconds / rows[1].cpuSeconds).toFixed(2)}×\n`);
  }
  if (skipped) process.stdout.write(`pytorch-1 skipped: ${skipped}\n`);
}
