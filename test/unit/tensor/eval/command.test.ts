import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseEvaluateArgs, runEvaluateCommand, UsageError } from '../../../../tensor/eval/command';
import { saveModel } from '../../../../tensor/models';
import { setupBackend, trainedFixture } from '../attacks/fixture';

let dir: string;

before(async () => {
  await setupBackend();
  const { model } = await trainedFixture();
  dir = mkdtempSync(join(tmpdir(), 'tempered-evaluate-'));
  await saveModel(model, dir);
  model.dispose();
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('npm run evaluate', () => {
  it('parses flags with defaults and rejects bad ones naming the flag', () => {
    const c = parseEvaluateArgs(['--model', 'm', '--suite', 'fast', '--eps', '0.1', '--images', '50', '--json']);
    assert.equal(c.suite, 'fast');
    assert.equal(c.images, 50);
    assert.equal(c.norm, 'linf');
    assert.equal(c.json, true);
    assert.throws(
      () => parseEvaluateArgs(['--suite', 'fast']),
      (e: Error) => e instanceof UsageError && /--model/.test(e.message),
    );
    assert.throws(() => parseEvaluateArgs(['--model', 'm', '--suite', 'slow']), /--suite must be/);
    assert.throws(() => parseEvaluateArgs(['--model', 'm', '--eps', 'x']), /--eps/);
    assert.throws(() => parseEvaluateArgs(['--model', 'm', '--images', '0']), /--images/);
    assert.throws(() => parseEvaluateArgs(['--model', 'm', '--bogus']), UsageError);
  });

  it('evaluates a saved model under the fast suite with the sanity panel', async () => {
    const before = tf.memory().numTensors;
    const c = parseEvaluateArgs(['--model', dir, '--suite', 'fast', '--eps', '0.03', '--images', '40', '--json']);
    const lines: string[] = [];
    const { summary, result } = await runEvaluateCommand(c, (l) => lines.push(l));
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    assert.deepEqual(Object.keys(summary.attacks), ['apgd-ce', 'apgd-t']);
    assert.equal(summary.images, 40);
    assert.equal(summary.suite, 'fast');
    assert.ok(summary.worstCase <= summary.attacks['apgd-ce'] && summary.attacks['apgd-ce'] <= summary.clean);
    assert.equal(summary.worstCase, result.worstCase.accuracy);
    assert.ok(Array.isArray(summary.flags));
    assert.ok(lines.some((l) => l.includes('apgd-ce')));
  });

  it('exits with status 2 and a clear message for a missing model folder', () => {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'scripts/evaluate.ts', '--model', join(dir, 'nope'), '--suite', 'fast', '--images', '5'],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--model .*nope: no such directory/);
  });
});
