import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  bar,
  exitCodeFor,
  formatDuration,
  formatProgressLine,
  formatResultTable,
  formatRuns,
  formatSchedules,
} from '../../../cli/format';
import type { RunProgress, RunSummary } from '../../../schemas/payloads';

const progress = (overrides: Partial<RunProgress> = {}): RunProgress => ({
  stage: 'training',
  status: 'running',
  checkpoints: 2,
  awaitingApproval: false,
  cancelRequested: false,
  timings: {},
  training: {
    epoch: 1,
    epochs: 4,
    batch: 50,
    batchesPerEpoch: 100,
    epsilon: 0.05,
    loss: 0.73456,
    imagesPerSecond: 256,
    checkpoints: 2,
  },
  ...overrides,
});

const summary = (overrides: Partial<RunSummary> = {}): RunSummary => ({
  status: 'completed',
  workflowId: 'harden-fmnist-20250101-020000',
  modelName: 'fmnist',
  stage: 'done',
  baseline: { clean: 0.91, robust: 0.04, robustByAttack: [{ attack: 'pgd20', eps: 0.1, accuracy: 0.04 }] },
  hardened: { clean: 0.86, robust: 0.62, robustByAttack: [{ attack: 'pgd20', eps: 0.1, accuracy: 0.62 }] },
  gate: {
    passed: true,
    decidedBy: 'gate',
    reasons: ['robust accuracy 62.0% meets the required 50.0%', 'clean accuracy drop of 5.0% is within 10.0%'],
  },
  artifact: { uri: 's3://tempered/models/fmnist/versions/v7/', version: 'v7', promoted: true },
  reportUri: 's3://tempered/reports/x/report.html',
  checkpoints: 3,
  timings: { training: 100, benchmark: 20 },
  backend: 'wasm',
  warnings: [],
  ...overrides,
});

