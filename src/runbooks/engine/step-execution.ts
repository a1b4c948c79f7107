/**
 * Driving one step: deciding what an interrupted step needs (its verify, or a fresh approval), skipping
 * what does not apply, the approval, then the fencing and abort checks right before it acts, its run with
 * retries, and its verify.
 *
 * An abort stops the run before the next step (README §The life of a run). A destructive step is let finish,
 * bounded by its timeout, because cutting it off half way (a key half swapped, an IP on both hosts) is worse
 * than completing it and undoing it; a read-only wait is simply interrupted. A lost lock or a hand-over
 * interrupts any step: someone else may be acting on the cell.
 */
import { CellopsError, describeError } from '../../errors.js';
import { redactSecrets } from '../../infra/redact.js';
import type { StepDefinition, StepRecord } from '../types.js';
import { awaitApproval } from './approval-wait.js';
import { formatMs } from './bounded-call.js';
import {
  type DriverContext,
  abortRequested,
  auditSoon,
  flushBackground,
  throwIfStopped,
  workSignal,
} from './driver-context.js';
import { VerifyFailedError } from './engine-errors.js';
import { fenced, save } from './lease-keeper.js';
import { endAborted, endFailed } from './run-ending.js';
import { pauseForLock } from './run-pause.js';
import { needsApproval } from './run-record.js';
import {
  bounded,
  output,
  refreshDescription,
  setStepStatus,
  stepContext,
  timeoutOf,
} from './step-context.js';

export type StepOutcome = 'continue' | 'ended';

const isRetryable = (error: unknown): boolean => !(error instanceof CellopsError) || error.retryable;

function backoffMs(def: StepDefinition<unknown>, attempt: number): number {
  const retry = def.retry;
  if (!retry) return 0;
  const wait = retry.backoffMs * 2 ** (attempt - 1);
  return Math.min(wait, retry.maxBackoffMs ?? Number.POSITIVE_INFINITY);
}

async function runAttempts(
  ctx: DriverContext,
  def: StepDefinition<unknown>,
  step: StepRecord,
  resumed: boolean,
  signal: AbortSignal,
): Promise<void> {
  const total = Math.max(1, def.retry?.attempts ?? 1);
  for (let attempt = 1; ; attempt += 1) {
    step.attempts += 1;
    try {
      await bounded(ctx, step, 'run', timeoutOf(ctx, def), signal, (s) =>
        def.run(stepContext(ctx, step, s, resumed || attempt > 1)),
      );
      return;
    } catch (error) {
      if (signal.aborted || attempt >= total || !isRetryable(error)) throw error;
      // A destructive step is tried again only when its post-condition can tell whether the failed
      // attempt acted after all; if it did, the step is done, not repeated.
      if (def.destructive) {
        if (!def.verify) throw error;
        const acted = await bounded(ctx, step, 'verify', timeoutOf(ctx, def), signal, async (s) =>
          def.verify ? def.verify(stepContext(ctx, step, s, true)) : false,
        ).catch(() => false);
        if (acted) return;
      }
      const wait = backoffMs(def, attempt);
      output(
        ctx,
        step,
        `attempt ${attempt} of ${total} failed: ${describeError(error)}; trying again in ${formatMs(wait)}`,
      );
      await flushBackground(ctx);
      await save(ctx);
      await ctx.clock.sleep(wait, signal);
    }
  }
}

async function runStep(ctx: DriverContext, index: number, resumed: boolean): Promise<StepOutcome> {
  const { run, clock } = ctx;
  const def = ctx.steps[index];
  if (!def) throw new Error(`run ${run.id} has no step at ${index}`);
  const step = refreshDescription(ctx, index);
  step.status = 'running';
  step.startedAt = clock.now();
  delete step.endedAt;
  delete step.error;
  run.status = 'running';
  await save(ctx);
  auditSoon(ctx, {
    what: 'step-started',
    stepId: step.id,
    detail: `attempt ${step.attempts + 1}${resumed ? ', again after an interruption' : ''}`,
  });
  ctx.emit(run, { type: 'step-started', stepId: step.id });

  // Only a stop or a lost lock interrupts a destructive step; anything interrupts the others (see above).
  const signal = def.destructive
    ? AbortSignal.any([ctx.stopCtl.signal, ctx.lockCtl.signal])
    : workSignal(ctx);
  try {
    await runAttempts(ctx, def, step, resumed, signal);
    if (def.verify) {
      const held = await bounded(ctx, step, 'verify', timeoutOf(ctx, def), signal, async (s) =>
        def.verify ? def.verify(stepContext(ctx, step, s, resumed)) : true,
      );
      if (!held) throw new VerifyFailedError(run.id, step.id, step.title);
    }
  } catch (error) {
    await flushBackground(ctx);
    throwIfStopped(ctx);
    if (ctx.abortCtl.signal.aborted) {
      await endAborted(ctx);
      return 'ended';
    }
    if (ctx.lockCtl.signal.aborted) {
      // The step stays `running`: on resume its verify decides, as after a crash.
      output(ctx, step, `interrupted: ${describeError(ctx.lockCtl.signal.reason)}`);
      await pauseForLock(ctx);
      return 'continue';
    }
    step.error = redactSecrets(describeError(error));
    await setStepStatus(ctx, step, 'failed', step.error);
    await endFailed(ctx, step, error);
    return 'ended';
  }
  await flushBackground(ctx);
  await setStepStatus(ctx, step, 'succeeded');
  return 'continue';
}

