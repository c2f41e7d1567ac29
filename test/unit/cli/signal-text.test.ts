// --by / --reason: 100 KB of text or a terminal escape is refused before any connection, naming the flag; the
// signal payload schemas hold the same limits for the SDK and the workflow.
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { main } from '../../../cli/main';
import { ApprovalDecision, CancelRequest } from '../../../schemas/payloads';

async function tempered(...argv: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  const env = { ...process.env };
  process.env.TEMPORAL_ADDRESS = '127.0.0.1:1';
  process.env.TEMPERED_HOME = join(tmpdir(), 'tempered-no-stack');
  try {
    return { code: await main(argv), err };
  } finally {
    process.stderr.write = write;
    process.env = env;
  }
}

describe('--by and --reason', () => {
  for (const [argv, pattern] of [
    [['approve', 'harden-x', '--by', 'a'.repeat(100_000)], /--by: .*200/],
    [['reject', 'harden-x', '--by', 'ops', '--reason', 'r'.repeat(100_000)], /--reason: .*2000/],
    [['approve', 'harden-x', '--by', 'ops\u001b[2J\u001b[31mroot'], /--by: expected no control characters/],
    [['cancel', 'harden-x', '--reason', 'done\u0007'], /--reason: expected no control characters/],
  ] as const) {
    it(`refuses ${argv[0]} with ${argv.length > 4 ? argv[4] : argv[2]} ${JSON.stringify(argv.at(-1)!.slice(0, 12))}…`, async () => {
      const { code, err } = await tempered(...argv);
      assert.equal(code, 2, err);
      assert.match(err, pattern);
      assert.ok(err.length < 500, 'the refusal does not echo the text');
    });
  }

  it('the payload schemas refuse the same and accept ordinary text', () => {
    assert.equal(ApprovalDecision.safeParse({ by: 'x'.repeat(201) }).success, false);
    assert.equal(CancelRequest.safeParse({ reason: 'a\u001bb' }).success, false);
    assert.equal(
      ApprovalDecision.safeParse({ by: 'Ana María', reason: 'robust accuracy 0.61 ≥ 0.55\nlooks good' }).success,
      true,
    );
  });
});
