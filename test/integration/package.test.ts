// The package as another project gets it: `npm pack`, then `npm install <tarball>` in a temporary project, then
// the command through that project's `node_modules/.bin/tempered`. Catches a bin that runs nothing under npm's
// link and a runtime dependency listed as dev-only (test/unit/cli/package-files.test.ts checks that `files` holds
// every folder the CLI imports). Needs the npm registry or npm's cache; about a minute, most of it npm install.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT } from '../../infra/config';
import { runProcess } from '../support/cli';

describe('the packed tarball installed into another project', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tempered-package-'));
  const project = join(dir, 'consumer');
  const bin = join(project, 'node_modules', '.bin', 'tempered');
  const run = (...args: string[]) => runProcess(bin, args, { cwd: project, timeoutMs: 60_000 });

  before(() => {
    execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: REPO_ROOT, stdio: 'pipe' });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    assert.ok(tarball, `npm pack wrote no tarball into ${dir}`);
    execFileSync('mkdir', ['-p', project]);
    writeFileSync(join(project, 'package.json'), '{ "name": "consumer", "version": "1.0.0", "private": true }\n');
    // Install scripts off: the package must not need any (tsx, the Temporal bridge and sharp ship prebuilt).
    const install = ['install', join(dir, tarball), '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'];
    try {
      execFileSync('npm', install, { cwd: project, stdio: 'pipe', timeout: 240_000 });
    } catch (err) {
      const e = err as { stderr?: Buffer; message: string };
      throw new Error(`npm ${install.join(' ')} failed: ${e.stderr?.toString() || e.message}`);
    }
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test('--help prints the usage and the commands, exit 0', async () => {
    const { code, out, err } = await run('--help');
    assert.equal(code, 0, err);
    assert.match(out, /^Usage: tempered <command>/);
    assert.match(out, /^ {2}validate +\S/m);
  });

  test('validate: the packaged example exits 0, a bad spec exits 2 naming the field', async () => {
    const ok = await run('validate', 'node_modules/tempered/examples/minimal.json');
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /minimal\.json: valid/);
    writeFileSync(join(project, 'bad.json'), '{ "version": 1, "training": { "epochs": 0 } }\n');
    const bad = await run('validate', 'bad.json');
    assert.equal(bad.code, 2, bad.out + bad.err);
    assert.match(bad.out, /training\.epochs: got 0/);
  });

  test('worker --help loads the worker command from the package', async () => {
    const { code, out, err } = await run('worker', '--help');
    assert.equal(code, 0, err);
    assert.match(out, /^Usage: tempered worker/);
  });
});
