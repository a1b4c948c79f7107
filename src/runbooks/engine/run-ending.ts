/**
 * How a driven run ends: succeeded, failed (undos of completed steps run in reverse, the first error
 * leads) or aborted (the step in progress is marked, then undos as for a failure); and finishing an ending
 * that a previous driver began but did not complete.
 *
 * A destructive step that failed (or was cut off) after it began acting may have done half its work: a key
 * written but not checked, an address added on one host only. Its own undo runs first, then those of the
 * completed steps in reverse (docs/runbooks.md §How to read this page). Undos are idempotent, so running one
 * over work that never happened, or again after a crash, does no harm.
 */
import { describeError } from '../../errors.js';
import { redactSecrets } from '../../infra/redact.js';
import type { StepRecord } from '../types.js';
import { type DriverContext, audit, flushBackground, markAborted, throwIfStopped } from './driver-context.js';
import { ensureLock, releaseOwnerLease, save } from './lease-keeper.js';
import { isFinished } from './run-store.js';
import { bounded, output, setStepStatus, stepContext, timeoutOf } from './step-context.js';

export async function finish(ctx: DriverContext, status: 'succeeded' | 'failed' | 'aborted'): Promise<void> {
  const { run, clock } = ctx;
  run.status = status;
  run.endedAt = clock.now();
  delete run.pauseReason;
  if (status === 'succeeded' && run.dryRun) {
    run.note =
      'dry run: the plan was recorded and only the read-only steps ran; nothing was changed and no lock was taken';
  }
  // The lock goes first, so that whoever sees the run finished can start the next one at once.
  const held = ctx.lease;
  ctx.lease = undefined;
  if (held) {
    await ctx.lock
      .release(held)
      .catch((error: unknown) => ctx.logger.warn({ err: error }, 'releasing the lock failed'));
  }
  await save(ctx);
  await audit(ctx, { what: 'run-finished', detail: run.error ? `${status}: ${run.error}` : status });
  ctx.emit(run, { type: 'run-finished', status, ...(run.error ? { error: run.error } : {}) });
  await releaseOwnerLease(ctx);
}

/** A destructive step that began acting and did not finish: its own undo runs before the others. */
function halfDone(step: StepRecord, def: DriverContext['steps'][number] | undefined): boolean {
  return (
    def?.destructive === true &&
    def.undo !== undefined &&
    (step.status === 'failed' || step.status === 'aborted') &&
    step.attempts > 0
  );
}

/**
 * Runs the undo of a half-done destructive step, then the undos of completed steps in reverse; returns
 * what failed, in order. The half-done step keeps its status (failed or aborted): that is what a driver
 * resuming an interrupted ending looks for.
 */
async function undoCompleted(ctx: DriverContext): Promise<string[]> {
  const { run } = ctx;
  if (run.dryRun) return [];
  const entries = run.steps.map((step, index) => ({ step, def: ctx.steps[index] }));
  const candidates = [
    ...entries.filter(({ step, def }) => halfDone(step, def)),
    ...entries.filter(({ step, def }) => step.status === 'succeeded' && def?.undo !== undefined).reverse(),
  ];
  if (candidates.length === 0) return [];
  const locked = await ensureLock(ctx);
  if (locked !== true) return [`undos not run: ${locked}`];
  const errors: string[] = [];
  for (const { step, def } of candidates) {
    throwIfStopped(ctx);
    if (!def?.undo) continue;
    await audit(ctx, { what: 'undo-started', stepId: step.id });
    output(ctx, step, 'undo: started');
    try {
      const signal = AbortSignal.any([ctx.stopCtl.signal, ctx.lockCtl.signal]);
      await bounded(ctx, step, 'undo', timeoutOf(ctx, def), signal, async (s) =>
        def.undo?.(stepContext(ctx, step, s, false)),
      );
      await flushBackground(ctx);
      if (step.status === 'succeeded') await setStepStatus(ctx, step, 'undone', 'undo finished');
      else {
        output(ctx, step, 'undo: finished (the step had failed part way)');
        await save(ctx);
        await audit(ctx, { what: 'undo-finished', stepId: step.id, detail: 'half-done step undone' });
      }
    } catch (error) {
      throwIfStopped(ctx);
      await flushBackground(ctx);
      const message = `undo of step ${step.id} (${step.title}) failed: ${redactSecrets(describeError(error))}`;
      errors.push(message);
      // A failed step keeps its own error first: the undo's failure is added to it.
      step.error = step.status === 'succeeded' ? message : `${step.error ?? ''}; ${message}`;
      output(ctx, step, message);
      await save(ctx);
      await audit(ctx, { what: 'undo-failed', stepId: step.id, detail: message });
    }
  }
  return errors;
}

