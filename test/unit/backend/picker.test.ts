import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * The picker keeps process-wide state (one backend per process), so each case runs in a fresh process that
 * prints the report and what a second call returned.
 */
const root = fileURLToPath(new URL('../../../', import.meta.url));
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
  it('auto: records the failed native backends and runs wasm with SIMD, once, with one log line', () => {
    const out = pick({});
    assert.equal(out.first.name, 'wasm');
    assert.equal(out.first.simd, true);
    assert.equal(out.first.threads, 1);
    const names = out.first.tried.map((t: { name: string }) => t.name);
    assert.deepEqual(names, ['tensorflow-gpu', 'tensorflow', 'wasm']);
    // tfjs-node is not installed here; if it ever is, this test should be revisited rather than pass silently.
    assert.match(out.first.tried[0].error, /tfjs-node-gpu/);
    assert.equal(out.first.tried[2].error, undefined);
    assert.equal(out.same, true, 'a second call returns the first report');
    assert.equal(out.lines.length, 1);
    assert.match(out.lines[0], /backend wasm/);
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
    assert.match(pick({ PICK_ARG: 'tensorflow' }).error, /tensorflow: .*tfjs-node/);
    assert.match(pick({ TEMPERED_BACKEND: 'gpu' }).error, /TEMPERED_BACKEND="gpu" is not a backend/);
  });
});
