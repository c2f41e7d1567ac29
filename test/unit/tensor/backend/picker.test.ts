import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { bestBackend, probeBackends } from '../../../../tensor/backend/probe';

/**
 * The picker keeps process-wide state (one backend per process), so each case runs in a fresh process that
 * prints the report and what a second call returned.
 */
const root = fileURLToPath(new URL('../../../../', import.meta.url));
const script = `
  const { initBackend, backendReport } = await import('./tensor/backend/index.ts');
  const lines = [];
  const arg = process.env.PICK_ARG || undefined;
  try {
    const first = await initBackend(arg, { log: (l) => lines.push(l) });
    const second = await initBackend('cpu', { log: (l) => lines.push(l) });
    console.log(JSON.stringify({ first, same: first === second && backendReport() === first, lines }));
  } catch (err) {
    console.log(JSON.stringify({ error: err.message }));
  }
`;

function pick(env: Record<string, string | undefined>) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, TEMPERED_BACKEND: undefined, PICK_ARG: undefined, ...env },
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe('initBackend', () => {
  // What this machine has decides the automatic choice: tensorflow after `npm run setup:tensorflow`, wasm without.
  const probes = probeBackends();
  const best = bestBackend(probes);

  it('auto: records the backends that cannot start, runs the first that can, once, with one log line', () => {
    const out = pick({});
    assert.equal(out.first.name, best);
    const order = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
    const names = out.first.tried.map((t: { name: string }) => t.name);
    assert.deepEqual(names, order.slice(0, order.indexOf(best) + 1));
    for (const [i, t] of out.first.tried.slice(0, -1).entries()) {
      // Each skipped one carries the probe's reason (what is missing and the command that sets it up).
      assert.equal(t.error, probes[i].detail);
    }
    assert.equal(out.first.tried.at(-1).error, undefined);
    if (best === 'wasm') {
      assert.equal(out.first.simd, true);
      assert.equal(out.first.threads, 1);
    }
    if (best === 'tensorflow') assert.equal(out.first.threads, os.availableParallelism());
    assert.equal(out.same, true, 'a second call returns the first report');
    assert.equal(out.lines.length, 1);
    assert.match(out.lines[0], new RegExp(`backend ${best} `));
  });

  it('TEMPERED_BACKEND selects cpu; an argument wins over it', () => {
    const env = pick({ TEMPERED_BACKEND: 'cpu' });
    assert.equal(env.first.name, 'cpu');
    assert.deepEqual(env.first.tried, [{ name: 'cpu' }]);
    assert.match(env.first.reason, /TEMPERED_BACKEND=cpu/);
    const arg = pick({ TEMPERED_BACKEND: 'cpu', PICK_ARG: 'wasm' });
    assert.equal(arg.first.name, 'wasm');
  });

  it('a named backend that cannot start is an error naming it; an unknown name is refused', () => {
    const missing = probes.find((p) => !p.available);
    if (missing) {
      assert.equal(pick({ PICK_ARG: missing.name }).error.includes(`${missing.name}: ${missing.detail}`), true);
    }
    assert.match(pick({ TEMPERED_BACKEND: 'gpu' }).error, /TEMPERED_BACKEND="gpu" is not a backend/);
  });
});
