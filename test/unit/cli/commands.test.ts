// The commands' argument handling without servers: --help everywhere, validate's output and exit codes, usage
// errors before any connection is tried.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { commands, main } from '../../../cli/main';
import { parseQueues } from '../../../cli/worker';

/** Runs `tempered ...argv`, capturing stdout and stderr. */
async function tempered(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const write = { out: process.stdout.write, err: process.stderr.write };
  // Commands write strings; the test runner's own events (binary, on stdout) must pass through.
  const capture =
    (stream: 'out' | 'err') =>
    (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
      if (typeof chunk !== 'string')
        return (write[stream] as (...a: unknown[]) => boolean).call(process[`std${stream}`], chunk, ...rest);
      if (stream === 'out') out += chunk;
      else err += chunk;
      return true;
    };
  process.stdout.write = capture('out') as typeof process.stdout.write;
  process.stderr.write = capture('err') as typeof process.stderr.write;
  // No server may be reached: point Temporal at a closed port and forbid the local stack.
  const env = { ...process.env };
  process.env.TEMPORAL_ADDRESS = '127.0.0.1:1';
  process.env.TEMPERED_HOME = join(tmpdir(), 'tempered-no-stack');
  try {
    const code = await main(argv);
    return { code, out, err };
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
    process.env = env;
  }
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempered-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('tempered --help', () => {
  test('lists every command', async () => {
    const { code, out } = await tempered('--help');
    assert.equal(code, 0);
    for (const name of [
      'run',
      'runs',
      'show',
      'cancel',
      'approve',
      'reject',
      'validate',
      'schedule',
      'serve',
      'worker',
    ]) {
      assert.match(out, new RegExp(`^  ${name} +\\S`, 'm'), `${name} missing from --help`);
    }
  });

  test('every command answers --help with its usage and exit 0', async () => {
    for (const name of Object.keys(commands)) {
      const { code, out } = await tempered(name, '--help');
      assert.equal(code, 0, `${name} --help`);
      assert.match(out, new RegExp(`^Usage: tempered ${name}`), `${name} --help prints its usage`);
    }
  });
});

describe('tempered validate', () => {
  test('a valid spec: exit 0 and a summary line; --json carries the parsed spec', async () => {
    const file = join(dir, 'ok.yaml');
    await writeFile(file, 'version: 1\nartifacts:\n  modelName: fmnist\n');
    const text = await tempered('validate', file);
    assert.equal(text.code, 0);
    assert.match(text.out, /ok\.yaml: valid \(model fmnist, 5 epochs at ε 0\.1/);
    const json = await tempered('validate', file, '--json');
    const parsed = JSON.parse(json.out) as { valid: boolean; spec: { training: { epochs: number } } };
    assert.equal(parsed.valid, true);
    assert.equal(parsed.spec.training.epochs, 5);
  });

  test('an invalid spec: every problem on its own line, exit 2', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'version: 1\ntraining:\n  epochs: -1\n  epsilion: 2\ngate:\n  minRobustAccuracy: 3\n');
    const { code, out, err } = await tempered('validate', file);
    assert.equal(code, 2);
    assert.match(err, /invalid spec \(3 problems\)/);
    const lines = out.trim().split('\n');
    assert.equal(lines.length, 3);
    assert.ok(
      lines.some((l) => /^training\.epochs: got -1, expected an integer >= 1$/.test(l)),
      out,
    );
    assert.ok(
      lines.some((l) => l.startsWith('training.epsilion: unknown key')),
      out,
    );
    assert.ok(
      lines.some((l) => l.startsWith('gate.minRobustAccuracy: got 3')),
      out,
    );
    const json = JSON.parse((await tempered('validate', file, '--json')).out) as { valid: boolean; errors: string[] };
    assert.equal(json.valid, false);
    assert.equal(json.errors.length, 3);
  });

  test('a missing or unparsable file is reported as invalid, naming the file', async () => {
    const missing = await tempered('validate', join(dir, 'nope.yaml'));
    assert.equal(missing.code, 2);
    assert.match(missing.out, /nope\.yaml: no such file/);
    const file = join(dir, 'broken.json');
    await writeFile(file, '{ "version": 1,');
    const broken = await tempered('validate', file);
    assert.equal(broken.code, 2);
    assert.match(broken.out, /broken\.json: not valid JSON/);
  });
});

describe('usage errors come before any connection', () => {
  test('missing arguments and bad flags exit 2 with one line naming what is wrong', async () => {
    const cases: [string[], RegExp][] = [
      [['run'], /missing <spec>/],
      [['show'], /missing <workflow-id>/],
      [['approve', 'harden-x'], /--by: expected the name/],
      [['reject', 'harden-x', '--by', ' '], /--by: expected the name/],
      [['runs', '--limit', '0'], /--limit: expected a positive integer, got "0"/],
      [['schedule', 'create', 'spec.yaml'], /--cron: expected a cron expression/],
      [['schedule', 'frobnicate'], /unknown schedule command "frobnicate"/],
      [['serve', '--port', 'x'], /--port: expected a positive integer/],
      [['serve', '--model', 'dir', '--pointer', 's3://a/b'], /give one, not both/],
      [['worker', '--queues', 'io,gpu'], /--queues: expected io, heavy or io,heavy/],
      [['worker', '--threads', '0'], /--threads: expected a positive integer, got "0"/],
      [['run', 'a.yaml', '--bogus'], /bogus/],
    ];
    for (const [argv, message] of cases) {
      const { code, err } = await tempered(...argv);
      assert.equal(code, 2, `${argv.join(' ')} → ${err}`);
      assert.match(err, message, argv.join(' '));
      assert.equal(err.trim().split('\n').length, 1, `one line for ${argv.join(' ')}: ${err}`);
    }
  });

  test('run with an invalid spec lists the problems and exits 2 without connecting', async () => {
    const file = join(dir, 'bad-run.yaml');
    await writeFile(file, 'version: 1\ntraining:\n  epochs: 0\n');
    const { code, err } = await tempered('run', file);
    assert.equal(code, 2);
    assert.match(err, /training\.epochs: got 0, expected an integer >= 1/);
  });

  test('a command that needs Temporal says which address it could not reach', async () => {
    const { code, err } = await tempered('runs');
    assert.equal(code, 1);
    assert.match(err, /cannot reach Temporal at 127\.0\.0\.1:1/);
  });

  test('worker queues', () => {
    assert.equal(parseQueues(undefined), undefined);
    assert.deepEqual(parseQueues('heavy'), ['heavy']);
    assert.deepEqual(parseQueues('io, heavy,io'), ['io', 'heavy']);
  });
});
