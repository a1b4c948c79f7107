/**
 * The state of one run's driver (run-driver.ts), passed explicitly to the modules that do its work: the
 * lease keeper, the pauses, the approval wait, step execution and the run's end. Everything mutable that
 * they share lives here, on one object per run, so that no module keeps state of its own.
 *
 * Three signals stop work in progress, and each means something different:
 * - stop: the engine is closing, or another process took the run over. Leave the record as it is.
 * - abort: a person aborted the run. Stop before the next step, run completed undos in reverse.
 * - lock: the run lock was lost. Pause with the reason; resume takes the lock again.
 */
import type { CellopsConfig } from '../../config/config.js';
import type { LockLease, RunLock } from '../../locks/types.js';
import type { Clock } from '../../ports/clock.js';
import type { Logger } from '../../ports/logger.js';
import type { ApprovalPolicy } from '../approval-policy.js';
import type { RunbookPorts, RunEvent, RunRecord, StepDefinition } from '../types.js';
import { RunAbortedError } from './engine-errors.js';
import type { AuditEntry, ControlRequest, RunStore } from './run-store.js';

/** The engine's timings, all in milliseconds; defaults in engine.ts. */
export interface EngineTimings {
  readonly lockTtlMs: number;
  readonly ownerLeaseMs: number;
  readonly pollMs: number;
  readonly stepTimeoutMs: number;
  readonly graceMs: number;
  readonly outputLines: number;
  readonly outputLineChars: number;
}

export interface DriverDeps {
  readonly store: RunStore;
  readonly lock: RunLock;
  readonly ports: RunbookPorts;
  readonly config: CellopsConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly ownerId: string;
  readonly timings: EngineTimings;
  /** Checked again when a round settles: what Redis says was decided must still be allowed now. */
  readonly policy: Pick<ApprovalPolicy, 'canApprove' | 'canAbort'>;
  /** Hands an event to the observer (after the state it describes was saved); never throws. */
  readonly emit: (run: RunRecord, event: RunEvent) => void;
}

export interface DriveStart {
  /** The record as saved; the driver owns it from now on. */
  readonly run: RunRecord;
  readonly params: unknown;
  readonly steps: readonly StepDefinition<unknown>[];
  /** The run lock's lease; absent for a dry run, or when it could not be taken back after a crash. */
  readonly lease: LockLease | undefined;
}

export interface DriverContext extends DriverDeps, DriveStart {
  /** Logs with the run's id and runbook. */
  readonly logger: Logger;
  /** `who` of the audit entries the engine writes on its own. */
  readonly engineWho: string;
  /** The run lock's lease while the run holds it (renewed by the lease keeper). */
  lease: LockLease | undefined;
  /** Aborted when the run lock is lost; replaced by a fresh one when the lock is taken again. */
  lockCtl: AbortController;
  /** Aborted when the driver must stop and leave the record as it is. */
  readonly stopCtl: AbortController;
  /** Aborted when a person aborted the run. */
  readonly abortCtl: AbortController;
  /** Who aborted the run, once abortCtl is aborted. */
  abortedBy: ControlRequest | undefined;
  /** Something changed since the last wait (see wake). */
  dirty: boolean;
  /** One per wait in progress; wake() aborts them. */
  readonly wakers: Set<AbortController>;
  /** Writes not waited for (audit entries); flushed before the run's state moves on. */
  readonly background: Set<Promise<void>>;
  /** Saves so far: the driver tells a failure with no progress from one after a save. */
  saves: number;
  /** A restoration of a record Redis lost, in progress (lease-keeper.ts). */
  restoring: Promise<boolean> | undefined;
}

export type AuditInput = Omit<AuditEntry, 'at' | 'who'> & { who?: string };

export function createDriverContext(deps: DriverDeps, start: DriveStart): DriverContext {
  const { run } = start;
  return {
    ...deps,
    ...start,
    logger: deps.logger.child({ runId: run.id, runbook: run.runbook }),
    engineWho: `engine:${deps.ownerId}`,
    lockCtl: new AbortController(),
    stopCtl: new AbortController(),
    abortCtl: new AbortController(),
    abortedBy: undefined,
    dirty: false,
    wakers: new Set(),
    background: new Set(),
    saves: 0,
    restoring: undefined,
  };
}

const ignore = (): void => undefined;

/** Keeps a write the driver does not wait for, so that flushBackground can; a failure is logged. */
export function track(ctx: DriverContext, promise: Promise<unknown>, what: string): void {
  const tracked: Promise<void> = promise
    .then(ignore, (error: unknown) => ctx.logger.warn({ err: error }, `${what} failed`))
    .finally(() => ctx.background.delete(tracked));
  ctx.background.add(tracked);
}

export async function flushBackground(ctx: DriverContext): Promise<void> {
  while (ctx.background.size > 0) await Promise.all([...ctx.background]);
}

export function throwIfStopped(ctx: DriverContext): void {
  if (ctx.stopCtl.signal.aborted) throw ctx.stopCtl.signal.reason as Error;
}

/** Something changed: a wait in progress ends now, and the next one returns at once. */
export function wake(ctx: DriverContext): void {
  ctx.dirty = true;
  for (const waker of ctx.wakers) waker.abort();
}

/** Waits until woken, `ms` pass, or `signal` aborts; callers look at the store again afterwards. */
export async function waitForChange(ctx: DriverContext, ms: number, signal: AbortSignal): Promise<void> {
  if (ctx.dirty || signal.aborted) {
    ctx.dirty = false;
    return;
  }
  const waker = new AbortController();
  ctx.wakers.add(waker);
  try {
    await ctx.clock.sleep(Math.max(0, ms), AbortSignal.any([waker.signal, signal]));
  } catch {
    // Woken or aborted: either way the caller checks what changed.
  } finally {
    ctx.wakers.delete(waker);
  }
  ctx.dirty = false;
}

/** Aborts on any of the three signals: what interrupts a step that may be cut off. */
export function workSignal(ctx: DriverContext): AbortSignal {
  return AbortSignal.any([ctx.stopCtl.signal, ctx.abortCtl.signal, ctx.lockCtl.signal]);
}

export function markAborted(ctx: DriverContext, request: ControlRequest): void {
  if (ctx.abortCtl.signal.aborted) return;
  ctx.abortedBy = request;
  ctx.abortCtl.abort(new RunAbortedError(ctx.run.id, request.user));
}

/** Whether the run was aborted, here or (recorded in the store) by another replica. */
export async function abortRequested(ctx: DriverContext): Promise<boolean> {
  if (ctx.abortCtl.signal.aborted) return true;
  const request = await ctx.store.abortRequest(ctx.run.id);
  if (!request) return false;
  markAborted(ctx, request);
  return true;
}

export async function audit(ctx: DriverContext, entry: AuditInput): Promise<void> {
  await ctx.store.appendAudit(ctx.run.id, {
    at: ctx.clock.now(),
    who: entry.who ?? ctx.engineWho,
    ...withoutWho(entry),
  });
}

/**
 * Writes to the audit stream without waiting for the reply: entries on one connection keep their order,
 * the driver waits for them before the run ends, and a failure is logged (the next save would fail too).
 */
export function auditSoon(ctx: DriverContext, entry: AuditInput): void {
  track(ctx, audit(ctx, entry), 'writing to the audit stream');
}

function withoutWho<T extends { who?: string }>(entry: T): Omit<T, 'who'> {
  const { who: _who, ...rest } = entry;
  return rest;
}
