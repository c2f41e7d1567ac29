import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bestBackend } from '../../../../tensor/backend/probe';

// The heavy queues a worker polls for a backend: one process per case (a process runs one backend).
const root = fileURLToPath(new URL('../../../../', import.meta.url));
const script = `
  const { heavyQueues } = await import('./worker/main.ts');
  const lines = [];
  const { queues, backend } = await heavyQueues('hq', process.env.ASK || undefined, (l) => lines.push(l));
  console.log(JSON.stringify({ queues, backend, lines }));
`;

function queuesFor(ask: string | undefined): { queues: string[]; backend: string; lines: string[] } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, TEMPERED_BACKEND: undefined, ASK: ask ?? '' },
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe('heavy queues of a worker', () => {
  const best = bestBackend();

  it('without --backend: the plain heavy queue and <heavy>@<the backend that started>', () => {
    const { queues, backend } = queuesFor(undefined);
    assert.deepEqual(queues, ['hq', `hq@${best}`]);
    assert.equal(backend, best);
  });

  it("--backend cpu: only hq@cpu, since cpu is never the machine's best, and a line saying why", () => {
    const { queues, backend, lines } = queuesFor('cpu');
    assert.deepEqual(queues, ['hq@cpu']);
    assert.equal(backend, 'cpu');
    assert.ok(
      lines.some((l) => l.includes(`not polling hq`) && l.includes(best)),
      lines.join('\n'),
    );
  });

  it('--backend <the best>: the plain queue too', () => {
    assert.deepEqual(queuesFor(best).queues, ['hq', `hq@${best}`]);
  });
});