describe('progress line', () => {
  test('shows stage, bar, epoch (from 1), batch, ε, loss, images/s and an ETA from the remaining batches', () => {
    const line = formatProgressLine(progress(), { batchSize: 128, width: 10 });
    // done = 1 × 100 + 50 = 150 of 400 batches: 37.5 %; remaining 250 batches × 128 / 256 img/s = 125 s.
    assert.match(line, /^training \[####\.{6}\] {2}38%/);
    assert.match(line, /epoch 2\/4/);
    assert.match(line, /batch 50\/100/);
    assert.match(line, /ε 0\.050/);
    assert.match(line, /loss 0\.7346/);
    assert.match(line, /256 img\/s/);
    assert.match(line, /ETA 2m05s/);
  });

  test('no ETA without a batch size or throughput; other stages print the stage and flags', () => {
    assert.match(formatProgressLine(progress()), /ETA \?/);
    const waiting = formatProgressLine(progress({ stage: 'awaiting-approval', awaitingApproval: true }));
    assert.match(waiting, /^awaiting-approval {2}awaiting approval/);
    assert.doesNotMatch(waiting, /epoch/);
    assert.match(formatProgressLine(progress({ stage: 'benchmark', cancelRequested: true })), /cancel requested/);
  });

  test('the baseline being trained: its own bar and ETA from its batch size, no ε', () => {
    const { training, ...rest } = progress();
    const line = formatProgressLine(
      { ...rest, stage: 'preparing-model', baselineTraining: { ...training!, batchSize: 64 } },
      { batchSize: 128, width: 10 },
    );
    // 150 of 400 batches; 250 left × 64 images (its own batch size, not the option's) / 256 img/s = 62.5 s.
    assert.match(line, /^baseline training \[####\.{6}\] {2}38%/);
    assert.match(line, /ETA 1m03s/);
    assert.doesNotMatch(line, /ε/);
    // The same payload at another stage is not shown as training.
    assert.doesNotMatch(formatProgressLine({ ...rest, stage: 'baseline-eval', baselineTraining: training }), /epoch/);
  });

  test('an evaluation: images of total, shards, the running attacks, ETA from the elapsed time', () => {
    const { training: _t, ...rest } = progress();
    const evaluation = {
      role: 'hardened' as const,
      images: 1000,
      shards: 4,
      shardsDone: 1,
      imagesDone: 250,
      imagesEstimate: 400,
      attacks: ['apgd-ce', 'apgd-t'],
      elapsed: 60,
    };
    const line = formatProgressLine({ ...rest, stage: 'benchmark', evaluation }, { width: 10 });
    // 40 % in 60 s: 90 s to go.
    assert.match(line, /^hardened evaluation \[####\.{6}\] {2}40%/);
    assert.match(line, /images 400\/1000 {2}shards 1\/4 {2}apgd-ce, apgd-t {2}ETA 1m30s/);
    const none = formatProgressLine({ ...rest, stage: 'benchmark', evaluation: { ...evaluation, imagesEstimate: 0 } });
    assert.match(none, /ETA \?/);
  });

  test('bar and duration edge cases', () => {
    assert.equal(bar(0, 4), '[....]');
    assert.equal(bar(1.7, 4), '[####]');
    assert.equal(bar(Number.NaN, 4), '[....]');
    assert.equal(formatDuration(12), '12s');
    assert.equal(formatDuration(3725), '1h02m');
    assert.equal(formatDuration(-1), '?');
  });
});

describe('result table', () => {
  test('baseline vs hardened accuracies, the gate with reasons, artifact, report and the UI link', () => {
    const text = formatResultTable(summary(), {
      workflowId: 'harden-x',
      link: 'http://127.0.0.1:18233/namespaces/default/workflows/harden-x',
    });
    assert.match(text, /^run harden-x: COMPLETED/);
    assert.match(text, /clean accuracy\s+91\.0%\s+86\.0%\s+-5\.0 pts/);
    assert.match(text, /robust accuracy\s+4\.0%\s+62\.0%\s+\+58\.0 pts/);
    assert.match(text, /gate\s+PASSED \(decided by gate\)/);
    assert.match(text, /- robust accuracy 62\.0% meets the required 50\.0%/);
    assert.match(text, /artifact\s+v7\s+s3:\/\/tempered\/models\/fmnist\/versions\/v7\/\s+\(promoted to production\)/);
    assert.match(text, /report\s+s3:\/\/tempered\/reports\/x\/report\.html/);
    assert.match(text, /temporal\s+http:\/\/127\.0\.0\.1:18233\/namespaces\/default\/workflows\/harden-x$/);
  });

  test('rejected by a person, cancelled with checkpoint, several attacks', () => {
    const rejected = formatResultTable(
      summary({
        status: 'rejected',
        gate: { passed: false, decidedBy: 'person', by: 'bob', reasons: ['rejected by bob: too slow'] },
        artifact: { uri: 's3://t/v8/', version: 'v8', promoted: false },
        hardened: {
          clean: 0.8,
          robust: 0.5,
          robustByAttack: [
            { attack: 'pgd20', eps: 0.1, accuracy: 0.55 },
            { attack: 'pgd50', eps: 0.1, accuracy: 0.5 },
          ],
        },
      }),
    );
    assert.match(rejected, /REJECTED/);
    assert.match(rejected, /gate\s+FAILED \(decided by bob\)/);
    assert.match(rejected, /stored, not promoted/);
    assert.match(rejected, /pgd50 ε=0\.1\s+-\s+50\.0%/);
    const cancelled = formatResultTable(
      summary({
        status: 'cancelled',
        stage: 'training',
        gate: undefined,
        artifact: undefined,
        checkpointKey: 'runs/x/ck/3',
        cancel: { reason: 'maintenance' },
      }),
    );
    assert.match(cancelled, /gate\s+not reached/);
    assert.match(cancelled, /cancelled: maintenance/);
    assert.match(cancelled, /checkpoint runs\/x\/ck\/3/);
  });

  test('exit codes: completed 0, failed 1, rejected 3, cancelled 4', () => {
    assert.deepEqual((['completed', 'failed', 'rejected', 'cancelled'] as const).map(exitCodeFor), [0, 1, 3, 4]);
  });
});

describe('listings', () => {
  test('runs and schedules as aligned tables, or a sentence when empty', () => {
    assert.equal(formatRuns([]), 'no hardening runs');
    const runs = formatRuns([
      {
        workflowId: 'harden-a-1',
        temporalRunId: 'r',
        status: 'RUNNING',
        taskQueue: 'q',
        startTime: new Date('2025-01-01T02:00:00.123Z'),
        modelName: 'a',
      },
    ]).split('\n');
    assert.match(runs[0], /^WORKFLOW ID\s+STATUS\s+MODEL\s+STARTED\s+CLOSED$/);
    assert.match(runs[1], /^harden-a-1\s+RUNNING\s+a\s+2025-01-01T02:00:00Z\s+-$/);
    assert.equal(formatSchedules([]), 'no schedules');
    const sched = formatSchedules([
      {
        scheduleId: 'harden-a-nightly',
        cron: ['0 2 * * *'],
        paused: false,
        nextActionTimes: [new Date('2025-01-02T02:00:00Z')],
        recentRuns: [],
      },
    ]);
    assert.match(sched, /harden-a-nightly\s+0 2 \* \* \*\s+active\s+2025-01-02T02:00:00Z\s+-/);
  });
});
