// `npm test`: unit tests, then integration tests against a fresh local stack (temp home, free ports, tied to
// this process), then the stack goes down. Flags: --unit, --integration, --backends (default wasm,tensorflow);
// other arguments filter test files by substring. The last line of output is always `N passed, N failed`.
//
// Backends: every phase runs on wasm (TEMPERED_BACKEND=wasm unless set), then the tensor-core unit tests
// (TENSOR_UNIT_DIR) and the pipeline's kill-and-resume test run again on tensorflow when `npm run
// setup:tensorflow` has built it; without it they are skipped with the reason, which under CI=true is a failure.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { findTemporal } from '../infra/binaries';
import { probeBackends } from '../tensor/backend/probe';
import { REPO_ROOT } from '../infra/config';
import { down, pickFreePorts, stackEnv, tieProcessGroup, up } from '../infra/stack';

/** The tensor core's unit tests (test/unit mirrors the source tree), run on every backend of --backends. */
export const TENSOR_UNIT_DIR = join('test', 'unit', 'tensor');

/** The integration test that also runs on tensorflow: a run killed mid-training resumes and hardens. */
const TENSORFLOW_INTEGRATION = { file: 'pipeline.test.ts', namePattern: 'survives a SIGKILLed worker' };

/** A test file that starts a backend by name (wasm kernels, cpu references) runs on that one only. */
const PINS_BACKEND = /(initBackend|setBackend)\(\s*'(wasm|cpu)'/;

/** The tensor-core unit files among `files` that run on whatever backend is started (`test/support/preload-backend`). */
export function tensorUnitFiles(files: string[]): string[] {
  return files.filter(
    (f) =>
      f.startsWith(TENSOR_UNIT_DIR + '/') &&
      !/wasm|simd/.test(f) &&
      !PINS_BACKEND.test(readFileSync(join(REPO_ROOT, f), 'utf8')),
  );
}

/** node options of a phase on a second backend: the preload that starts it before any test file. */
const PRELOAD_BACKEND = ['--import', join(REPO_ROOT, 'test', 'support', 'preload-backend.ts')];

interface Counts {
  passed: number;
  failed: number;
}

/** All `*.test.ts` under `dir`, sorted, as paths relative to the repo root. */
export function discover(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile() && entry.name.endsWith('.test.ts')) out.push(relative(REPO_ROOT, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** Counts from the TAP summary the node test runner writes at the end (`# pass N`, `# fail N`, `# cancelled N`). */
export function parseTapCounts(tap: string): Counts | undefined {
  const num = (label: string) => {
    const m = new RegExp(`^# ${label} (\\d+)\\s*$`, 'm').exec(tap);
    return m ? Number(m[1]) : undefined;
  };
  const pass = num('pass');
  const fail = num('fail');
  if (pass === undefined || fail === undefined) return undefined;
  return { passed: pass, failed: fail + (num('cancelled') ?? 0) };
}

let child: ChildProcess | undefined;
let interrupted: NodeJS.Signals | undefined;

/**
 * `npm ci` removes the tfjs-node build that `npm run setup:tensorflow` made; when that build is cached under
 * `.tempered/tensorflow/` (a machine that ran the setup once), put it back (seconds, offline) so the tensorflow
 * phases run. A machine that never ran the setup downloads nothing here: those phases are skipped with the reason.
 */
function relinkTensorflow(): void {
  const cache = join(REPO_ROOT, '.tempered', 'tensorflow');
  if (!existsSync(cache) || !readdirSync(cache).some((d) => d.startsWith('cpu-'))) return;
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'scripts', 'setup-tensorflow.ts')], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0) process.stdout.write(`\n── setup:tensorflow from the cache failed (exit ${r.status})\n`);
}

