/**
 * One tfjs engine's measurement, run as its own process by bench/run.ts (a process holds one backend).
 * Usage: tsx bench/engine.ts <wasm|cpu|tensorflow|tensorflow-gpu> <seconds> <minIters> <optimizer>
 * Prints one JSON line: {"engine","threads","advTrainExamplesPerSec","pgd20EvalExamplesPerSec",
 * "advTrainExamplesPerCpuSec","pgd20EvalExamplesPerCpuSec","simd","pgd"}.
 */
import { initBackend } from '../tensor/backend';
import type { BackendName } from '../tensor/backend';
import { DEFAULT_WORKLOAD, loadPgd, measureTfjs } from './workload';

const [name = 'wasm', seconds = '6', minIters = '2', optimizer = 'sgd'] = process.argv.slice(2);
const report = await initBackend(name as BackendName, { log: () => {} });
const workload = { ...DEFAULT_WORKLOAD, optimizer: optimizer as 'sgd' | 'adam' };
const { pgd, source } = await loadPgd(workload.eps);
const r = await measureTfjs(workload, pgd, Number(seconds), Number(minIters));
process.stdout.write(
  `${JSON.stringify({
    engine: `tfjs-${report.name}`,
    threads: report.threads,
    advTrainExamplesPerSec: r.advTrain.wall,
    pgd20EvalExamplesPerSec: r.pgd20Eval.wall,
    advTrainExamplesPerCpuSec: r.advTrain.cpu,
    pgd20EvalExamplesPerCpuSec: r.pgd20Eval.cpu,
    simd: report.simd,
    pgd: source,
  })}\n`,
);