export async function endAborted(ctx: DriverContext): Promise<void> {
  const { run, clock } = ctx;
  const by = ctx.abortedBy?.user ?? 'unknown';
  const current = run.steps.find((s) => s.id === run.currentStep);
  if (current && ['waiting-approval', 'approved', 'running'].includes(current.status)) {
    let closedByAbort = false;
    if (current.status === 'waiting-approval') {
      const result = await ctx.store.closeRound(run.id, current.id, current.approvalRound, {
        reason: `the run was aborted by ${by}`,
        at: clock.now(),
      });
      // Closed here (not by an Abort click, which is announced where it was recorded).
      closedByAbort = result.kind === 'closed';
    }
    delete current.approvalExpiresAt;
    current.error ??= `aborted by <@${by}>`;
    await setStepStatus(ctx, current, 'aborted', `aborted by ${by}`);
    if (closedByAbort) {
      // The request's buttons give way to who aborted and when, as after an Abort click.
      const approval = { user: by, decision: 'abort', at: ctx.abortedBy?.at ?? clock.now() } as const;
      ctx.emit(run, { type: 'approval-decided', stepId: current.id, approval, final: true });
    }
  }
  await audit(ctx, {
    what: 'run-aborting',
    who: by,
    detail: 'stopping before the next step; undoing completed steps',
  });
  const undoErrors = await undoCompleted(ctx);
  if (undoErrors.length > 0) run.error = undoErrors.join('; ');
  await finish(ctx, 'aborted');
}

export async function endFailed(ctx: DriverContext, step: StepRecord, error: unknown): Promise<void> {
  await endFailedWith(ctx, `step ${step.id} (${step.title}) failed: ${redactSecrets(describeError(error))}`);
}

async function endFailedWith(ctx: DriverContext, first: string): Promise<void> {
  // The first error leads; undo failures are added after it, never instead of it.
  ctx.run.error = first;
  const undoErrors = await undoCompleted(ctx);
  ctx.run.error = [first, ...undoErrors].join('; ');
  await finish(ctx, 'failed');
}

/**
 * The record may say the run was ending when this driver got it: its previous driver (or this one, before
 * an error) died between a step failing or being aborted and the run's end. Finish that ending; driving
 * on would run the failed or aborted step again. Returns whether the run is ending.
 */
export async function resumeEnding(ctx: DriverContext): Promise<boolean> {
  const { run } = ctx;
  if (isFinished(run.status)) {
    await finish(ctx, run.status as 'succeeded' | 'failed' | 'aborted');
    return true;
  }
  const failed = run.steps.find((s) => s.status === 'failed');
  if (failed) {
    await endFailedWith(
      ctx,
      run.error ?? `step ${failed.id} (${failed.title}) failed: ${failed.error ?? 'no error recorded'}`,
    );
    return true;
  }
  const aborted = run.steps.find((s) => s.status === 'aborted');
  if (aborted && !ctx.abortCtl.signal.aborted) {
    const by = aborted.approvals.find((a) => a.decision === 'abort') ??
      (await ctx.store.abortRequest(run.id)) ?? { user: 'unknown', at: ctx.clock.now() };
    markAborted(ctx, { user: by.user, at: by.at });
  }
  if (ctx.abortCtl.signal.aborted) {
    await endAborted(ctx);
    return true;
  }
  return false;
}
