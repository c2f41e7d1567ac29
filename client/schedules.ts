/**
 * Nightly re-hardening: a Temporal Schedule that starts `hardeningRun` with one spec on a cron. The spec usually
 * starts from the production artifact (`model.source: { kind: artifact, ref: production }`), so each night
 * hardens what production serves and the gate decides whether the result replaces it.
 *
 * Overlap is SKIP: a night whose previous run still trains starts nothing. A manual trigger passes SKIP too
 * (`handle.trigger()` without an argument would use ALLOW_ALL).
 */
import { ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import type { Client, ScheduleDescription, ScheduleHandle, ScheduleSummary } from '@temporalio/client';
import { parseSpec } from '../schemas/spec';
import type { Spec } from '../schemas/spec';
import { HARDENING_RUN } from '../workflows/messages';

export interface CreateScheduleOptions {
  /** Cron expression (5 fields, UTC unless `timezone`), e.g. `0 2 * * *` for 02:00 every night. Required. */
  cron: string;
  /** Default `harden-<modelName>-nightly`. Also the prefix of every started run's workflow id. */
  scheduleId?: string;
  /** IANA time zone the cron is read in. Default UTC. */
  timezone?: string;
  /** How late a missed action (server down at 02:00) may still start. Default `1 hour`. */
  catchupWindow?: string;
  /** Default `spec.compute.ioQueue`. */
  taskQueue?: string;
  /** Created paused (no action until unpaused). Default false. */
  paused?: boolean;
}

export interface CreatedSchedule {
  scheduleId: string;
  /** Every started run's workflow id is this id plus the scheduled time (Temporal appends it). */
  workflowIdPrefix: string;
  handle: ScheduleHandle;
  /** Things worth saying but not refusing (e.g. the model source is not the production artifact). */
  warnings: string[];
}

const CRON_FIELD = /^[\d*,/\-A-Za-z?LW#]+$/;

/** Checks a cron expression's shape (5 fields, or an `@daily`-style macro); throws a one-line error. */
export function checkCron(cron: string): string {
  const trimmed = typeof cron === 'string' ? cron.trim().replace(/\s+/g, ' ') : '';
  if (/^@(yearly|annually|monthly|weekly|daily|midnight|hourly|every \S+)$/.test(trimmed)) return trimmed;
  const fields = trimmed.split(' ');
  if (trimmed === '' || fields.length < 5 || fields.length > 7 || !fields.every((f) => CRON_FIELD.test(f))) {
    throw new Error(
      `cron: expected 5 fields like "0 2 * * *" (minute hour day month weekday), got ${JSON.stringify(cron)}`,
    );
  }
  return trimmed;
}

/** The id a schedule for `spec` gets by default. */
export const defaultScheduleId = (spec: Spec) => `harden-${spec.artifacts.modelName}-nightly`;

/** Warnings for a spec that is about to run unattended every night. */
export function scheduleWarnings(spec: Spec): string[] {
  const warnings: string[] = [];
  const source = spec.model.source;
  if (source.kind !== 'artifact') {
    warnings.push(
      `model.source is ${source.kind}, not an artifact: each scheduled run hardens the same starting model ` +
        `instead of what production serves (use { kind: artifact, ref: production })`,
    );
  } else if (source.ref !== 'production') {
    warnings.push(
      `model.source.ref is ${source.ref}: each scheduled run starts from that fixed version, not production`,
    );
  }
  return warnings;
}

/** Creates the schedule. A schedule with the same id makes this fail (`ScheduleAlreadyRunning`). */
export async function createSchedule(
  client: Client,
  spec: unknown,
  options: CreateScheduleOptions,
): Promise<CreatedSchedule> {
  const parsed = parseSpec(spec);
  const cron = checkCron(options.cron);
  const {
    scheduleId = defaultScheduleId(parsed),
    catchupWindow = '1 hour',
    taskQueue = parsed.compute.ioQueue,
    timezone,
    paused = false,
  } = options;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/.test(scheduleId)) {
    throw new Error(`scheduleId: expected letters, digits, . _ - (at most 200), got ${JSON.stringify(scheduleId)}`);
  }
  const handle = await client.schedule.create({
    scheduleId,
    spec: { cronExpressions: [cron], timezone },
    action: {
      type: 'startWorkflow',
      workflowType: HARDENING_RUN,
      workflowId: scheduleId,
      taskQueue,
      args: [parsed],
      memo: { modelName: parsed.artifacts.modelName, scheduleId },
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow },
    state: { paused, note: `tempered: hardens ${parsed.artifacts.modelName} on "${cron}"` },
    memo: { modelName: parsed.artifacts.modelName, cron },
  });
  return { scheduleId, workflowIdPrefix: scheduleId, handle, warnings: scheduleWarnings(parsed) };
}

/** Starts the schedule's action now, skipped (like a nightly one) when its previous run is still running. */
export async function triggerSchedule(client: Client, scheduleId: string): Promise<void> {
  await named(scheduleId, () => client.schedule.getHandle(scheduleId).trigger(ScheduleOverlapPolicy.SKIP));
}

export async function deleteSchedule(client: Client, scheduleId: string): Promise<void> {
  await named(scheduleId, () => client.schedule.getHandle(scheduleId).delete());
}

export async function describeSchedule(client: Client, scheduleId: string): Promise<ScheduleDescription> {
  return named(scheduleId, () => client.schedule.getHandle(scheduleId).describe());
}

/** Rethrows the SDK's not-found error with the schedule id in the message (it stays a ScheduleNotFoundError). */
async function named<T>(scheduleId: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) {
      throw new ScheduleNotFoundError(`no schedule with id ${scheduleId}; see tempered schedule list`, scheduleId);
    }
    throw err;
  }
}

