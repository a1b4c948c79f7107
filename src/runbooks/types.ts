/**
 * The step model and the run record (docs/architecture.md §Floors). Runbooks declare steps; the engine
 * (src/runbooks/engine/engine.ts) runs them durably. Nothing here knows Slack, ssh2 or the AWS SDK.
 */
import type { z } from 'zod';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { Shell } from '../ports/shell.js';
import type { Cloud } from '../ports/cloud.js';
import type { NodeRpc } from '../ports/node-rpc.js';
import type { CellState } from '../ports/cell-state.js';
import type { CellopsConfig } from '../config/config.js';

/** The ports a step may use, and nothing else. */
export interface RunbookPorts {
  readonly shell: Shell;
  readonly cloud: Cloud;
  readonly rpc: NodeRpc;
  readonly clock: Clock;
  readonly state: CellState;
}

/** JSON values a step may keep in the run record for later steps (never secrets). */
export type Fact = string | number | boolean | null | readonly Fact[] | { readonly [key: string]: Fact };

export interface StepContext<P> {
  readonly params: P;
  readonly config: CellopsConfig;
  readonly ports: RunbookPorts;
  readonly runId: string;
  /** Aborts when the run is aborted or its lock is lost; pass it to every wait and command. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** Facts recorded by earlier steps of this run (durable: saved in Redis with the run). */
  fact<T extends Fact>(key: string): T | undefined;
  /** Records a fact; it is saved with the step's result. Never store a secret. */
  setFact(key: string, value: Fact): void;
  /** Appends a line to the step's output (kept as a bounded tail, redacted). */
  output(line: string): void;
  /** The engine's reason when this step runs again after a crash (verify did not hold). */
  readonly resumed: boolean;
  /** The fencing token of the run's lock lease, for side effects that can check it (absent in a dry run). */
  readonly fencingToken?: number;
}

export interface RetryPolicy {
  /** Total attempts, 1 = no retry. */
  readonly attempts: number;
  /** Wait before the second attempt; doubles each time up to `maxBackoffMs`. */
  readonly backoffMs: number;
  readonly maxBackoffMs?: number;
}

/**
 * - `auto`: the engine runs `run`.
 * - `manual`: a person must do something outside cellops (power off a host, move an IP); an approver's
 *   click confirms it was done, and `run` (if any) only records facts.
 */
export type StepKind = 'auto' | 'manual';

export interface StepDefinition<P> {
  /** Stable id, used in Redis, buttons and the audit stream. */
  readonly id: string;
  /** Short title an operator understands: "Stop kcnd on the standby". */
  readonly title: string;
  /**
   * Exactly what the step will do, in plain words, with hosts and commands: what approvers read.
   * Computed from parameters and facts known so far, never containing secrets.
   */
  describe(ctx: PlanContext<P>): string;
  readonly destructive: boolean;
  readonly kind?: StepKind;
  /** When present and false, the step is skipped (e.g. "confirm powered off" when fencing by SSH worked). */
  when?(ctx: StepContext<P>): Promise<boolean>;
  run(ctx: StepContext<P>): Promise<void>;
  /** The post-condition. Checked after `run`, and before a re-run after a crash: true means done. */
  verify?(ctx: StepContext<P>): Promise<boolean>;
  /** Reverses `run`; on failure, completed undos run in reverse order. */
  undo?(ctx: StepContext<P>): Promise<void>;
  /** Default: the engine's default (2 minutes). */
  readonly timeoutMs?: number;
  /** Default: one attempt. Destructive steps should not retry blindly. */
  readonly retry?: RetryPolicy;
  /** Read-only steps run during a dry run (the preflight). */
  readonly readOnly?: boolean;
  /**
   * Inventory nodes this step takes out on purpose (stops or restarts their service, stops their
   * machine). From the step's start until the run ends or pauses, the monitor opens no alert for them and
   * notes what it sees in the run's thread instead (src/runbooks/run-disturbances.ts).
   */
  disturbs?(ctx: PlanContext<P>): readonly string[];
}

/** What `describe` may look at: parameters, configuration and the facts recorded so far. */
export interface PlanContext<P> {
  readonly params: P;
  readonly config: CellopsConfig;
  fact<T extends Fact>(key: string): T | undefined;
}

export interface RunbookDefinition<P> {
  readonly id: string;
  /** Bumped whenever steps change; a run recorded under another version is not resumed silently. */
  readonly version: number;
  readonly title: string;
  readonly params: z.ZodType<P>;
  /** The lock the run holds from its first step to its end. Failovers share one key per cell. */
  lockKey(params: P): string;
  /** The node the run is about, for messages and the lock holder. */
  node(params: P): string;
  /** Short summary for messages, e.g. "failover cn1 (standby → cn1s)". */
  summary(params: P, config: CellopsConfig): string;
  steps(params: P, config: CellopsConfig): readonly StepDefinition<P>[];
  /**
   * Settles what the run acts on from the recorded cell state, before the run exists: e.g. which machine
   * serves a CN now and which one is its standby. The result is the run's parameters, so the plan, the
   * approvers' texts and a resumed run all name the same machines. Throws InputError to refuse the
   * request (nothing is recorded then).
   */
  prepare?(params: P, ctx: PrepareContext): Promise<P>;
}

/** What `prepare` may read: the configuration and the recorded cell state. */
export interface PrepareContext {
  readonly config: CellopsConfig;
  readonly state: CellState;
}

/** A runbook with its parameter type erased, for registries. */
// The parameter type differs per runbook; the engine validates params with the runbook's own schema.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRunbook = RunbookDefinition<any>;

