/**
 * The messages of `hardeningRun`, apart from the workflow itself so the client and the CLI import them without
 * pulling workflow internals. Payload types come from `schemas/payloads` (zod); the workflow re-validates every
 * payload it receives and ignores (and logs) ones that do not parse.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  ApprovalDecision,
  CancelRequest,
  EvaluationShards,
  RunProgress,
  Stage,
  TrainProgress,
} from '../schemas/payloads';

/** The workflow type name, for clients that start it by name. */
export const HARDENING_RUN = 'hardeningRun';

/** Stage, training position (epoch, batch, ε, loss, throughput), checkpoints, metrics so far, gate state. */
export const progressQuery = defineQuery<RunProgress>('progress');

/** Of the `evaluation` child workflow: its shards, planned and finished (running shards heartbeat the rest). */
export const evaluationProgressQuery = defineQuery<EvaluationShards>('evaluationProgress');

/** Sent by the training activity (through a client) as batches complete and checkpoints are written. */
export const progressSignal = defineSignal<[TrainProgress]>('reportProgress');

/**
 * Stops the run gracefully: the current stage's activity is cancelled (training writes a last checkpoint and
 * reports it), nothing is promoted, and the workflow returns a `RunSummary` with `status: 'cancelled'` and the
 * last `checkpointKey`.
 */
export const cancelSignal = defineSignal<[CancelRequest?]>('cancel');

/** Approves a run waiting for approval (`gate.requireApproval`); ignored at any other time. */
export const approveSignal = defineSignal<[ApprovalDecision]>('approve');

/** Rejects a run waiting for approval; ignored at any other time. */
export const rejectSignal = defineSignal<[ApprovalDecision]>('reject');

/** What a decision Update answers when it is accepted: the stage the run was in. */
export interface DecisionOutcome {
  stage: Stage;
}

/**
 * The decisions as Updates: the same effect as the signals above, but the caller learns the outcome. A decision
 * the run cannot take now is refused by the validator with the reason (e.g. `not awaiting approval: stage
 * training`), and nothing is written to the history. The signals stay for clients and runs from before.
 */
export const cancelUpdate = defineUpdate<DecisionOutcome, [CancelRequest]>('cancelRun');
export const approveUpdate = defineUpdate<DecisionOutcome, [ApprovalDecision]>('approveRun');
export const rejectUpdate = defineUpdate<DecisionOutcome, [ApprovalDecision]>('rejectRun');
