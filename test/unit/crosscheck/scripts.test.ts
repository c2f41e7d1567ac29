/**
 * The cross-check's Python scripts as a user meets them: both compile, `--help` shows the usage and exits 0
 * without torch being needed, and a bad argument exits 2 naming it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '../../../crosscheck');
const SCRIPTS = ['torch_attack.py', 'torch_autoattack.py'];
const python = '/usr/bin/python3';
const run = (args: string[]) => spawnSync(python, args, { encoding: 'utf8', timeout: 60_000 });

describe('crosscheck scripts', () => {
  it('compile', () => {
    const r = run([
      '-c',
      'import sys, py_compile; [py_compile.compile(f, doraise=True) for f in sys.argv[1:]]',
      ...SCRIPTS.map((s) => join(DIR, s)),
    ]);
    assert.equal(r.status, 0, r.stderr);
  });

  for (const script of SCRIPTS) {
    it(`${script} --help shows its flags; an unknown flag exits 2 naming it`, () => {
      const help = run([join(DIR, script), '--help']);
      assert.equal(help.status, 0, help.stderr);
      assert.match(help.stdout, /--model/);
      assert.match(help.stdout, /--images/);
      const bad = run([join(DIR, script), '--model', DIR, '--no-such-flag']);
      assert.equal(bad.status, 2, bad.stderr);
      assert.match(bad.stderr, /--no-such-flag/);
    });
  }
});
