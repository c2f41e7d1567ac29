// `tempered cancel|approve|reject <id>`: the run's signals through the client SDK.
import type { Command } from './command';
import { UsageError, defineCommand } from './command';
import { positional, print, printJson } from './common';

type Action = 'cancel' | 'approve' | 'reject';

const USAGE: Record<Action, string> = {
  cancel: 'tempered cancel <workflow-id> [--reason <text>] [--by <name>] [--json]',
  approve: 'tempered approve <workflow-id> --by <name> [--reason <text>] [--json]',
  reject: 'tempered reject <workflow-id> --by <name> [--reason <text>] [--json]',
};

const DESCRIPTION: Record<Action, string[]> = {
  cancel: [
    'Stops a run gracefully (the cancel signal): training writes a last checkpoint, nothing is promoted, and',
    'the run ends with status cancelled. `tempered show <id>` tells when it has.',
  ],
  approve: ['Approves a run that waits for approval (gate.requireApproval): the hardened model is promoted.'],
  reject: ['Rejects a run that waits for approval: the version is stored, production does not move.'],
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
      const { getHardeningRun } = await import('../client/index');
      const { withClient } = await import('./client-session');
      await withClient(async (client) => {
        const run = getHardeningRun(client, id);
        if (action === 'cancel') await run.cancel(values.reason, values.by);
        else await run[action](values.by!, values.reason);
      });
      const sent = { workflowId: id, signal: action, by: values.by, reason: values.reason };
      if (json) printJson(sent);
      else print(`${action} sent to ${id}${action === 'cancel' ? '' : ' (ignored unless it awaits approval)'}`);
      return 0;
    },
  });
}

export const cancelCommand = signalCommand('cancel', 'stop a run gracefully (last checkpoint kept, nothing promoted)');
export const approveCommand = signalCommand('approve', 'approve a run waiting for approval (--by NAME)');
export const rejectCommand = signalCommand('reject', 'reject a run waiting for approval (--by NAME)');