/** Runs one phase in a child `node --test`, spec to our stdout, TAP to a file we parse. */
function runPhase(
  name: string,
  files: string[],
  env: NodeJS.ProcessEnv,
  tapFile: string,
  watchdogLog: string,
  extraArgs: string[] = [],
): Promise<Counts> {
  const args = [
    '--import',
    'tsx',
    '--test',
    ...extraArgs,
    '--test-concurrency=1',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tapFile}`,
    ...files,
  ];
  process.stdout.write(`\n── ${name}: ${files.length} file${files.length === 1 ? '' : 's'}\n`);
  return new Promise((resolvePromise) => {
    // Its own process group, tied to this process: if the runner is SIGKILLed, the watchdog ends the tests too.
    child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true,
    });
    if (child.pid !== undefined) tieProcessGroup(child.pid, process.pid, watchdogLog, `${name} tests`);
    child.on('error', (err) => {
      process.stderr.write(`${name}: could not start node --test: ${err.message}\n`);
      resolvePromise({ passed: 0, failed: 1 });
    });
    child.on('exit', (code, signal) => {
      child = undefined;
      const tap = existsSync(tapFile) ? readFileSync(tapFile, 'utf8') : '';
      const counts = parseTapCounts(tap);
      if (!counts) {
        process.stderr.write(`${name}: no test summary (exit ${code ?? signal}); counting the phase as 1 failure\n`);
        resolvePromise({ passed: 0, failed: 1 });
      } else if (code !== 0 && counts.failed === 0) {
        process.stderr.write(`${name}: node --test exited ${code ?? signal} with no failed test; counting 1 failure\n`);
        resolvePromise({ ...counts, failed: 1 });
      } else {
        resolvePromise(counts);
      }
    });
  });
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: {
      unit: { type: 'boolean', default: false },
      integration: { type: 'boolean', default: false },
      backends: { type: 'string', default: 'wasm,tensorflow' },
    },
    allowPositionals: true,
    strict: true,
  });
  const both = !values.unit && !values.integration;
  const pick = (files: string[]) =>
    positionals.length === 0 ? files : files.filter((f) => positionals.some((p) => f.includes(p)));
  const unitFiles = values.unit || both ? pick(discover(join(REPO_ROOT, 'test', 'unit'))) : [];
  const integrationFiles = values.integration || both ? pick(discover(join(REPO_ROOT, 'test', 'integration'))) : [];
  const total: Counts = { passed: 0, failed: 0 };
  const add = (c: Counts) => {
    total.passed += c.passed;
    total.failed += c.failed;
  };
  const backends = values.backends.split(',').map((b) => b.trim());
  const baseEnv = { ...process.env, TEMPERED_BACKEND: process.env.TEMPERED_BACKEND || 'wasm' };
  // The second backend, when asked for and built here; otherwise why not (a failure under CI, which sets it up).
  let tensorflow = false;
  if (backends.includes('tensorflow')) {
    relinkTensorflow();
    const probe = probeBackends().find((p) => p.name === 'tensorflow')!;
    tensorflow = probe.available;
    if (!probe.available) {
      process.stdout.write(`\n── tensorflow phases skipped: ${probe.detail}\n`);
      if (process.env.CI === 'true') add({ passed: 0, failed: 1 });
    }
  }
  const tfEnv = { TEMPERED_BACKEND: 'tensorflow' };
  const scratch = mkdtempSync(join(tmpdir(), 'tempered-run-'));
  let home: string | undefined;
  let keepHome = false;
  const stopStack = async () => {
    if (!home) return;
    const stopped = await down({ home, env: {} });
    home = undefined;
    process.stdout.write(
      `\n── stack stopped (${stopped.map((s) => `${s.name} ${s.pid}`).join(', ') || 'nothing running'})\n`,
    );
  };

  try {
    const watchdog = join(scratch, 'watchdog.log');
    if (unitFiles.length > 0)
      add(
        await runPhase(`unit (${baseEnv.TEMPERED_BACKEND})`, unitFiles, baseEnv, join(scratch, 'unit.tap'), watchdog),
      );
    const tfUnit = tensorflow ? tensorUnitFiles(unitFiles) : [];
    if (tfUnit.length > 0 && !interrupted) {
      const tfTap = join(scratch, 'unit-tf.tap');
      add(await runPhase('unit (tensorflow)', tfUnit, { ...baseEnv, ...tfEnv }, tfTap, watchdog, PRELOAD_BACKEND));
    }
    // Each integration phase gets a fresh stack: the pipeline tests stop and restart its servers, tied to the
    // phase's own process.
    const integrationPhase = async (label: string, files: string[], extraEnv: NodeJS.ProcessEnv, args: string[]) => {
      home = join(scratch, `stack-${label}`);
      process.stdout.write(`\n── starting the stack in ${home} (logs: ${join(home, 'logs')})\n`);
      const started = Date.now();
      let info;
      try {
        info = await up({
          home,
          ports: await pickFreePorts(),
          tieToPid: process.pid,
          log: (line) => process.stdout.write(`   ${line}\n`),
        });
      } catch (err) {
        keepHome = true;
        process.stderr.write(`the stack did not start: ${(err as Error).message}\n`);
        add({ passed: 0, failed: 1 });
      }
      if (info && !interrupted) {
        process.stdout.write(`   ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
        const env = {
          ...baseEnv,
          ...stackEnv(info),
          TEMPERED_TEMPORAL_CLI: findTemporal({ log: (l) => process.stdout.write(`   ${l}\n`) }),
          TEMPERED_STACK_HOME: home,
          ...extraEnv,
        };
        const tap = join(scratch, `integration-${label}.tap`);
        const counts = await runPhase(`integration (${label})`, files, env, tap, watchdog, args);
        if (counts.failed > 0) keepHome = true;
        add(counts);
      }
      await stopStack();
    };
    if (integrationFiles.length > 0 && !interrupted) {
      await integrationPhase(baseEnv.TEMPERED_BACKEND, integrationFiles, {}, []);
    }
    const tfIntegration = integrationFiles.filter((f) => f.endsWith(TENSORFLOW_INTEGRATION.file));
    if (tensorflow && tfIntegration.length > 0 && !interrupted) {
      await integrationPhase('tensorflow', tfIntegration, tfEnv, [
        `--test-name-pattern=${TENSORFLOW_INTEGRATION.namePattern}`,
      ]);
    }
  } finally {
    await stopStack();
    if (keepHome || interrupted) process.stdout.write(`   logs kept in ${scratch}/stack-*/logs\n`);
    else rmSync(scratch, { recursive: true, force: true });
  }
  if (interrupted) add({ passed: 0, failed: total.failed === 0 ? 1 : 0 });
  process.stdout.write(`\n${total.passed} passed, ${total.failed} failed\n`);
  return total.failed > 0 ? 1 : 0;
}

// Importing this file (a unit test of parseTapCounts) must not run the tests.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (interrupted) return;
      interrupted = signal;
      process.stderr.write(`\n${signal}: stopping the tests and the stack\n`);
      // The child's exit lets main() reach its finally (down). Without a child, main() notices `interrupted`;
      // and if this process dies anyway, the watchdog stops the servers.
      if (child?.pid !== undefined) {
        try {
          process.kill(-child.pid, signal);
        } catch {
          child.kill(signal);
        }
      }
    });
  }

  const code = await main();
  process.exitCode = interrupted ? (interrupted === 'SIGINT' ? 130 : 143) : code;
}
