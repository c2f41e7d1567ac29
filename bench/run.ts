/**
 * `npm run bench [-- --json] [--seconds 6] [--rounds 2] [--model reference|small-resnet]
 *   [--engines wasm,wasm-dp2,tensorflow-1,tensorflow-2,cpu,pytorch,pytorch-2] [--optimizer sgd|adam] [--cpu-timeout 300]`
 *
 * `--model small-resnet`: the same measurement on tensor/models' small ResNet (32×32×3 random images, 'same' 3×3
 * convolutions, stride-2 stages, 1×1 projections, global average pooling) with PGD at ε = 8/255, step ε/4: the
 * model a CIFAR-10 user trains, next to the tiny reference CNN the wasm kernels were tuned for.
 *
 * Adversarial-training throughput (reference CNN, batch 128 of random 28×28×1 images, PGD-7 at ε = 0.1, step ε/4,
 * random start, then one optimizer step on the adversarial batch) and PGD-20 evaluation throughput (attack +
 * prediction), for each tfjs backend that starts and for PyTorch (bench/torch_bench.py), run in separate processes
 * one after another and interleaved over rounds, because the machine is shared and noisy. Each figure is the best
 * round.
 *
 * Engines: a tfjs backend name (wasm, cpu, tensorflow, tensorflow-gpu: one thread per op on wasm and cpu);
 * `tensorflow-N` is tensorflow with TF_NUM_INTRAOP_THREADS = TF_NUM_INTEROP_THREADS = N (dropped with a note where
 * `npm run setup:tensorflow` has not built it);
 * `wasm-dpN`, data parallelism over N worker threads with a wasm backend each (bench/parallel: each thread attacks
 * and differentiates its shard of the batch, the main thread averages the gradients and steps), the only way to a
 * second core on wasm, whose own threads are off under Node; `pytorch` (one thread) and `pytorch-N` (N threads).
 * Each row's "× PyTorch" columns compare it with the PyTorch row of the same thread count (— when none ran).
 *
 * Besides wall-clock rates, each engine reports examples per second of its own CPU time (all its threads), the
 * steadier figure when other processes share the machine (the load average is printed with the table).
 * The cpu backend is slow: it runs once, one step each with no warm-up, and is
 * dropped when that exceeds --cpu-timeout seconds.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeBackends } from '../tensor/backend/probe';
import { BENCH_MODELS } from './workload';
import type { BenchModel } from './workload';

interface Result {
  engine: string;
  threads: number;
  advTrainExamplesPerSec: number;
  pgd20EvalExamplesPerSec: number;
  /** The same rates per second of the engine process's own CPU time (absent from engines that do not report it). */
  advTrainExamplesPerCpuSec?: number;
  pgd20EvalExamplesPerCpuSec?: number;
}

const RATES = [
  'advTrainExamplesPerSec',
  'pgd20EvalExamplesPerSec',
  'advTrainExamplesPerCpuSec',
  'pgd20EvalExamplesPerCpuSec',
] as const;

interface Options {
  /** One JSON object per engine per line instead of the table. Default false. */
  json: boolean;
  /** Seconds each measurement runs (after a warm-up step). Default 6. */
  seconds: number;
  /** Rounds over the engines; each engine keeps its best round. Default 2. */
  rounds: number;
  /** Engines to run. Default wasm, wasm-dp2, cpu, pytorch, pytorch-2. */
  engines: string[];
  /** Optimizer of the training step. Default sgd. */
  optimizer: 'sgd' | 'adam';
  /** Seconds the cpu backend may take for its one train and one eval step before it is reported as too slow. Default 300. */
  cpuTimeout: number;
  /** The workload's model. Default reference. */
  model: BenchModel;
}

const here = dirname(fileURLToPath(import.meta.url));

