/**
 * Pausing a driven run (its lock was lost, a resume could not take it back) and waiting while paused for
 * a person to resume or abort it.
 */
import { describeError } from '../../errors.js';
import { LockLostError } from '../../locks/types.js';
import type { StepRecord } from '../types.js';
import {
  type DriverContext,
  abortRequested,
  audit,
  throwIfStopped,
  waitForChange,
} from './driver-context.js';
import { ensureLock, restoreLostState, save } from './lease-keeper.js';
import { endAborted } from './run-ending.js';

export async function pause(ctx: DriverContext, reason: string, what: string): Promise<void> {
  const { run, clock } = ctx;
  // Whatever the run was waiting for is asked for again on resume, in a new round: the buttons of the
  // round open now must not approve a step of a run that paused (its lock, or Redis, was lost meanwhile).
  const closed: StepRecord[] = [];
  for (const step of run.steps) {
    if (step.status === 'waiting-approval') {
      const result = await ctx.store.closeRound(run.id, step.id, step.approvalRound, {
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
  await save(ctx);
  await audit(ctx, { what: 'run-paused', detail: `${what}: ${reason}` });
  // So that the request's buttons are replaced: nothing can be decided on it any more.
  for (const step of closed) {
    ctx.emit(run, { type: 'approval-closed', stepId: step.id, round: step.approvalRound, reason });
  }
  ctx.emit(run, { type: 'run-paused', reason });
}

export async function pauseForLock(ctx: DriverContext): Promise<void> {
  // The fencing check failing may be the first sign that Redis lost everything: say so if it did.
  if (!ctx.lockCtl.signal.aborted) await restoreLostState(ctx);
  const reason: unknown = ctx.lockCtl.signal.aborted
    ? ctx.lockCtl.signal.reason
    : new LockLostError(ctx.run.lockKey, 'the fencing check found another owner, or the lease lapsed');
  ctx.lease = undefined;
  await pause(
    ctx,
    `${describeError(reason)}. Resume the run once the lock is free, or abort it.`,
    'lock-lost',
  );
}

/** Waits while paused for a resume or an abort. */
export async function pausedWait(ctx: DriverContext): Promise<'resumed' | 'ended'> {
  const { run } = ctx;
  for (;;) {
    throwIfStopped(ctx);
    // Lost while paused (for an expired approval, say): the record says so, and resume takes it again.
    if (ctx.lease && ctx.lockCtl.signal.aborted) await pauseForLock(ctx);
    if (await abortRequested(ctx)) {
      await endAborted(ctx);
      return 'ended';
    }
    const resume = await ctx.store.takeResume(run.id);
    if (resume) {
      const locked = await ensureLock(ctx);
      if (locked === true) {
        run.status = 'running';
        delete run.pauseReason;
        await save(ctx);
        await audit(ctx, { what: 'run-resumed', who: resume.user });
        ctx.emit(run, { type: 'run-resumed', user: resume.user });
        return 'resumed';
      }
      await pause(ctx, `resume by <@${resume.user}> could not take the lock: ${locked}`, 'resume-refused');
    }
    await waitForChange(ctx, ctx.timings.pollMs, AbortSignal.any([ctx.stopCtl.signal, ctx.abortCtl.signal]));
  }
}
