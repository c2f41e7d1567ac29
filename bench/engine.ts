/**
 * One tfjs engine's measurement, run as its own process by bench/run.ts (a process holds one backend).
 * Usage: tsx bench/engine.ts <wasm|cpu|tensorflow|tensorflow-gpu|wasm-dpN> <seconds> <minIters> <optimizer> [model]
 * (model: reference or small-resnet; tensorflow's threads come from TF_NUM_INTRAOP_THREADS, set by bench/run.ts)
 * `wasm-dpN` is data parallelism over N worker threads, each with its own wasm backend (tensor/parallel); the main
 * thread holds the master model and takes the optimizer step.
 * Prints one JSON line: {"engine","threads","advTrainExamplesPerSec","pgd20EvalExamplesPerSec",
 * "advTrainExamplesPerCpuSec","pgd20EvalExamplesPerCpuSec","simd","pgd"}.
 */
import { initBackend } from '../tensor/backend';
import type { BackendName } from '../tensor/backend';
import { loadPgd, measureDataParallel, measureTfjs, workloadFor } from './workload';
import type { BenchModel } from './workload';

const [name = 'wasm', seconds = '6', minIters = '2', optimizer = 'sgd', model = 'reference'] = process.argv.slice(2);
const dp = /^(wasm|tensorflow(?:-gpu)?)-dp(\d+)$/.exec(name);
const report = await initBackend((dp ? dp[1] : name) as BackendName, { log: () => {} });
const workload = workloadFor(model as BenchModel, optimizer as 'sgd' | 'adam');
let r: Awaited<ReturnType<typeof measureTfjs>>;
let threads = report.threads;
let source = 'tensor/attacks';
if (dp) {
  threads = Number(dp[2]);
  r = await measureDataParallel(workload, report.name, threads, Number(seconds), Number(minIters));
} else {
  const loaded = await loadPgd(workload.eps);
  source = loaded.source;
  r = await measureTfjs(workload, loaded.pgd, Number(seconds), Number(minIters));
}
process.stdout.write(
  `${JSON.stringify({
    engine: dp ? `tfjs-${report.name}-dp${threads}` : `tfjs-${report.name}`,
    threads,
    advTrainExamplesPerSec: r.advTrain.wall,
    pgd20EvalExamplesPerSec: r.pgd20Eval.wall,
    advTrainExamplesPerCpuSec: r.advTrain.cpu,
    pgd20EvalExamplesPerCpuSec: r.pgd20Eval.cpu,
    simd: report.simd,
    model: workload.model,
    pgd: source,
  })}\n`,
);
