/**
 * Drives one run from where its record stands to its end (DESIGN.md §3). The engine (engine.ts) starts a
 * driver for a new run, and for a run taken over from a process that died.
 *
 * The record is the checkpoint: it is saved (only while this process holds the run's owner lease) after
 * every state change, and events go to the observer after the save. Anything unexpected (Redis gone, a
 * bug) ends the driver without touching the record; its owner lease then lapses and recover() resumes
 * the run from the last checkpoint, here or in another replica.
 *
 * Three signals stop work in progress, and each means something different:
 * - stop: the engine is closing, or another process took the run over. Leave the record as it is.
 * - abort: a person aborted the run. Stop before the next step, run completed undos in reverse.
 * - lock: the run lock was lost. Pause with the reason; resume takes the lock again.
 */
import type { CellopsConfig } from '../../config/config.js';
import { CellopsError, describeError } from '../../errors.js';
import { redactSecrets } from '../../infra/redact.js';
import {
  LockBusyError,
  LockLostError,
  type LockHolder,
  type LockLease,
  type RunLock,
} from '../../locks/types.js';
import type { Clock } from '../../ports/clock.js';
import type { Logger } from '../../ports/logger.js';
import { boundedCall, formatMs } from './bounded-call.js';
import { RunAbortedError, RunHandedOverError, VerifyFailedError } from './engine-errors.js';
import {
  appendOutput,
  isStepDone,
  lockHolderOf,
  needsApproval,
  newStepRecord,
  planContext,
} from './run-record.js';
import {
  isFinished,
  type ApprovalRound,
  type AuditEntry,
  type ControlRequest,
  type RunStore,
} from './run-store.js';
import type {
  Fact,
  RunbookPorts,
  RunEvent,
  RunRecord,
  StepContext,
  StepDefinition,
  StepRecord,
  StepStatus,
} from '../types.js';

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

export interface RunDrive {
  readonly runId: string;
  /** Settles when the driver stops: the run ended, the engine closed, or something failed (logged). */
  readonly done: Promise<void>;
  /** Something changed in the store (a decision, an abort or resume request): look again now. */
  wake(): void;
  /** A person aborted the run: stop work in progress and end it. */
  abort(request: ControlRequest): void;
  /** Stop driving and leave the record for another process (`handOver`: release the owner lease). */
  stop(reason: string, handOver: boolean): void;
  setThread(thread: { channel: string; ts: string }): Promise<void>;
}

type StepOutcome = 'continue' | 'ended';
type ApprovalOutcome = 'approved' | 'paused' | 'aborted';

const ignore = (): void => undefined;

/** Driver errors in a row, with no save in between, after which it gives up and leaves the run to recover(). */
const MAX_FAILURES_WITHOUT_PROGRESS = 30;

