import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cycles, importsOf, ruleViolations } from '../../../scripts/check-imports';
import type { ImportEdge } from '../../../scripts/check-imports';

const edge = (from: string, to: string, typeOnly = false): ImportEdge => ({ from, to, typeOnly, line: 1 });

test('a circle through a dynamic import is found; type-only imports make none', () => {
  const text = "import { x } from './b';\nexport const load = () => import('./c');\nimport type { T } from './d';\n";
  const edges = importsOf('cli/a.ts', text, '/nonexistent');
  assert.deepEqual(
    edges.map((e) => [e.to, e.typeOnly, e.line]),
    [
      ['cli/b', false, 1],
      ['cli/d', true, 3],
      ['cli/c', false, 2],
    ],
  );
  const found = cycles([
    edge('cli/main.ts', 'cli/run.ts'),
    edge('cli/run.ts', 'cli/main.ts'),
    edge('a.ts', 'b.ts', true),
    edge('b.ts', 'a.ts'),
  ]);
  assert.deepEqual(found, [['cli/main.ts', 'cli/run.ts']]);
});

test('import { type A, type B } counts as type-only', () => {
  const [e] = importsOf('x.ts', "import { type A, type B as C } from 'zod';\n", '/nonexistent');
  assert.equal(e.typeOnly, true);
  const [v] = importsOf('x.ts', "import { type A, B } from 'zod';\n", '/nonexistent');
  assert.equal(v.typeOnly, false);
});

test('each row of the architecture table refuses what it forbids and allows the rest', () => {
  const bad = ruleViolations([
    edge('tensor/eval/x.ts', '@temporalio/activity'),
    edge('tensor/eval/x.ts', 'schemas/spec.ts'),
    edge('tensor/eval/x.ts', 'minio'),
    edge('schemas/spec.ts', 'node:fs'),
    edge('workflows/w.ts', 'activities/models.ts'),
    edge('workflows/w.ts', 'schemas/load.ts'),
    edge('client/index.ts', 'infra/stack.ts'),
  ]);
  assert.equal(bad.length, 7, bad.join('\n'));
  const good = ruleViolations([
    edge('tensor/eval/x.ts', '@tensorflow/tfjs'),
    edge('tensor/eval/x.ts', 'tensor/attacks/pgd.ts'),
    edge('schemas/spec.ts', 'zod'),
    edge('schemas/load.ts', 'node:fs/promises'),
    edge('workflows/w.ts', 'activities/contract.ts', true),
    edge('workflows/w.ts', '@temporalio/workflow'),
    edge('workflows/w.ts', 'schemas/spec.ts'),
    edge('client/index.ts', 'infra/config.ts'),
  ]);
  assert.deepEqual(good, []);
});
