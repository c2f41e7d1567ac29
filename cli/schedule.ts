// `tempered schedule create|list|delete|trigger`: nightly re-hardening as a Temporal Schedule.
import { UsageError, defineCommand } from './command';
import { loadSpecOrReport, log, positional, print, printJson } from './common';
import { EXIT, formatSchedules } from './format';

const HELP = [
  '',
  '  tempered schedule create <spec.yaml> --cron "0 2 * * *" [--id <schedule-id>] [--timezone <tz>]',
  '                               [--catchup <duration>] [--paused] [--json]',
  '      A Temporal Schedule that starts hardeningRun with the spec on the cron (UTC unless --timezone).',
  '      Overlap policy SKIP: a night whose previous run still runs starts nothing. Default id',
  '      harden-<modelName>-nightly; each run is named <id>-<time>. Warns when the spec does not start from',
  '      the production artifact (model.source { kind: artifact, ref: production }).',
  '  tempered schedule list [--json]          schedules that start hardeningRun: cron, next run, last run',
  '  tempered schedule delete <schedule-id>   removes the schedule (runs it started go on)',
  '  tempered schedule trigger <schedule-id>  starts a run now (skipped while the previous one runs)',
];

const options = {
  cron: { type: 'string' },
  id: { type: 'string' },
  timezone: { type: 'string' },
  catchup: { type: 'string' },
  paused: { type: 'boolean', default: false },
} as const;

export const scheduleCommand = defineCommand({
  name: 'schedule',
  summary: 'nightly re-hardening: schedule create|list|delete|trigger',
  usage: 'tempered schedule <create|list|delete|trigger> ...',
  help: HELP,
  json: true,
  positionals: true,
  options,
  async run({ values, positionals, json, help }) {
    const [sub, ...rest] = positionals;
    if (sub === undefined || sub === 'help') {
      print(help);
      return sub === undefined ? EXIT.usage : 0;
    }
    const { ScheduleAlreadyRunning } = await import('@temporalio/client');
    const { createSchedule, deleteSchedule, listSchedules, triggerSchedule } = await import('../client/schedules');
    const { withClient } = await import('./client-session');
    switch (sub) {
      case 'create': {
        const file = positional(rest, 'spec', 'tempered schedule create <spec.yaml> --cron "0 2 * * *"');
        if (!values.cron) throw new UsageError('--cron: expected a cron expression such as "0 2 * * *"');
        const spec = await loadSpecOrReport(file);
        if (!spec) return EXIT.usage;
        const created = await withClient(async (client) => {
          try {
            return await createSchedule(client, spec, {
              cron: values.cron!,
              scheduleId: values.id,
              timezone: values.timezone,
              catchupWindow: values.catchup,
              paused: values.paused,
            });
          } catch (err) {
            if (err instanceof ScheduleAlreadyRunning) {
              throw new Error(`schedule ${err.scheduleId} already exists; delete it first or pass another --id`);
            }
            throw err;
          }
        });
        for (const w of created.warnings) log(`warning: ${w}`);
        const out = { scheduleId: created.scheduleId, workflowIdPrefix: created.workflowIdPrefix, cron: values.cron };
        if (json) printJson({ ...out, warnings: created.warnings });
        else print(`created schedule ${out.scheduleId} (${out.cron}); runs are named ${out.workflowIdPrefix}-<time>`);
        return 0;
      }
      case 'list': {
        if (rest.length > 0) throw new UsageError(`schedule list takes no arguments, got ${rest.join(' ')}`);
        const list = await withClient((client) => listSchedules(client));
        if (json) printJson(list);
        else print(formatSchedules(list));
        return 0;
      }
      case 'delete':
      case 'trigger': {
        const id = positional(rest, 'schedule-id', `tempered schedule ${sub} <schedule-id>`);
        await withClient((client) => (sub === 'delete' ? deleteSchedule(client, id) : triggerSchedule(client, id)));
        if (json) printJson({ scheduleId: id, [sub === 'delete' ? 'deleted' : 'triggered']: true });
        else
          print(
            sub === 'delete'
              ? `deleted schedule ${id}`
              : `triggered schedule ${id} (skipped if its last run is still running)`,
          );
        return 0;
      }
      default:
        throw new UsageError(
          `unknown schedule command ${JSON.stringify(sub)}; expected create, list, delete or trigger`,
        );
    }
  },
});
