// `tempered runs [--limit N] [--json]`: the most recent hardening runs (Temporal visibility).
import { parseArgs } from 'node:util';
import { listRuns } from '../client/index';
import { positiveInt, print, printJson, withClient } from './common';
import { formatRuns } from './format';
import type { Command } from './main';

const HELP = [
  'Usage: tempered runs [--limit <n>] [--json]',
  '',
  'Lists the most recent hardening runs, newest first: workflow id, status, model, start and close time.',
  '',
  '  --limit <n>      at most n runs (default 20)',
  '  --json           print JSON',
].join('\n');

export const runsCommand: Command = {
  summary: 'list recent hardening runs',
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        help: { type: 'boolean', short: 'h', default: false },
        json: { type: 'boolean', default: false },
        limit: { type: 'string' },
      },
      allowPositionals: false,
      strict: true,
    });
    if (values.help) {
      print(HELP);
      return 0;
    }
    const limit = positiveInt(values.limit, '--limit') ?? 20;
    const runs = await withClient((client) => listRuns(client, { limit }));
    if (values.json) printJson(runs);
    else print(formatRuns(runs));
    return 0;
  },
};
