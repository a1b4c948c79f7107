/**
 * The durable state the engine keeps, behind one narrow interface (the BullMQ lesson): run records, the
 * set of unfinished runs, the per-run owner lease, approval decisions, the audit stream and "run changed"
 * notifications. Implemented on Redis (redis-run-store.ts) and in memory for the sandbox and unit tests
 * (memory-run-store.ts); both pass test/contract/run-store.contract.ts.
 */
import type { ApprovalRecord, RunRecord } from '../types.js';

/** One line of a run's audit trail: who did what, when. */
export interface AuditEntry {
  /** Epoch ms. */
  readonly at: number;
  /** Slack user id of a person, or `engine:<owner id>` for what the engine did on its own. */
  readonly who: string;
  /** What happened, e.g. `run-started`, `decision`, `step-started`, `step-output`, `step-finished`. */
  readonly what: string;
  readonly stepId?: string;
  /** Free text (redacted before it gets here): the output line, the error, the decision. */
  readonly detail?: string;
}

/** An audit entry as stored, with the stream's id (Redis stream ids sort in insertion order). */
export interface StoredAuditEntry extends AuditEntry {
  readonly id: string;
  readonly runId: string;
}

/** Why an approval round ended without a decision (it expired, the run was aborted or taken over). */
export interface RoundClosure {
  readonly reason: string;
  readonly at: number;
}

/** The state of one approval round of one step. */
export interface ApprovalRound {
  /** Every decision recorded in the round, oldest first (one per user). */
  readonly decisions: readonly ApprovalRecord[];
  /** The decision that settled the round: an abort, or the approval that reached the required count. */
  readonly final?: ApprovalRecord;
  /** Set when the round ended without a decision. */
  readonly closed?: RoundClosure;
}

export type RecordDecisionResult =
  /** This call's decision was recorded; `final` tells whether it settled the round. */
  | { readonly kind: 'recorded'; readonly final: boolean; readonly round: ApprovalRound }
  /** Nothing changed: the round was already settled (by `by`), or this user had already decided (`by`). */
  | { readonly kind: 'already-decided'; readonly by: ApprovalRecord }
  /** Nothing changed: the round ended without a decision. */
  | { readonly kind: 'closed'; readonly closed: RoundClosure };

export type CloseRoundResult =
  | { readonly kind: 'closed' }
  /** The round had been settled first; the closure was not recorded. */
  | { readonly kind: 'decided'; readonly round: ApprovalRound };

/** A request from a person to abort or resume a run, picked up by whichever process drives it. */
export interface ControlRequest {
  readonly user: string;
  readonly at: number;
}

export interface RunStore {
  /**
   * Saves the record and keeps the indexes in step (recent runs by creation time; the active set holds
   * the runs that have not finished). With `guard.owner`, saves only while that process holds the run's
   * owner lease, so a driver that lost its lease cannot overwrite its successor's state; returns whether
   * it saved.
   */
  saveRun(run: RunRecord, guard?: { readonly owner: string }): Promise<boolean>;
  loadRun(runId: string): Promise<RunRecord | undefined>;
  /** The most recent runs, newest first. */
  listRecent(limit: number): Promise<RunRecord[]>;
  /** Ids of the runs that have not finished. */
  activeRunIds(): Promise<string[]>;

  /** Takes the owner lease when it is free or already ours (then it is renewed). */
  acquireOwner(runId: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Renews the lease only while it is ours; false when it lapsed or someone else took it. */
  renewOwner(runId: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Releases the lease only if it is ours. */
  releaseOwner(runId: string, owner: string): Promise<void>;
  ownerOf(runId: string): Promise<string | undefined>;

  /**
   * Records one decision atomically. The first abort settles the round; approvals count per distinct
   * user until `required` settle it. A repeated decision by the same user, any decision after the round
   * settled, and any decision after it closed change nothing.
   */
  recordDecision(
    runId: string,
    stepId: string,
    round: number,
    decision: ApprovalRecord,
    required: number,
  ): Promise<RecordDecisionResult>;
  /** Ends a round without a decision, atomically with respect to recordDecision: one of them wins. */
  closeRound(runId: string, stepId: string, round: number, closure: RoundClosure): Promise<CloseRoundResult>;
  readRound(runId: string, stepId: string, round: number): Promise<ApprovalRound>;

  /** The first abort request wins and is returned by later calls. */
  requestAbort(runId: string, request: ControlRequest): Promise<ControlRequest>;
  abortRequest(runId: string): Promise<ControlRequest | undefined>;
  /** Replaces any earlier resume request. */
  requestResume(runId: string, request: ControlRequest): Promise<void>;
  /** Returns and removes the pending resume request, so each one is acted on once. */
  takeResume(runId: string): Promise<ControlRequest | undefined>;

  appendAudit(runId: string, entry: AuditEntry): Promise<void>;
  /** The run's audit trail, oldest first. */
  readAudit(runId: string, limit?: number): Promise<StoredAuditEntry[]>;

  /** Tells every subscriber (in every process) that the run changed: a decision, abort or resume. */
  publish(runId: string): Promise<void>;
  /** Calls `listener` with the run id of every change; resolves once listening, to an unsubscribe. */
  subscribe(listener: (runId: string) => void): Promise<() => Promise<void>>;
}

export const FINISHED_STATUSES: readonly RunRecord['status'][] = ['succeeded', 'failed', 'aborted'];

export function isFinished(status: RunRecord['status']): boolean {
  return FINISHED_STATUSES.includes(status);
}

/** Orders decisions as recorded; ties (same millisecond) by user id so that the order is stable. */
export function sortDecisions(decisions: readonly ApprovalRecord[]): ApprovalRecord[] {
  return [...decisions].sort((a, b) => a.at - b.at || a.user.localeCompare(b.user));
}
