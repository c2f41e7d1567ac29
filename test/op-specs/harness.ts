// The start of an op-spec bundle (test/op-specs/build.ts): jasmine's globals, the backend under test registered as
// tfjs-core's one test environment, then (appended by the build) tfjs-core's own spec files. Bundled with tfjs-core's
// ESM sources, so the specs, the backend packages and our kernels share one tfjs-core: one kernel registry, one
// engine. Run: `node <bundle> <out.json>`; it writes every spec's full name and status there.
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's own test utility: registers test environments and wraps describe() per environment.
import { setTestEnvs } from '@tensorflow/tfjs-core/dist/jasmine_util';
// @ts-expect-error jasmine-core ships no types; the harness uses its core(), interface() and getEnv() only
import jasmineRequire from 'jasmine-core/lib/jasmine-core/jasmine.js';
import { registerTensorflowKernels } from '../../tensor/backend/tensorflow-kernels';
import { registerWasmTrainingKernels } from '../../tensor/backend/wasm-kernels';

/** What a bundle runs on: a backend as tfjs ships it (`-stock`), or with our kernels and workarounds registered. */
export type OpSpecTarget = 'wasm-stock' | 'wasm' | 'tensorflow-stock' | 'tensorflow';

declare const OP_SPEC_TARGET: OpSpecTarget;
declare const WASM_DIST: string;

/** Where the run's results go, and how each spec ended. */
export interface OpSpecResult {
  target: OpSpecTarget;
  tfjsCore: string;
  seconds: number;
  specs: { name: string; status: 'passed' | 'failed' | 'excluded' | 'pending'; message?: string }[];
}

const jasmine = jasmineRequire.core(jasmineRequire);
const env = jasmine.getEnv();
Object.assign(globalThis, jasmineRequire.interface(jasmine, env), { jasmine });
jasmine.DEFAULT_TIMEOUT_INTERVAL = 20000;
env.configure({ random: false, failSpecWithNoExpectations: false, oneFailurePerSpec: false });

const backendName = OP_SPEC_TARGET.startsWith('tensorflow') ? 'tensorflow' : 'wasm';
// Before any spec file runs its describe(): tfjs-core's helper needs its test environment then.
setTestEnvs([{ name: backendName, backendName, isDataSync: true }]);

/** Loads the target's backend and, unless it is a `-stock` target, registers ours on it. */
export async function registerTarget(): Promise<void> {
  if (backendName === 'tensorflow') {
    await import('@tensorflow/tfjs-node');
    if (OP_SPEC_TARGET === 'tensorflow') registerTensorflowKernels();
  } else {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(WASM_DIST);
    if (OP_SPEC_TARGET === 'wasm') registerWasmTrainingKernels();
  }
  const name = backendName;
  if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend('${name}') failed`);
}

export function runSpecs(out: string): void {
  const specs: OpSpecResult['specs'] = [];
  const started = Date.now();
  env.addReporter({
    specDone(r: { fullName: string; status: string; failedExpectations: { message: string }[] }) {
      const status = r.status === 'passed' || r.status === 'failed' || r.status === 'excluded' ? r.status : 'pending';
      specs.push({
        name: r.fullName,
        status,
        ...(status === 'failed' ? { message: (r.failedExpectations[0]?.message ?? '').slice(0, 300) } : {}),
      });
    },
    jasmineDone() {
      const result: OpSpecResult = {
        target: OP_SPEC_TARGET,
        tfjsCore: tf.version_core,
        seconds: (Date.now() - started) / 1000,
        specs,
      };
      writeFileSync(out, JSON.stringify(result));
      // Native thread pools and wasm workers would keep the process alive.
      process.exit(0);
    },
  });
  env.execute();
}
