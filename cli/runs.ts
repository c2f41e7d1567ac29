// `tempered runs [--limit N] [--json]`: the most recent hardening runs (Temporal visibility).
import { defineCommand } from './command';
import { positiveInt, print, printJson } from './common';
import { formatRuns } from './format';

export const runsCommand = defineCommand({
  name: 'runs',
  summary: 'list recent hardening runs',
  usage: 'tempered runs [--limit <n>] [--json]',
  help: [
    '',
    'Lists the most recent hardening runs, newest first: workflow id, status, model, start and close time.',
    '',
    '  --limit <n>      at most n runs (default 20)',
    '  --json           print JSON',
  ],
  json: true,
  options: { limit: { type: 'string' } },
  async run({ values, json }) {
    const limit = positiveInt(values.limit, '--limit') ?? 20;
    const { listRuns } = await import('../client/index');
    const { withClient } = await import('./client-session');
    const runs = await withClient((client) => listRuns(client, { limit }));
    if (json) printJson(runs);
    else print(formatRuns(runs));
    return 0;
  },
});
