import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const simdDir = fileURLToPath(new URL('../../../../tensor/backend/wasm-kernels/simd/', import.meta.url));

/** clang that can target wasm32 with lld, or why not (Debian: apt-get install clang lld wabt). */
function toolchain(): string | undefined {
  const clang = spawnSync('clang', ['--print-targets'], { encoding: 'utf8' });
  if (clang.error || clang.status !== 0) return 'clang is not installed';
  if (!/wasm32/.test(clang.stdout)) return 'clang has no wasm32 target';
  const lld = spawnSync('wasm-ld', ['--version'], { encoding: 'utf8' });
  if (lld.error || lld.status !== 0) return 'wasm-ld (lld) is not installed';
  return undefined;
}

describe('SIMD kernels binary', () => {
  const missing = toolchain();
  it(
    'kernels.wasm is what build.sh makes of kernels.c (and owns no memory on the heap it shares)',
    { skip: missing },
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'tempered-simd-'));
      try {
        const out = join(dir, 'kernels.wasm');
        const r = spawnSync('bash', [join(simdDir, 'build.sh'), out], { encoding: 'utf8' });
        assert.equal(r.status, 0, `build.sh failed: ${r.stderr}`);
        assert.ok(
          Buffer.compare(readFileSync(out), readFileSync(join(simdDir, 'kernels.wasm'))) === 0,
          'tensor/backend/wasm-kernels/simd/kernels.wasm is stale: run bash tensor/backend/wasm-kernels/simd/build.sh and commit it',
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