export function parseArgs(argv: string[]): Options {
  const opts: Options = {
    json: false,
    seconds: 6,
    rounds: 2,
    engines: ['wasm', 'wasm-dp2', 'tensorflow-1', 'tensorflow-2', 'cpu', 'pytorch', 'pytorch-2'],
    optimizer: 'sgd',
    cpuTimeout: 300,
    model: 'reference',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--json') opts.json = true;
    else if (a === '--seconds') opts.seconds = Number(value());
    else if (a === '--rounds') opts.rounds = Number(value());
    else if (a === '--engines') opts.engines = value().split(',');
    else if (a === '--cpu-timeout') opts.cpuTimeout = Number(value());
    else if (a === '--optimizer') opts.optimizer = value() === 'adam' ? 'adam' : 'sgd';
    else if (a === '--model') {
      const m = value();
      if (!(BENCH_MODELS as readonly string[]).includes(m)) {
        throw new Error(`--model: expected one of ${BENCH_MODELS.join(', ')}, got ${m}`);
      }
      opts.model = m as BenchModel;
    } else throw new Error(`unknown argument ${a}; see the comment at the top of bench/run.ts`);
  }
  return opts;
}

/** The first Python that can import torch: $TEMPERED_PYTHON, /usr/bin/python3 (Debian's torch), python3. */
export function findTorchPython(): { python?: string; why: string } {
  const candidates = [process.env.TEMPERED_PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => !!c);
  const failures: string[] = [];
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
    if (r.status === 0) return { python, why: '' };
    failures.push(`${python}: ${(r.error?.message ?? r.stderr.trim().split('\n').pop() ?? '').slice(0, 120)}`);
  }
  return { why: failures.join('; ') };
}

/**
 * `tensorflow-N` / `tensorflow-gpu-N`: the backend and N threads for its pools; `tensorflow-dpN`: N worker threads
 * with one pool thread each. Undefined for other engines.
 */
export function tensorflowThreads(engine: string): { backend: string; threads: number } | undefined {
  const m = /^(tensorflow(?:-gpu)?)-([1-9]\d*)$/.exec(engine);
  if (m) return { backend: m[1], threads: Number(m[2]) };
  const dp = /^(tensorflow(?:-gpu)?)-dp[1-9]\d*$/.exec(engine);
  return dp ? { backend: dp[1], threads: 1 } : undefined;
}

/** PyTorch's thread count for `pytorch` (1) and `pytorch-N` (N); undefined for a tfjs engine. */
export function torchThreads(engine: string): number | undefined {
  const m = /^pytorch(?:-([1-9]\d*))?$/.exec(engine);
  return m ? Number(m[1] ?? 1) : undefined;
}

function runEngine(engine: string, opts: Options, minIters: number, seconds: number, python?: string): Result {
  const threads = torchThreads(engine);
  const tf = tensorflowThreads(engine);
  const r =
    threads !== undefined
      ? spawnSync(
          python!,
          [
            join(here, 'torch_bench.py'),
            '--threads',
            String(threads),
            '--seconds',
            String(seconds),
            '--min-iters',
            String(minIters),
            '--optimizer',
            opts.optimizer,
            '--model',
            opts.model,
          ],
          { encoding: 'utf8' },
        )
      : spawnSync(
          process.execPath,
          [
            '--import',
            'tsx',
            join(here, 'engine.ts'),
            engine.includes('-dp') ? engine : (tf?.backend ?? engine),
            String(seconds),
            String(minIters),
            opts.optimizer,
            opts.model,
          ],
          {
            encoding: 'utf8',
            maxBuffer: 1 << 24,
            timeout: engine === 'cpu' ? opts.cpuTimeout * 1000 : undefined,
            env: tf
              ? {
                  ...process.env,
                  TF_NUM_INTRAOP_THREADS: String(tf.threads),
                  TF_NUM_INTEROP_THREADS: String(tf.threads),
                }
              : process.env,
          },
        );
  if (r.signal === 'SIGTERM' && engine === 'cpu') {
    throw new Error(`cpu skipped: one train and one eval step took over ${opts.cpuTimeout} s (--cpu-timeout)`);
  }
  const line = r.stdout?.trim().split('\n').pop();
  if (r.status !== 0 || !line) {
    throw new Error(
      `${engine} failed (exit ${r.status}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`,
    );
  }
  return JSON.parse(line) as Result;
}

