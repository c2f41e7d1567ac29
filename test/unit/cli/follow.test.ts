// The progress printer: one redrawn line on a terminal; elsewhere a line per stage change and at most one every
// 30 s in between, so a log of a 10-minute run stays short.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { progressPrinter } from '../../../cli/follow';

describe('progressPrinter', () => {
  test('without a TTY: every stage change, otherwise at most one line per 30 s', () => {
    let out = '';
    let t = 0;
    const p = progressPrinter({ write: (s) => (out += s), tty: false, now: () => t });
    p.draw('fetching', 'fetching-dataset');
    t = 1000;
    p.draw('baseline 1/10', 'baseline-eval');
    for (let i = 2; i <= 70; i++) {
      t += 1000; // one poll a second
      p.draw(`training batch ${i}`, 'training');
    }
    t += 1000;
    p.draw('benchmark', 'benchmark');
    p.end();
    const lines = out.trim().split('\n');
    // 4 stage changes plus the 30-second lines within training's 69 s.
    assert.deepEqual(lines, [
      'fetching',
      'baseline 1/10',
      'training batch 2',
      'training batch 32',
      'training batch 62',
      'benchmark',
    ]);
  });

  test('an unchanged line is not repeated even after 30 s', () => {
    let out = '';
    let t = 0;
    const p = progressPrinter({ write: (s) => (out += s), tty: false, now: () => t });
    p.draw('awaiting approval', 'awaiting-approval');
    t = 60_000;
    p.draw('awaiting approval', 'awaiting-approval');
    assert.equal(out, 'awaiting approval\n');
  });

  test('on a TTY: one line redrawn in place, cut to the width, ended with a newline', () => {
    let out = '';
    const p = progressPrinter({ write: (s) => (out += s), tty: true, columns: 10 });
    p.draw('training batch 1 of 100', 'training');
    p.draw('training batch 2 of 100', 'training');
    p.end();
    assert.equal(out, '\r\x1b[2Ktraining \r\x1b[2Ktraining \n');
  });
});
