// `tempered cancel|approve|reject <id>`: the run's signals through the client SDK.
import { parseArgs } from 'node:util';
import { getHardeningRun } from '../client/index';
import { CancelRequest } from '../schemas/payloads';
import { positional, print, printJson, withClient } from './common';
import type { Command } from './main';
import { UsageError } from './main';

type Action = 'cancel' | 'approve' | 'reject';

const HELP: Record<Action, string> = {
  cancel: [
    'Usage: tempered cancel <workflow-id> [--reason <text>] [--by <name>] [--json]',
    '',
    'Stops a run gracefully (the cancel signal): training writes a last checkpoint, nothing is promoted, and',
    'the run ends with status cancelled. `tempered show <id>` tells when it has.',
  ].join('\n'),
  approve: [
    'Usage: tempered approve <workflow-id> --by <name> [--reason <text>] [--json]',
    '',
    'Approves a run that waits for approval (gate.requireApproval): the hardened model is promoted.',
  ].join('\n'),
  reject: [
    'Usage: tempered reject <workflow-id> --by <name> [--reason <text>] [--json]',
    '',
    'Rejects a run that waits for approval: the version is stored, production does not move.',
  ].join('\n'),
};

function signalCommand(action: Action, summary: string): Command {
  return {
    summary,
    async run(argv) {
      const { values, positionals } = parseArgs({
        args: argv,
        options: {
          help: { type: 'boolean', short: 'h', default: false },
          json: { type: 'boolean', default: false },
          reason: { type: 'string' },
          by: { type: 'string' },
        },
        allowPositionals: true,
        strict: true,
      });
      if (values.help) {
        print(
          `${HELP[action]}\n\n  --by <name>      who decides${action === 'cancel' ? ' (optional)' : ' (required)'}\n  --reason <text>  why\n  --json           print JSON`,
        );
        return 0;
      }
      const id = positional(positionals, 'workflow-id', HELP[action].split('\n')[0].replace('Usage: ', ''));
      if (action !== 'cancel' && !values.by?.trim()) throw new UsageError(`--by: expected the name of who ${action}s`);
      const text = CancelRequest.safeParse({ by: values.by, reason: values.reason });
      if (!text.success)
        throw new UsageError(`--${String(text.error.issues[0].path[0])}: ${text.error.issues[0].message}`);
      await withClient(async (client) => {
        const run = getHardeningRun(client, id);
        if (action === 'cancel') await run.cancel(values.reason, values.by);
        else await run[action](values.by!, values.reason);
      });
      const sent = { workflowId: id, signal: action, by: values.by, reason: values.reason };
      if (values.json) printJson(sent);
      else print(`${action} sent to ${id}${action === 'cancel' ? '' : ' (ignored unless it awaits approval)'}`);
      return 0;
    },
  };
}

export const cancelCommand = signalCommand('cancel', 'stop a run gracefully (last checkpoint kept, nothing promoted)');
export const approveCommand = signalCommand('approve', 'approve a run waiting for approval');
export const rejectCommand = signalCommand('reject', 'reject a run waiting for approval');
