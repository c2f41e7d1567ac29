// One configuration surface: infra/env.ts names every variable the code reads (and nothing else), the README's
// table is generated from it, a bad value is refused naming the variable, secrets never print.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT } from '../../../infra/config';
import { ENV_VARS, EnvError, effectiveEnv, parseEnv } from '../../../infra/env';
import { README, withEnvTable } from '../../../scripts/generate-env-table';
import { importGraph } from '../../support/imports';

/** Variable names the code reads: `env.X`, `env['X']`, `envVar: 'X'` and quoted TEMPERED_/TEMPORAL_/S3_/MINIO_ names. */
function variablesReadInSource(): Map<string, string> {
  const found = new Map<string, string>();
  const patterns = [
    /\benv\.([A-Z][A-Z0-9_]*[A-Z0-9])\b/g,
    /\benv\[['"]([A-Z][A-Z0-9_]*)['"]\]/g,
    /\benvVar: '([A-Z][A-Z0-9_]*)'/g,
    /['"]((?:TEMPERED|TEMPORAL|S3|MINIO)_[A-Z0-9_]*[A-Z0-9])['"]/g,
  ];
  const skip = new Set(['node_modules', '.git', '.venv', 'docs', 'fixtures']);
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!skip.has(entry.name) && !entry.name.startsWith('.')) walk(path);
      } else if (
        /\.(ts|mjs|js)$/.test(entry.name) &&
        !['infra/env.ts', 'test/unit/infra/env.test.ts'].includes(relative(REPO_ROOT, path))
      ) {
        const text = readFileSync(path, 'utf8');
        for (const p of patterns) for (const m of text.matchAll(p)) found.set(m[1], relative(REPO_ROOT, path));
      }
    }
  };
  walk(REPO_ROOT);
  // The project's own names (and the binaries' overrides); a test's private knob (PICK_ARG) or the OS's are not.
  for (const name of found.keys())
    if (!/^(TEMPERED|TEMPORAL|S3|MINIO)_/.test(name) && !(name in ENV_VARS)) found.delete(name);
  return found;
}

describe('environment variables', () => {
  test('every variable the code reads is in infra/env.ts', () => {
    const read = variablesReadInSource();
    const missing = [...read].filter(([name]) => !(name in ENV_VARS)).map(([name, file]) => `${name} (${file})`);
    assert.deepEqual(missing, [], 'add these to ENV_VARS in infra/env.ts, then npm run env:generate');
  });

  test('every variable in infra/env.ts is read somewhere', () => {
    const read = variablesReadInSource();
    // The port variables are built by portEnvName; the rest must appear by name.
    const dead = Object.keys(ENV_VARS).filter((n) => !read.has(n) && !/^TEMPERED_.*_PORT$/.test(n));
    assert.deepEqual(dead, []);
  });

  test("the README's table is generated from infra/env.ts (npm run env:generate)", () => {
    const readme = readFileSync(README, 'utf8');
    assert.equal(withEnvTable(readme), readme, 'README.md table of variables is stale: run npm run env:generate');
  });

  test('a bad value is refused with one line naming the variable; empty counts as unset', () => {
    assert.throws(
      () => parseEnv({ TEMPERED_METRICS_PORT: 'abc', S3_ENDPOINT: 'minio:9000', TEMPERED_BACKEND: 'gpu' }),
      (err: unknown) => {
        assert.ok(err instanceof EnvError);
        assert.deepEqual(err.problems.map((p) => p.split(':')[0]).sort(), [
          'S3_ENDPOINT',
          'TEMPERED_BACKEND',
          'TEMPERED_METRICS_PORT',
        ]);
        assert.match(err.message, /TEMPERED_METRICS_PORT: expected a port number .*, got "abc"/);
        return true;
      },
    );
    assert.deepEqual(parseEnv({ TEMPERED_HOME: '', TEMPERED_SDK_METRICS: '', UNRELATED: 'x' }), {
      TEMPERED_SDK_METRICS: '',
    });
    assert.doesNotThrow(() => parseEnv({ TEMPORAL_ADDRESS: '127.0.0.1:7233', TEMPERED_METRICS_PORT: '0' }));
  });

  test('effective values: env over default, secrets masked', () => {
    const vars = effectiveEnv({ S3_SECRET_KEY: 'supersecretvalue', TEMPERED_IO_QUEUE: 'q1' });
    const get = (name: string) => vars.find((v) => v.name === name)!;
    assert.equal(get('S3_SECRET_KEY').source, 'env');
    assert.ok(!JSON.stringify(vars).includes('supersecretvalue'));
    assert.match(get('S3_SECRET_KEY').value ?? '', /^supe\*+$/);
    assert.deepEqual([get('TEMPERED_IO_QUEUE').value, get('TEMPERED_IO_QUEUE').source], ['q1', 'env']);
    assert.deepEqual(
      [get('TEMPERED_HEAVY_QUEUE').value, get('TEMPERED_HEAVY_QUEUE').source],
      ['tempered-heavy', 'default'],
    );
    assert.equal(get('TEMPORAL_ADDRESS').source, 'unset');
  });

  test('the client SDK does not import the local-stack launcher', () => {
    for (const entry of ['client/index.ts', 'client/schedules.ts']) {
      const { files } = importGraph(entry);
      assert.ok(!files.has('infra/stack.ts'), `${entry} reaches infra/stack.ts`);
    }
  });
});
