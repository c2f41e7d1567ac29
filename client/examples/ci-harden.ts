// A release pipeline's hardening step: `npx tsx client/examples/ci-harden.ts spec.yaml` (exit 0 = promoted).
import { connectClient, startHardeningRun } from '../index';
import { loadSpec } from '../../schemas/load';

const spec = await loadSpec(process.argv[2] ?? 'examples/nightly-production.yaml'); // SpecError lists every problem
const client = await connectClient(); // TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE, or the `tempered up` stack
try {
  const run = await startHardeningRun(client, spec); // id harden-<model>-<YYYYMMDD-HHmmss>; a duplicate is refused
  console.log(`started ${run.workflowId}`);
  const summary = await run.result(); // a failed run throws WorkflowFailedError (err.cause.type says why)
  console.log(`${summary.status}: robust ${summary.baseline?.robust} -> ${summary.hardened?.robust}`);
  console.log(`gate: ${summary.gate?.reasons.join('; ')}; artifact ${summary.artifact?.uri ?? '-'}`);
  process.exitCode = summary.status === 'completed' ? 0 : 3; // 3: the gate (or a person) said no
} finally {
  await client.connection.close();
}