/** The table; each tfjs row's ratios are against the PyTorch row with the same thread count. */
export function table(results: Result[]): string {
  const torch = new Map(results.filter((r) => r.engine === 'pytorch').map((r) => [r.threads, r]));
  const ratio = (v?: number, ref?: number) => (v && ref ? `${(v / ref).toFixed(2)}×` : '—');
  const fmt = (v?: number) => (v ? v.toFixed(1) : '—');
  const rows = [
    [
      'engine',
      'threads',
      'adv-train ex/s',
      '× PyTorch',
      'PGD-20 eval ex/s',
      '× PyTorch',
      'adv-train ex/CPU-s',
      '× PyTorch',
      'PGD-20 ex/CPU-s',
      '× PyTorch',
    ],
    ...results.map((r) => [
      r.engine,
      String(r.threads),
      ...RATES.flatMap((k) => [fmt(r[k]), ratio(r[k], torch.get(r.threads)?.[k])]),
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => `| ${r.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
  const rule = `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`;
  return [line(rows[0]), rule, ...rows.slice(1).map(line)].join('\n');
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const note = (line: string) => process.stderr.write(`${line}\n`);
  let python: string | undefined;
  if (opts.engines.some((e) => torchThreads(e) !== undefined)) {
    const found = findTorchPython();
    python = found.python;
    if (!python) note(`bench: PyTorch skipped, no python with torch (${found.why})`);
  }
  const probes = probeBackends();
  const engines = opts.engines.filter((e) => {
    const native = tensorflowThreads(e)?.backend ?? (e.startsWith('tensorflow') ? e : undefined);
    const probe = probes.find((p) => p.name === native);
    if (probe && !probe.available) note(`bench: ${e} skipped: ${probe.detail}`);
    return (torchThreads(e) === undefined || python) && (!probe || probe.available);
  });
  note(`bench: model ${opts.model}, batch 128, PGD-7 training step and PGD-20 evaluation`);
  const best = new Map<string, Result>();
  for (let round = 0; round < opts.rounds; round++) {
    for (const engine of engines) {
      const slow = engine === 'cpu';
      if (slow && round > 0) continue;
      try {
        const r = runEngine(engine, opts, slow ? 1 : 2, slow ? 0 : opts.seconds, python);
        note(
          `bench: round ${round + 1} ${r.engine} (${r.threads} thread${r.threads === 1 ? '' : 's'}): ${r.advTrainExamplesPerSec.toFixed(1)} / ${r.pgd20EvalExamplesPerSec.toFixed(1)} ex/s, ` +
            `${r.advTrainExamplesPerCpuSec?.toFixed(1) ?? '—'} / ${r.pgd20EvalExamplesPerCpuSec?.toFixed(1) ?? '—'} ex/CPU-s ` +
            `(load ${loadavg()[0].toFixed(1)})`,
        );
        const prev = best.get(engine);
        const merged: Result = { ...r };
        for (const k of RATES) {
          const v = Math.max(r[k] ?? 0, prev?.[k] ?? 0);
          if (v > 0) merged[k] = v;
        }
        best.set(engine, merged);
      } catch (err) {
        note(`bench: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
  const results = [...best.values()];
  if (opts.json) {
    for (const r of results) {
      const { engine, threads } = r;
      const load = Number(loadavg()[0].toFixed(2));
      process.stdout.write(
        `${JSON.stringify({ engine, threads, ...Object.fromEntries(RATES.map((k) => [k, r[k]])), load })}\n`,
      );
    }
  } else {
    process.stdout.write(`${table(results)}\n`);
    process.stdout.write(
      `load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} on ${availableParallelism()} cores\n`,
    );
  }
}

await main();