export const RUN_STATUSES = [
  'pending',
  'running',
  'waiting-approval',
  'paused',
  'succeeded',
  'failed',
  'aborted',
] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const STEP_STATUSES = [
  'pending',
  'waiting-approval',
  'approved',
  'running',
  'succeeded',
  'failed',
  'skipped',
  'aborted',
  'undone',
] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

export interface ApprovalRecord {
  readonly user: string;
  readonly decision: 'approve' | 'abort';
  readonly at: number;
}

export interface StepRecord {
  readonly id: string;
  readonly title: string;
  readonly description: string;
  readonly destructive: boolean;
  readonly kind: StepKind;
  status: StepStatus;
  attempts: number;
  startedAt?: number;
  endedAt?: number;
  /** Last lines of output, redacted and bounded. */
  output: string[];
  error?: string;
  approvals: ApprovalRecord[];
  /** When the current approval request expires (epoch ms). */
  approvalExpiresAt?: number;
  /** Bumped each time an approval is requested anew (e.g. after a crash), so old buttons go stale. */
  approvalRound: number;
  /** Distinct approvals the current round needs (slack.approvals when it was requested). */
  approvalsRequired?: number;
}

/** The alert a run answers (for its report): kept with the run because a resolved incident is deleted. */
export interface RunIncident {
  readonly id: string;
  /** The node condition or failed check, e.g. `down`. */
  readonly kind: string;
  /** When the condition began (epoch ms). */
  readonly openedAt: number;
  /** When the alert was posted (epoch ms). */
  readonly postedAt: number;
  readonly message?: { readonly channel: string; readonly ts: string };
}

export interface RunRecord {
  readonly id: string;
  readonly runbook: string;
  readonly runbookVersion: number;
  readonly params: Record<string, unknown>;
  readonly node: string;
  readonly summary: string;
  readonly requester: string;
  readonly dryRun: boolean;
  readonly createdAt: number;
  status: RunStatus;
  currentStep?: string;
  steps: StepRecord[];
  facts: Record<string, Fact>;
  lockKey: string;
  fencingToken?: number;
  /** The process that drives the run now; its lease lapses when it dies. */
  owner?: string;
  endedAt?: number;
  error?: string;
  /** Why the run is paused, for people. */
  pauseReason?: string;
  /** A remark on how the run ended, for people (e.g. what a dry run did not do). */
  note?: string;
  /** The run's Slack message, once posted. */
  thread?: { channel: string; ts: string };
  /** The open alert about the run's node when it was requested. */
  readonly incident?: RunIncident;
}

/** What the engine tells the outside world (Slack, the sandbox console, metrics). */
export type RunEvent =
  | { readonly type: 'run-started' }
  | { readonly type: 'step-started'; readonly stepId: string }
  | { readonly type: 'step-output'; readonly stepId: string; readonly line: string }
  | { readonly type: 'step-finished'; readonly stepId: string; readonly status: StepStatus }
  | { readonly type: 'approval-requested'; readonly stepId: string; readonly expiresAt: number }
  | {
      readonly type: 'approval-decided';
      readonly stepId: string;
      readonly approval: ApprovalRecord;
      readonly final: boolean;
    }
  | { readonly type: 'approval-expired'; readonly stepId: string }
  /** The request's round ended without a decision because the run paused; resume asks again. */
  | {
      readonly type: 'approval-closed';
      readonly stepId: string;
      readonly round: number;
      readonly reason: string;
    }
  | { readonly type: 'run-paused'; readonly reason: string }
  | { readonly type: 'run-resumed'; readonly user: string }
  | { readonly type: 'run-finished'; readonly status: RunStatus; readonly error?: string };

/** Observer port: the engine calls it after each state change is saved. Errors are logged, never fatal. */
export interface RunObserver {
  onRunEvent(run: RunRecord, event: RunEvent): Promise<void>;
}

export type DecisionOutcome =
  | { readonly kind: 'recorded'; readonly run: RunRecord; readonly final: boolean }
  | { readonly kind: 'already-decided'; readonly by: ApprovalRecord }
  | { readonly kind: 'not-waiting'; readonly status: RunStatus | StepStatus }
  /** An approval clicked after the request expired (epoch ms): nothing was recorded. */
  | { readonly kind: 'expired'; readonly expiredAt: number };

export interface StartRequest {
  readonly runbook: string;
  readonly params: unknown;
  readonly requester: string;
  readonly dryRun?: boolean;
  /** The open alert this run answers, recorded with it for the report. */
  readonly incident?: RunIncident;
}

/** The engine's public face, used by src/commands, src/monitor and the sandbox. */
export interface Engine {
  /** Validates, takes the lock (LockBusyError names the holder) and starts the run in the background. */
  start(request: StartRequest): Promise<RunRecord>;
  /** Renders the plan with no side effects. */
  plan(
    runbook: string,
    params: unknown,
  ): Promise<{
    summary: string;
    steps: { id: string; title: string; description: string; destructive: boolean }[];
  }>;
  /** One atomic decision: the first valid one wins. NotAuthorizedError for users who may not decide. */
  decide(
    runId: string,
    stepId: string,
    user: string,
    decision: 'approve' | 'abort',
    round?: number,
  ): Promise<DecisionOutcome>;
  /** Stops before the next step and runs completed undos in reverse. */
  abort(runId: string, user: string): Promise<RunRecord>;
  resume(runId: string, user: string): Promise<RunRecord>;
  get(runId: string): Promise<RunRecord | undefined>;
  list(limit: number): Promise<RunRecord[]>;
  /** Records where the run's Slack message is. */
  setThread(runId: string, thread: { channel: string; ts: string }): Promise<void>;
  /** Finds runs whose owner died and resumes them. Called at start-up and periodically. */
  recover(): Promise<void>;
  /** Stops driving runs (they stay durable and another process can resume them). */
  close(): Promise<void>;
}