/** True when the step's post-condition already holds; a failing check counts as "not done". */
async function alreadyDone(
  ctx: DriverContext,
  def: StepDefinition<unknown>,
  step: StepRecord,
): Promise<boolean> {
  if (!def.verify) return false;
  try {
    return await bounded(ctx, step, 'verify', timeoutOf(ctx, def), workSignal(ctx), async (s) =>
      def.verify ? def.verify(stepContext(ctx, step, s, true)) : false,
    );
  } catch (error) {
    throwIfStopped(ctx);
    output(ctx, step, `check after the interruption failed: ${describeError(error)}`);
    return false;
  }
}

/**
 * A step that was in flight when its driver died or the lock was lost may or may not have acted: done
 * when its verify holds, else run again, after a fresh approval if it needs one. `undefined` when it is
 * to be run (the caller goes on), else the loop's outcome.
 */
async function settleInterrupted(
  ctx: DriverContext,
  def: StepDefinition<unknown>,
  step: StepRecord,
): Promise<StepOutcome | undefined> {
  if (await alreadyDone(ctx, def, step)) {
    output(ctx, step, 'its check holds after the interruption: done, not run again');
    await flushBackground(ctx);
    await setStepStatus(ctx, step, 'succeeded', 'verify held after an interruption; not run again');
    return 'continue';
  }
  if (ctx.abortCtl.signal.aborted || ctx.lockCtl.signal.aborted) return 'continue';
  // A destructive step is never re-run blind: it needs a fresh approval.
  step.status = needsApproval(def) && !ctx.run.dryRun ? 'pending' : 'approved';
  return undefined;
}

/**
 * A pending step that a dry run must not run, or whose `when` says it is not needed, is skipped; a
 * failing `when` fails the run. `undefined` when the step is to be run (the caller goes on).
 */
async function skipIfNotApplicable(
  ctx: DriverContext,
  def: StepDefinition<unknown>,
  index: number,
): Promise<StepOutcome | undefined> {
  const step = refreshDescription(ctx, index);
  if (ctx.run.dryRun && (def.destructive || !def.readOnly)) {
    output(ctx, step, 'dry run: not run');
    await flushBackground(ctx);
    await setStepStatus(ctx, step, 'skipped', 'dry run');
    return 'continue';
  }
  if (!def.when) return undefined;
  let applies: boolean;
  try {
    applies = await bounded(ctx, step, 'when', timeoutOf(ctx, def), workSignal(ctx), async (s) =>
      def.when ? def.when(stepContext(ctx, step, s, false)) : true,
    );
  } catch (error) {
    throwIfStopped(ctx);
    if (ctx.abortCtl.signal.aborted || ctx.lockCtl.signal.aborted) return 'continue';
    step.error = redactSecrets(describeError(error));
    await setStepStatus(ctx, step, 'failed', step.error);
    await endFailed(ctx, step, error);
    return 'ended';
  }
  if (applies) return undefined;
  await setStepStatus(ctx, step, 'skipped', 'not needed');
  return 'continue';
}

/**
 * Asks for the step's approval, then checks the abort and the fencing token again right before the step
 * acts. `undefined` when the step is to be run, else the loop's outcome.
 */
async function approveThenCheck(ctx: DriverContext, index: number): Promise<StepOutcome | undefined> {
  const outcome = await awaitApproval(ctx, index);
  if (outcome === 'aborted') {
    await endAborted(ctx);
    return 'ended';
  }
  if (outcome === 'paused') return 'continue';
  // The loop's checks ran before a wait that can last the whole approval timeout: the lock may have
  // gone between two renewals, or another replica may have recorded an abort. Check again, right
  // before the step acts.
  const [aborting, held] = await Promise.all([abortRequested(ctx), fenced(ctx)]);
  if (aborting) {
    await endAborted(ctx);
    return 'ended';
  }
  if (!held) {
    // The approval was for a run that held its lock; after the pause it is asked for again.
    const approved = ctx.run.steps[index];
    if (approved) approved.status = 'pending';
    await pauseForLock(ctx);
    return 'continue';
  }
  return undefined;
}

/** Takes the step at `index` from where its record stands to its end, or to a pause or the run's end. */
export async function driveStep(ctx: DriverContext, index: number): Promise<StepOutcome> {
  const { run } = ctx;
  const def = ctx.steps[index];
  const step = run.steps[index];
  if (!def || !step) throw new Error(`run ${run.id} has no step at ${index}`);
  run.currentStep = step.id;
  let resumed = false;

  if (step.status === 'running') {
    const settled = await settleInterrupted(ctx, def, step);
    if (settled) return settled;
    resumed = true;
  }
  if (step.status === 'pending') {
    const skipped = await skipIfNotApplicable(ctx, def, index);
    if (skipped) return skipped;
  }
  // run.steps[index] may have been replaced by a fresh description: its status is the current one.
  if (needsApproval(def) && !run.dryRun && run.steps[index]?.status !== 'approved') {
    const checked = await approveThenCheck(ctx, index);
    if (checked) return checked;
  }
  return runStep(ctx, index, resumed);
}
