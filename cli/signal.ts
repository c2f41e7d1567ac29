// `tempered cancel|approve|reject <id>`: the run's decision Updates through the client SDK. The run answers: the
// CLI prints the outcome, or the run's reason for refusing (exit 1), e.g. `not awaiting approval: stage training`.
import type { Command } from './command';
import { UsageError, defineCommand } from './command';
import { CancelRequest } from '../schemas/payloads';
import { log, positional, print, printJson } from './common';

type Action = 'cancel' | 'approve' | 'reject';

const PAST: Record<Action, string> = { cancel: 'cancel requested for', approve: 'approved', reject: 'rejected' };

const USAGE: Record<Action, string> = {
  cancel: 'tempered cancel <workflow-id> [--reason <text>] [--by <name>] [--json]',
  approve: 'tempered approve <workflow-id> --by <name> [--reason <text>] [--json]',
  reject: 'tempered reject <workflow-id> --by <name> [--reason <text>] [--json]',
};

const DESCRIPTION: Record<Action, string[]> = {
  cancel: [
    'Stops a run gracefully: training writes a last checkpoint, nothing is promoted, and the run ends with',
    'status cancelled. `tempered show <id>` tells when it has. Exit 1 with the reason when the run refuses',
    '(it has ended, or the decision is already being recorded).',
  ],
  approve: [
    'Approves a run that waits for approval (gate.requireApproval): the hardened model is promoted.',
    'Exit 1 with the reason when the run is not waiting for approval.',
  ],
  reject: [
    'Rejects a run that waits for approval: the version is stored, production does not move.',
    'Exit 1 with the reason when the run is not waiting for approval.',
  ],
};

function signalCommand(action: Action, summary: string): Command {
  return defineCommand({
    name: action,
    summary,
    usage: USAGE[action],
    help: [
      '',
      ...DESCRIPTION[action],
      '',
      `  --by <name>      who decides${action === 'cancel' ? ' (optional)' : ' (required)'}`,
      '  --reason <text>  why',
      '  --json           print JSON',
    ],
    json: true,
    positionals: true,
    options: { reason: { type: 'string' }, by: { type: 'string' } },
    async run({ values, positionals, json }) {
      const id = positional(positionals, 'workflow-id', USAGE[action]);
      if (action !== 'cancel' && !values.by?.trim()) throw new UsageError(`--by: expected the name of who ${action}s`);
      const text = CancelRequest.safeParse({ by: values.by, reason: values.reason });
      if (!text.success)
        throw new UsageError(`--${String(text.error.issues[0].path[0])}: ${text.error.issues[0].message}`);
      const { DecisionRefusedError, getHardeningRun } = await import('../client/index');
      const { withClient } = await import('./client-session');
      const sent = { workflowId: id, decision: action, by: values.by, reason: values.reason };
      try {
        const outcome = await withClient(async (client) => {
          const run = getHardeningRun(client, id);
          return action === 'cancel' ? run.cancel(values.reason, values.by) : run[action](values.by!, values.reason);
        });
        if (json) printJson({ ...sent, accepted: true, stage: outcome.stage });
        else print(`${PAST[action]} ${id} (it was at stage ${outcome.stage})`);
      } catch (err) {
        if (!(err instanceof DecisionRefusedError)) throw err;
        if (json) printJson({ ...sent, accepted: false, refused: err.message });
        else log(`tempered ${action}: ${id} refused: ${err.message}`);
        return 1;
      }
      return 0;
    },
  });
}

export const cancelCommand = signalCommand('cancel', 'stop a run gracefully (last checkpoint kept, nothing promoted)');
export const approveCommand = signalCommand('approve', 'approve a run waiting for approval (--by NAME)');
export const rejectCommand = signalCommand('reject', 'reject a run waiting for approval (--by NAME)');