export function driveRun(deps: DriverDeps, start: DriveStart): RunDrive {
  const { store, lock, ports, config, clock, ownerId, timings, emit } = deps;
  const run = start.run;
  const steps = start.steps;
  const params = start.params;
  const engineWho = `engine:${ownerId}`;
  const logger = deps.logger.child({ runId: run.id, runbook: run.runbook });

  let lease = start.lease;
  let lockCtl = new AbortController();
  const stopCtl = new AbortController();
  const abortCtl = new AbortController();
  let abortedBy: ControlRequest | undefined;
  let handOver = false;

  let dirty = false;
  const wakers = new Set<AbortController>();
  const background = new Set<Promise<void>>();

  // ---- plumbing -------------------------------------------------------------------------------

  const track = (promise: Promise<unknown>, what: string): void => {
    const tracked: Promise<void> = promise
      .then(ignore, (error: unknown) => logger.warn({ err: error }, `${what} failed`))
      .finally(() => background.delete(tracked));
    background.add(tracked);
  };
  const flushBackground = async (): Promise<void> => {
    while (background.size > 0) await Promise.all([...background]);
  };

  const throwIfStopped = (): void => {
    if (stopCtl.signal.aborted) throw stopCtl.signal.reason as Error;
  };

  let saves = 0;
  const save = async (): Promise<void> => {
    throwIfStopped();
    if (
      (await store.saveRun(run, { owner: ownerId })) ||
      ((await restoreLostState()) && (await store.saveRun(run, { owner: ownerId })))
    ) {
      saves += 1;
      return;
    }
    stopCtl.abort(new RunHandedOverError(run.id, 'its owner lease lapsed and another process may drive it'));
    throwIfStopped();
  };

  /**
   * Our owner lease is gone. Usually another process took the run over and this one must stop. But when
   * the record is gone too, nobody can: Redis lost its data (restarted without persistence, flushed),
   * and the only copy of the run is this process's memory. Then the run is taken back and written again,
   * and the lock counts as lost, so that the run pauses before its next step (a step in flight is
   * interrupted, as when the lock is lost) and says why; resume takes a new lock. Returns whether it did.
   */
  let restoring: Promise<boolean> | undefined;
  const restoreLostState = (): Promise<boolean> => {
    // The heartbeat and a save can notice at the same moment: one restoration serves both.
    restoring ??= restoreOnce().finally(() => {
      restoring = undefined;
    });
    return restoring;
  };
  const restoreOnce = async (): Promise<boolean> => {
    const [owner, stored] = await Promise.all([store.ownerOf(run.id), store.loadRun(run.id)]);
    if (owner !== undefined || stored !== undefined) return false;
    if (!(await store.acquireOwner(run.id, ownerId, timings.ownerLeaseMs))) return false;
    logger.error(
      {},
      'Redis lost the run record, its owner lease and lock (restarted without persistence?); recording the run again from memory and pausing it',
    );
    if (!run.dryRun && !lockCtl.signal.aborted) {
      lockCtl.abort(
        new LockLostError(
          run.lockKey,
          "Redis lost this run's record and lock (restarted without persistence, or flushed; its audit trail " +
            'before now is gone too) and the run was recorded again from the memory of the process driving it',
        ),
      );
    }
    auditSoon({ what: 'run-restored', detail: 'Redis had lost the run record; written again from memory' });
    wake();
    return true;
  };

  const audit = async (entry: Omit<AuditEntry, 'at' | 'who'> & { who?: string }): Promise<void> => {
    await store.appendAudit(run.id, { at: clock.now(), who: entry.who ?? engineWho, ...withoutWho(entry) });
  };

  /**
   * Writes to the audit stream without waiting for the reply: entries on one connection keep their order,
   * the driver waits for them before the run ends, and a failure is logged (the next save would fail too).
   */
  const auditSoon = (entry: Omit<AuditEntry, 'at' | 'who'> & { who?: string }): void => {
    track(audit(entry), 'writing to the audit stream');
  };

  /** Waits until woken, `ms` pass, or `signal` aborts; callers look at the store again afterwards. */
  const waitForChange = async (ms: number, signal: AbortSignal): Promise<void> => {
    if (dirty || signal.aborted) {
      dirty = false;
      return;
    }
    const waker = new AbortController();
    wakers.add(waker);
    try {
      await clock.sleep(Math.max(0, ms), AbortSignal.any([waker.signal, signal]));
    } catch {
      // Woken or aborted: either way the caller checks what changed.
    } finally {
      wakers.delete(waker);
    }
    dirty = false;
  };

  const workSignal = (): AbortSignal => AbortSignal.any([stopCtl.signal, abortCtl.signal, lockCtl.signal]);

  const abortRequested = async (): Promise<boolean> => {
    if (abortCtl.signal.aborted) return true;
    const request = await store.abortRequest(run.id);
    if (!request) return false;
    markAborted(request);
    return true;
  };

  const markAborted = (request: ControlRequest): void => {
    if (abortCtl.signal.aborted) return;
    abortedBy = request;
    abortCtl.abort(new RunAbortedError(run.id, request.user));
  };

  const holder = (): LockHolder => lockHolderOf(run, clock.now());

  /** Makes sure the run holds its lock, taking it again if needed; the reason when it cannot. */
  const ensureLock = async (): Promise<true | string> => {
    if (run.dryRun) return true;
    if (lease && !lockCtl.signal.aborted && (await lock.isHeld(lease))) return true;
    try {
      lease = await lock.acquire(run.lockKey, timings.lockTtlMs, holder());
    } catch (error) {
      if (error instanceof LockBusyError) return error.message;
      throw error;
    }
    lockCtl = new AbortController();
    run.fencingToken = lease.fencingToken;
    await audit({ what: 'lock-acquired', detail: `fencing token ${lease.fencingToken}` });
    return true;
  };

  /** The fencing check before every step. */
  const fenced = async (): Promise<boolean> => {
    if (run.dryRun) return true;
    if (!lease || lockCtl.signal.aborted) return false;
    return lock.isHeld(lease);
  };

  // ---- step context -----------------------------------------------------------------------------

  const output = (step: StepRecord, text: string): void => {
    const lines = appendOutput(step, text, timings.outputLines, timings.outputLineChars);
    for (const line of lines) {
      track(
        audit({ what: 'step-output', stepId: step.id, detail: line }),
        'writing step output to the audit stream',
      );
      emit(run, { type: 'step-output', stepId: step.id, line });
    }
  };

  const context = (step: StepRecord, signal: AbortSignal, resumed: boolean): StepContext<unknown> => ({
    params,
    config,
    ports,
    runId: run.id,
    signal,
    log: logger.child({ stepId: step.id }),
    fact: <T extends Fact>(key: string) => run.facts[key] as T | undefined,
    setFact: (key, value) => {
      run.facts[key] = value;
    },
    output: (line) => output(step, line),
    resumed,
    ...(lease && !run.dryRun ? { fencingToken: lease.fencingToken } : {}),
  });

  const bounded = <T>(
    step: StepRecord,
    what: string,
    timeoutMs: number,
    signal: AbortSignal,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> =>
    boundedCall(
      {
        clock,
        timeoutMs,
        signal,
        graceMs: timings.graceMs,
        what: `${what} of step ${step.id} (${step.title}) in run ${run.id}`,
        logger,
      },
      fn,
    );

  const timeoutOf = (def: StepDefinition<unknown>): number => def.timeoutMs ?? timings.stepTimeoutMs;

  /** Re-renders the step's description with the facts known now: what approvers read must be current. */
  const refreshDescription = (index: number): StepRecord => {
    const def = steps[index];
    const current = run.steps[index];
    if (!def || !current) throw new Error(`run ${run.id} has no step at ${index}`);
    const fresh = newStepRecord(def, planContext(params, config, run.facts));
    const updated: StepRecord = { ...current, description: fresh.description };
    run.steps[index] = updated;
    return updated;
  };

  const setStepStatus = async (step: StepRecord, status: StepStatus, detail?: string): Promise<void> => {
    step.status = status;
    step.endedAt = clock.now();
    await save();
    auditSoon({ what: 'step-finished', stepId: step.id, detail: detail ? `${status}: ${detail}` : status });
    emit(run, { type: 'step-finished', stepId: step.id, status });
  };

  // ---- the run's end ------------------------------------------------------------------------------

  const finish = async (status: 'succeeded' | 'failed' | 'aborted'): Promise<void> => {
    run.status = status;
    run.endedAt = clock.now();
    delete run.pauseReason;
    if (status === 'succeeded' && run.dryRun) {
      run.note =
        'dry run: the plan was recorded and only the read-only steps ran; nothing was changed and no lock was taken';
    }
    // The lock goes first, so that whoever sees the run finished can start the next one at once.
    const held = lease;
    lease = undefined;
    if (held) {
      await lock
        .release(held)
        .catch((error: unknown) => logger.warn({ err: error }, 'releasing the lock failed'));
    }
    await save();
    await audit({ what: 'run-finished', detail: run.error ? `${status}: ${run.error}` : status });
    emit(run, { type: 'run-finished', status, ...(run.error ? { error: run.error } : {}) });
    await store
      .releaseOwner(run.id, ownerId)
      .catch((error: unknown) => logger.warn({ err: error }, 'releasing the owner lease failed'));
  };

  /** Runs the undos of completed steps in reverse; returns what failed, in order. */
  const undoCompleted = async (): Promise<string[]> => {
    if (run.dryRun) return [];
    const candidates = run.steps
      .map((step, index) => ({ step, def: steps[index] }))
      .filter(({ step, def }) => step.status === 'succeeded' && def?.undo !== undefined)
      .reverse();
    if (candidates.length === 0) return [];
    const locked = await ensureLock();
    if (locked !== true) return [`undos not run: ${locked}`];
    const errors: string[] = [];
    for (const { step, def } of candidates) {
      throwIfStopped();
      if (!def?.undo) continue;
      await audit({ what: 'undo-started', stepId: step.id });
      output(step, 'undo: started');
      try {
        const signal = AbortSignal.any([stopCtl.signal, lockCtl.signal]);
        await bounded(step, 'undo', timeoutOf(def), signal, async (s) => def.undo?.(context(step, s, false)));
        await flushBackground();
        await setStepStatus(step, 'undone', 'undo finished');
      } catch (error) {
        throwIfStopped();
        await flushBackground();
        const message = `undo of step ${step.id} (${step.title}) failed: ${redactSecrets(describeError(error))}`;
        errors.push(message);
        step.error = message;
        output(step, message);
        await save();
        await audit({ what: 'undo-failed', stepId: step.id, detail: message });
      }
    }
    return errors;
  };

  const endAborted = async (): Promise<void> => {
    const by = abortedBy?.user ?? 'unknown';
    const current = run.steps.find((s) => s.id === run.currentStep);
    if (current && ['waiting-approval', 'approved', 'running'].includes(current.status)) {
      let closedByAbort = false;
      if (current.status === 'waiting-approval') {
        const result = await store.closeRound(run.id, current.id, current.approvalRound, {
          reason: `the run was aborted by ${by}`,
          at: clock.now(),
        });
        // Closed here (not by an Abort click, which is announced where it was recorded).
        closedByAbort = result.kind === 'closed';
      }
      delete current.approvalExpiresAt;
      current.error ??= `aborted by <@${by}>`;
      await setStepStatus(current, 'aborted', `aborted by ${by}`);
      if (closedByAbort) {
        // The request's buttons give way to who aborted and when, as after an Abort click.
        const approval = { user: by, decision: 'abort', at: abortedBy?.at ?? clock.now() } as const;
        emit(run, { type: 'approval-decided', stepId: current.id, approval, final: true });
      }
    }
    await audit({
      what: 'run-aborting',
      who: by,
      detail: 'stopping before the next step; undoing completed steps',
    });
    const undoErrors = await undoCompleted();
    if (undoErrors.length > 0) run.error = undoErrors.join('; ');
    await finish('aborted');
  };

  const endFailed = async (step: StepRecord, error: unknown): Promise<void> => {
    await endFailedWith(`step ${step.id} (${step.title}) failed: ${redactSecrets(describeError(error))}`);
  };

  const endFailedWith = async (first: string): Promise<void> => {
    // The first error leads; undo failures are added after it, never instead of it.
    run.error = first;
    const undoErrors = await undoCompleted();
    run.error = [first, ...undoErrors].join('; ');
    await finish('failed');
  };

  // ---- pauses -------------------------------------------------------------------------------------

  const pause = async (reason: string, what: string): Promise<void> => {
    // Whatever the run was waiting for is asked for again on resume, in a new round: the buttons of the
    // round open now must not approve a step of a run that paused (its lock, or Redis, was lost meanwhile).
    const closed: StepRecord[] = [];
    for (const step of run.steps) {
      if (step.status === 'waiting-approval') {
        const result = await store.closeRound(run.id, step.id, step.approvalRound, {
          reason: `the run paused (${what})`,
          at: clock.now(),
        });
        if (result.kind === 'closed') closed.push(step);
        delete step.approvalExpiresAt;
      }
      if (step.status === 'waiting-approval' || step.status === 'approved') step.status = 'pending';
    }
    run.status = 'paused';
    run.pauseReason = reason;
    await save();
    await audit({ what: 'run-paused', detail: `${what}: ${reason}` });
    // So that the request's buttons are replaced: nothing can be decided on it any more.
    for (const step of closed) {
      emit(run, { type: 'approval-closed', stepId: step.id, round: step.approvalRound, reason });
    }
    emit(run, { type: 'run-paused', reason });
  };

  const pauseForLock = async (): Promise<void> => {
    // The fencing check failing may be the first sign that Redis lost everything: say so if it did.
    if (!lockCtl.signal.aborted) await restoreLostState();
    const reason: unknown = lockCtl.signal.aborted
      ? lockCtl.signal.reason
      : new LockLostError(run.lockKey, 'the fencing check found another owner, or the lease lapsed');
    lease = undefined;
    await pause(`${describeError(reason)}. Resume the run once the lock is free, or abort it.`, 'lock-lost');
  };

  /** Waits while paused for a resume or an abort. */
  const pausedWait = async (): Promise<'resumed' | 'ended'> => {
    for (;;) {
      throwIfStopped();
      // Lost while paused (for an expired approval, say): the record says so, and resume takes it again.
      if (lease && lockCtl.signal.aborted) await pauseForLock();
      if (await abortRequested()) {
        await endAborted();
        return 'ended';
      }
      const resume = await store.takeResume(run.id);
      if (resume) {
        const locked = await ensureLock();
        if (locked === true) {
          run.status = 'running';
          delete run.pauseReason;
          await save();
          await audit({ what: 'run-resumed', who: resume.user });
          emit(run, { type: 'run-resumed', user: resume.user });
          return 'resumed';
        }
        await pause(`resume by <@${resume.user}> could not take the lock: ${locked}`, 'resume-refused');
      }
      await waitForChange(timings.pollMs, AbortSignal.any([stopCtl.signal, abortCtl.signal]));
    }
  };

  // ---- approvals ----------------------------------------------------------------------------------

  const settle = async (step: StepRecord, round: ApprovalRound): Promise<ApprovalOutcome> => {
    step.approvals = [...round.decisions];
    const final = round.final;
    if (final?.decision === 'abort') {
      markAborted({ user: final.user, at: final.at });
      return 'aborted';
    }
    step.status = 'approved';
    delete step.approvalExpiresAt;
    run.status = 'running';
    await save();
    await audit({
      what: 'approval-granted',
      stepId: step.id,
      detail: `round ${step.approvalRound} by ${step.approvals.map((a) => a.user).join(', ')}`,
    });
    return 'approved';
  };

  const awaitApproval = async (index: number): Promise<ApprovalOutcome> => {
    let step = run.steps[index];
    if (!step) throw new Error(`run ${run.id} has no step at ${index}`);
    const continuing =
      step.status === 'waiting-approval' && step.approvalRound > 0 && step.approvalExpiresAt !== undefined;
    if (!continuing) {
      if (step.approvalRound > 0) {
        // Buttons of an earlier round (before a crash or pause) must not approve this one.
        await store.closeRound(run.id, step.id, step.approvalRound, {
          reason: 'a new approval round was requested',
          at: clock.now(),
        });
      }
      step = refreshDescription(index);
      const expiresAt = clock.now() + config.slack.approvalTimeoutMs;
      step.approvalRound += 1;
      step.approvals = [];
      step.approvalsRequired = config.slack.approvals;
      step.approvalExpiresAt = expiresAt;
      step.status = 'waiting-approval';
      run.status = 'waiting-approval';
      await save();
      await audit({
        what: 'approval-requested',
        stepId: step.id,
        detail: `round ${step.approvalRound}; ${config.slack.approvals} approval(s) needed; expires at ${new Date(expiresAt).toISOString()}`,
      });
      emit(run, { type: 'approval-requested', stepId: step.id, expiresAt });
    } else if (run.status !== 'waiting-approval') {
      run.status = 'waiting-approval';
      await save();
    }
    const round = step.approvalRound;
    const expiresAt = step.approvalExpiresAt ?? clock.now();
    // An approval settles the round only when it was given before the expiry: one recorded later (by a
    // replica whose clock is behind, or while no driver was alive to close the round) does not count.
    const settles = (state: ApprovalRound): boolean =>
      state.final !== undefined && (state.final.decision === 'abort' || state.final.at < expiresAt);

    for (;;) {
      throwIfStopped();
      if (await abortRequested()) return 'aborted';
      if (!run.dryRun && (!lease || lockCtl.signal.aborted)) {
        // pause() closes the round and announces it.
        await pauseForLock();
        return 'paused';
      }
      const state = await store.readRound(run.id, step.id, round);
      if (settles(state)) return settle(step, state);
      if (state.decisions.length !== step.approvals.length) {
        step.approvals = [...state.decisions];
        await save();
      }
      if (clock.now() >= expiresAt || state.final !== undefined) {
        const closed = await store.closeRound(run.id, step.id, round, { reason: 'expired', at: clock.now() });
        if (closed.kind === 'decided' && settles(closed.round)) return settle(step, closed.round);
        step.status = 'pending';
        delete step.approvalExpiresAt;
        run.status = 'paused';
        run.pauseReason =
          `the approval of step ${step.id} (${step.title}) expired after ${formatMs(config.slack.approvalTimeoutMs)} ` +
          'without a decision; resume the run to ask again, or abort it';
        await save();
        await audit({ what: 'approval-expired', stepId: step.id, detail: `round ${round}` });
        emit(run, { type: 'approval-expired', stepId: step.id });
        emit(run, { type: 'run-paused', reason: run.pauseReason });
        return 'paused';
      }
      await waitForChange(Math.min(timings.pollMs, expiresAt - clock.now()), workSignal());
    }
  };

  // ---- steps --------------------------------------------------------------------------------------

  const isRetryable = (error: unknown): boolean => !(error instanceof CellopsError) || error.retryable;

  const backoffMs = (def: StepDefinition<unknown>, attempt: number): number => {
    const retry = def.retry;
    if (!retry) return 0;
    const wait = retry.backoffMs * 2 ** (attempt - 1);
    return Math.min(wait, retry.maxBackoffMs ?? Number.POSITIVE_INFINITY);
  };

  const runAttempts = async (
    def: StepDefinition<unknown>,
    step: StepRecord,
    resumed: boolean,
    signal: AbortSignal,
  ): Promise<void> => {
    const total = Math.max(1, def.retry?.attempts ?? 1);
    for (let attempt = 1; ; attempt += 1) {
      step.attempts += 1;
      try {
        await bounded(step, 'run', timeoutOf(def), signal, (s) =>
          def.run(context(step, s, resumed || attempt > 1)),
        );
        return;
      } catch (error) {
        if (signal.aborted || attempt >= total || !isRetryable(error)) throw error;
        // A destructive step is tried again only when its post-condition can tell whether the failed
        // attempt acted after all; if it did, the step is done, not repeated.
        if (def.destructive) {
          if (!def.verify) throw error;
          const acted = await bounded(step, 'verify', timeoutOf(def), signal, async (s) =>
            def.verify ? def.verify(context(step, s, true)) : false,
          ).catch(() => false);
          if (acted) return;
        }
        const wait = backoffMs(def, attempt);
        output(
          step,
          `attempt ${attempt} of ${total} failed: ${describeError(error)}; trying again in ${formatMs(wait)}`,
        );
        await flushBackground();
        await save();
        await clock.sleep(wait, signal);
      }
    }
  };

  const runStep = async (index: number, resumed: boolean): Promise<StepOutcome> => {
    const def = steps[index];
    if (!def) throw new Error(`run ${run.id} has no step at ${index}`);
    const step = refreshDescription(index);
    step.status = 'running';
    step.startedAt = clock.now();
    delete step.endedAt;
    delete step.error;
    run.status = 'running';
    await save();
    auditSoon({
      what: 'step-started',
      stepId: step.id,
      detail: `attempt ${step.attempts + 1}${resumed ? ', again after an interruption' : ''}`,
    });
    emit(run, { type: 'step-started', stepId: step.id });

    // An abort stops the run before the next step (DESIGN §3). A destructive step is let finish, bounded
    // by its timeout, because cutting it off half way (a key half swapped, an IP on both hosts) is worse
    // than completing it and undoing it; a read-only wait is simply interrupted. A lost lock or a
    // hand-over interrupts any step: someone else may be acting on the cell.
    const signal = def.destructive ? AbortSignal.any([stopCtl.signal, lockCtl.signal]) : workSignal();
    try {
      await runAttempts(def, step, resumed, signal);
      if (def.verify) {
        const held = await bounded(step, 'verify', timeoutOf(def), signal, async (s) =>
          def.verify ? def.verify(context(step, s, resumed)) : true,
        );
        if (!held) throw new VerifyFailedError(run.id, step.id, step.title);
      }
    } catch (error) {
      await flushBackground();
      throwIfStopped();
      if (abortCtl.signal.aborted) {
        await endAborted();
        return 'ended';
      }
      if (lockCtl.signal.aborted) {
        // The step stays `running`: on resume its verify decides, as after a crash.
        output(step, `interrupted: ${describeError(lockCtl.signal.reason)}`);
        await pauseForLock();
        return 'continue';
      }
      step.error = redactSecrets(describeError(error));
      await setStepStatus(step, 'failed', step.error);
      await endFailed(step, error);
      return 'ended';
    }
    await flushBackground();
    await setStepStatus(step, 'succeeded');
    return 'continue';
  };

  /** True when the step's post-condition already holds; a failing check counts as "not done". */
  const alreadyDone = async (def: StepDefinition<unknown>, step: StepRecord): Promise<boolean> => {
    if (!def.verify) return false;
    try {
      return await bounded(step, 'verify', timeoutOf(def), workSignal(), async (s) =>
        def.verify ? def.verify(context(step, s, true)) : false,
      );
    } catch (error) {
      throwIfStopped();
      output(step, `check after the interruption failed: ${describeError(error)}`);
      return false;
    }
  };

  const driveStep = async (index: number): Promise<StepOutcome> => {
    const def = steps[index];
    let step = run.steps[index];
    if (!def || !step) throw new Error(`run ${run.id} has no step at ${index}`);
    run.currentStep = step.id;
    let resumed = false;

    if (step.status === 'running') {
      // In flight when its driver died or the lock was lost: it may or may not have acted.
      if (await alreadyDone(def, step)) {
        output(step, 'its check holds after the interruption: done, not run again');
        await flushBackground();
        await setStepStatus(step, 'succeeded', 'verify held after an interruption; not run again');
        return 'continue';
      }
      if (abortCtl.signal.aborted || lockCtl.signal.aborted) return 'continue';
      resumed = true;
      // A destructive step is never re-run blind: it needs a fresh approval.
      step.status = needsApproval(def) && !run.dryRun ? 'pending' : 'approved';
    }

    if (step.status === 'pending') {
      step = refreshDescription(index);
      if (run.dryRun && (def.destructive || !def.readOnly)) {
        output(step, 'dry run: not run');
        await flushBackground();
        await setStepStatus(step, 'skipped', 'dry run');
        return 'continue';
      }
      if (def.when) {
        const current = step;
        let applies: boolean;
        try {
          applies = await bounded(step, 'when', timeoutOf(def), workSignal(), async (s) =>
            def.when ? def.when(context(current, s, false)) : true,
          );
        } catch (error) {
          throwIfStopped();
          if (abortCtl.signal.aborted || lockCtl.signal.aborted) return 'continue';
          step.error = redactSecrets(describeError(error));
          await setStepStatus(step, 'failed', step.error);
          await endFailed(step, error);
          return 'ended';
        }
        if (!applies) {
          await setStepStatus(step, 'skipped', 'not needed');
          return 'continue';
        }
      }
    }

    if (needsApproval(def) && !run.dryRun && step.status !== 'approved') {
      const outcome = await awaitApproval(index);
      if (outcome === 'aborted') {
        await endAborted();
        return 'ended';
      }
      if (outcome === 'paused') return 'continue';
      // The loop's checks ran before a wait that can last the whole approval timeout: the lock may have
      // gone between two renewals, or another replica may have recorded an abort. Check again, right
      // before the step acts.
      const [aborting, held] = await Promise.all([abortRequested(), fenced()]);
      if (aborting) {
        await endAborted();
        return 'ended';
      }
      if (!held) {
        // The approval was for a run that held its lock; after the pause it is asked for again.
        const approved = run.steps[index];
        if (approved) approved.status = 'pending';
        await pauseForLock();
        return 'continue';
      }
    }
    return runStep(index, resumed);
  };

  /**
   * The record may say the run was ending when this driver got it: its previous driver (or this one, before
   * an error) died between a step failing or being aborted and the run's end. Finish that ending; driving
   * on would run the failed or aborted step again. Returns whether the run is ending.
   */
  const resumeEnding = async (): Promise<boolean> => {
    if (isFinished(run.status)) {
      await finish(run.status as 'succeeded' | 'failed' | 'aborted');
      return true;
    }
    const failed = run.steps.find((s) => s.status === 'failed');
    if (failed) {
      await endFailedWith(
        run.error ?? `step ${failed.id} (${failed.title}) failed: ${failed.error ?? 'no error recorded'}`,
      );
      return true;
    }
    const aborted = run.steps.find((s) => s.status === 'aborted');
    if (aborted && !abortCtl.signal.aborted) {
      const by = aborted.approvals.find((a) => a.decision === 'abort') ??
        (await store.abortRequest(run.id)) ?? { user: 'unknown', at: clock.now() };
      markAborted({ user: by.user, at: by.at });
    }
    if (abortCtl.signal.aborted) {
      await endAborted();
      return true;
    }
    return false;
  };

  const loop = async (): Promise<void> => {
    if (await resumeEnding()) return;
    for (;;) {
      throwIfStopped();
      if (run.status === 'paused') {
        if ((await pausedWait()) === 'ended') return;
        continue;
      }
      // Both checks go to Redis together: one round trip before every step.
      const [aborting, held] = await Promise.all([abortRequested(), fenced()]);
      if (aborting) {
        await endAborted();
        return;
      }
      const index = run.steps.findIndex((s) => !isStepDone(s.status));
      if (index < 0) {
        await finish('succeeded');
        return;
      }
      if (!held) {
        await pauseForLock();
        continue;
      }
      if ((await driveStep(index)) === 'ended') return;
    }
  };

  // ---- keeping the leases -------------------------------------------------------------------------

  const heartbeat = async (signal: AbortSignal): Promise<void> => {
    const every = Math.max(1, Math.floor(Math.min(timings.lockTtlMs, timings.ownerLeaseMs) / 3));
    let ownerExpiresAt = clock.now() + timings.ownerLeaseMs;
    for (;;) {
      try {
        await clock.sleep(every, signal);
      } catch {
        return;
      }
      try {
        if (!(await store.renewOwner(run.id, ownerId, timings.ownerLeaseMs)) && !(await restoreLostState())) {
          stopCtl.abort(
            new RunHandedOverError(run.id, 'its owner lease lapsed and another process may drive it'),
          );
          return;
        }
        ownerExpiresAt = clock.now() + timings.ownerLeaseMs;
      } catch (error) {
        if (clock.now() >= ownerExpiresAt) {
          stopCtl.abort(
            new RunHandedOverError(run.id, `its owner lease could not be renewed: ${describeError(error)}`),
          );
          return;
        }
        logger.warn({ err: error }, 'renewing the owner lease failed; trying again');
      }
      const current = lease;
      if (current && !lockCtl.signal.aborted) {
        try {
          const extended = await lock.extend(current, timings.lockTtlMs);
          if (lease === current) lease = extended;
        } catch (error) {
          if (error instanceof LockLostError) lockCtl.abort(error);
          else if (clock.now() >= current.expiresAt) {
            lockCtl.abort(
              new LockLostError(run.lockKey, `could not renew it: ${describeError(error)}`, error),
            );
          } else logger.warn({ err: error }, 'renewing the run lock failed; trying again');
          wake();
        }
      }
      // The poll fallback for a remote abort while a step runs (notifications are the fast path).
      try {
        if (!abortCtl.signal.aborted && (await abortRequested())) wake();
      } catch (error) {
        logger.warn({ err: error }, 'reading the abort request failed');
      }
    }
  };

  const wake = (): void => {
    dirty = true;
    for (const waker of wakers) waker.abort();
  };

  /**
   * Redis out for a moment (a restart, a failover) fails whatever the driver was doing. Giving up then
   * would leave the run to recover() once the owner lease lapses, and to nobody if Redis came back empty.
   * The state in memory is ahead of the record, so the loop starts again from it: every step is resumed by
   * its status as after a crash (an interrupted step by its verify, or a fresh approval). The heartbeat
   * still stops the driver once the owner lease may have lapsed; errors with no save in between stop it
   * after a while too, so that a bug does not spin.
   */
  const loopThroughErrors = async (): Promise<void> => {
    let failures = 0;
    let savesAtFailure = -1;
    for (;;) {
      try {
        await loop();
        return;
      } catch (error) {
        if (stopCtl.signal.aborted) throw error;
        failures = saves === savesAtFailure ? failures + 1 : 1;
        savesAtFailure = saves;
        if (failures > MAX_FAILURES_WITHOUT_PROGRESS) throw error;
        logger.warn(
          { err: error, failures },
          'driving the run failed (is Redis reachable?); trying again from the state in memory',
        );
        await clock.sleep(timings.pollMs, stopCtl.signal);
      }
    }
  };

  const main = async (): Promise<void> => {
    const beat = new AbortController();
    const beating = heartbeat(AbortSignal.any([beat.signal, stopCtl.signal]));
    try {
      await loopThroughErrors();
    } catch (error) {
      if (stopCtl.signal.aborted) {
        logger.info({ reason: describeError(stopCtl.signal.reason) }, 'stopped driving the run');
      } else {
        logger.error(
          { err: error },
          'driving the run failed; its record stays as last saved and recover() resumes it once the owner lease lapses',
        );
      }
    } finally {
      beat.abort();
      await beating;
      await flushBackground();
      if (stopCtl.signal.aborted && handOver) {
        await store
          .releaseOwner(run.id, ownerId)
          .catch((error: unknown) => logger.warn({ err: error }, 'releasing the owner lease failed'));
      }
    }
  };

  // An approval recorded by an earlier driver (one that died between the approval and the step's start)
  // was given for that moment, which may be hours ago: a destructive step is asked for again.
  for (const step of run.steps) if (step.status === 'approved') step.status = 'pending';

  const done = main();

  return {
    runId: run.id,
    done,
    wake,
    abort: (request) => {
      markAborted(request);
      wake();
    },
    stop: (reason, release) => {
      handOver = release;
      stopCtl.abort(new RunHandedOverError(run.id, reason));
    },
    setThread: async (thread) => {
      run.thread = thread;
      await save();
      if (lease) await lock.setThread(lease, thread);
    },
  };
}

function withoutWho<T extends { who?: string }>(entry: T): Omit<T, 'who'> {
  const { who: _who, ...rest } = entry;
  return rest;
}
