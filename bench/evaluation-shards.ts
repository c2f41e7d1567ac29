/**
 * An evaluation's shards one after another on the main thread (a one-core worker) against the same shards side by
 * side, one thread each (a heavy worker with a core per shard). Prints one JSON line with both times; on wasm the
 * two must agree bit for bit, or it exits 1.
 * Usage: tsx bench/evaluation-shards.ts --model DIR [--backend wasm|tensorflow|cpu] [--images 40] [--shards 2]
 *        [--spec examples/fashion-mnist-demo.yaml]
 * DIR is a saved Fashion-MNIST model (`npm run train:reference -- --out DIR …`).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { runPhases } from '../activities/evaluate-phases';
import { runPhasesOnThread } from '../activities/shard-thread';
import { parseSpec } from '../schemas/spec';
import { initBackend } from '../tensor/backend';
import type { BackendName } from '../tensor/backend';
import { FASHION_MNIST_DIR, loadFashionMnist, subset } from '../tensor/data';
import type { SuiteShardResult } from '../tensor/eval/reduce';
import { loadModel } from '../tensor/models';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    backend: { type: 'string', default: 'wasm' },
    images: { type: 'string', default: '40' },
    shards: { type: 'string', default: '2' },
    spec: { type: 'string', default: 'examples/fashion-mnist-demo.yaml' },
  },
});
const images = Number(values.images);
const shards = Number(values.shards);
if (!values.model || !Number.isInteger(images) || images < 1 || !Number.isInteger(shards) || shards < 1) {
  process.stderr.write('usage: tsx bench/evaluation-shards.ts --model DIR [--backend B] [--images N] [--shards K]\n');
  process.exit(2);
}
const backend = values.backend as BackendName;
await initBackend(backend, { log: () => {} });
const test = subset(await loadFashionMnist(FASHION_MNIST_DIR, 'test'), { strategy: 'first', n: images });
const model = await loadModel(values.model);
const spec = parseSpec(parse(readFileSync(values.spec, 'utf8')));
const fresh = { phase: 0, done: [] };
const per = Math.ceil(images / shards);
const ranges = Array.from({ length: shards }, (_, i) => ({
  start: i * per,
  count: Math.min(per, images - i * per),
})).filter((r) => r.count > 0);
/** Per-image outcomes of every phase of every shard (timings left out). */
const outcomes = (all: SuiteShardResult[][]) => JSON.stringify(all.map((done) => done.map((r) => r.brokenBy)));

let t = performance.now();
const inTurn: SuiteShardResult[][] = [];
for (const r of ranges) inTurn.push(await runPhases(model, test, spec, r, fresh, { report: () => {} }));
const oneSeconds = (performance.now() - t) / 1000;

t = performance.now();
const sideBySide = await Promise.all(
  ranges.map((r) => runPhasesOnThread(model, test, spec, r, fresh, { report: () => {}, backend })),
);
const sideBySideSeconds = (performance.now() - t) / 1000;
const agree = outcomes(inTurn) === outcomes(sideBySide);
console.log(
  JSON.stringify({
    backend,
    images,
    shards: ranges.length,
    oneThreadSeconds: Number(oneSeconds.toFixed(1)),
    sideBySideSeconds: Number(sideBySideSeconds.toFixed(1)),
    speedup: Number((oneSeconds / sideBySideSeconds).toFixed(2)),
    agree,
  }),
);
model.dispose();
process.exit(agree || backend !== 'wasm' ? 0 : 1);
