/**
 * TensorFlow.js's own op specs (tfjs-core 4.22, every `*_test.js` it publishes that runs in Node) on the backend of
 * this phase, with our kernels and workarounds registered: wasm in the first phase, tensorflow in the second.
 *
 * `test/op-specs/known-failures.json` lists the specs that fail on the same backend as tfjs ships it (`wasm-stock`,
 * `tensorflow-stock`: `npx tsx test/op-specs/build.ts --target wasm-stock --write-known`). A spec that fails here
 * and is not on that list is one our kernels broke, and fails this test with its message.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { KNOWN_FAILURES_FILE, failedNames, runOpSpecs, type KnownFailures } from '../../../op-specs/build';

const target = process.env.TEMPERED_BACKEND === 'tensorflow' ? 'tensorflow' : 'wasm';

test(`tfjs-core's op specs on ${target} with our kernels: nothing the stock backend passes fails`, async (t) => {
  const known = JSON.parse(readFileSync(KNOWN_FAILURES_FILE, 'utf8')) as KnownFailures;
  const stockFailures = new Set(known[`${target}-stock`]);
  const result = await runOpSpecs(target);
  const passed = result.specs.filter((s) => s.status === 'passed').length;
  const failed = failedNames(result);
  t.diagnostic(`${passed} passed, ${failed.length} failed of ${result.specs.length} (${result.seconds.toFixed(0)} s)`);

  assert.equal(result.tfjsCore, '4.22.0');
  // A bundle whose specs never registered (or a backend that never started) runs next to nothing.
  assert.ok(passed > 3000, `only ${passed} of ${result.specs.length} specs passed`);

  const broken = result.specs.filter((s) => s.status === 'failed' && !stockFailures.has(s.name));
  assert.deepEqual(
    broken.map((s) => `${s.name}: ${s.message}`),
    [],
    `${broken.length} specs fail with our kernels that pass on stock ${target}`,
  );
  const fixed = [...stockFailures].filter((name) => result.specs.some((s) => s.name === name && s.status === 'passed'));
  t.diagnostic(`stock ${target} fails ${stockFailures.size}; ours passes ${fixed.length} of those`);
});