/** One schedule as `schedule list` shows it. */
export interface ScheduleListing {
  scheduleId: string;
  cron: string[];
  workflowType?: string;
  paused: boolean;
  nextActionTimes: Date[];
  recentRuns: { workflowId: string; scheduledAt: Date; takenAt: Date }[];
  note?: string;
}

export function toScheduleListing(s: ScheduleSummary): ScheduleListing {
  return {
    scheduleId: s.scheduleId,
    cron: typeof s.memo?.cron === 'string' ? [s.memo.cron] : describeCalendars(s),
    workflowType: s.action?.type === 'startWorkflow' ? s.action.workflowType : undefined,
    paused: s.state.paused,
    nextActionTimes: s.info.nextActionTimes,
    recentRuns: s.info.recentActions.map((a) => ({
      workflowId: a.action.workflow.workflowId,
      scheduledAt: a.scheduledAt,
      takenAt: a.takenAt,
    })),
    note: s.state.note,
  };
}

/** The server returns crons as calendar specs; show each as its comment or its fields. */
function describeCalendars(s: ScheduleSummary): string[] {
  return (s.spec?.calendars ?? []).map((c) => {
    if (c.comment) return c.comment;
    const field = (v: unknown) =>
      Array.isArray(v)
        ? v
            .map((r: { start?: unknown; end?: unknown }) =>
              r.end !== undefined && r.end !== r.start ? `${r.start}-${r.end}` : `${r.start}`,
            )
            .join(',')
        : '*';
    return [c.minute, c.hour, c.dayOfMonth, c.month, c.dayOfWeek].map(field).join(' ');
  });
}

/** Every schedule whose action starts `hardeningRun`. */
export async function listSchedules(client: Client): Promise<ScheduleListing[]> {
  const out: ScheduleListing[] = [];
  for await (const s of client.schedule.list()) {
    if (s.action?.type === 'startWorkflow' && s.action.workflowType !== HARDENING_RUN) continue;
    out.push(toScheduleListing(s));
  }
  return out;
}

export { ScheduleNotFoundError };
