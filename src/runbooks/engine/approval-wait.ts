/**
 * Waiting for the approval of a step: opening a round (or continuing the one open before a crash),
 * following its decisions, and ending it approved, aborted, or paused (expired, or the lock lost).
 */
import type { StepRecord } from '../types.js';
import { formatMs } from './bounded-call.js';
import {
  type DriverContext,
  abortRequested,
  audit,
  markAborted,
  throwIfStopped,
  waitForChange,
  workSignal,
} from './driver-context.js';
import { save } from './lease-keeper.js';
import { pauseForLock } from './run-pause.js';
import type { ApprovalRound } from './run-store.js';
import { refreshDescription } from './step-context.js';

export type ApprovalOutcome = 'approved' | 'paused' | 'aborted';

/**
 * Why the decisions that settle a round do not stand, if so. The round lives in Redis, where anyone with
 * write access could add a `_final` or bump `_approvals`; so every recorded approver is checked again
 * against the policy as it is now (authorized, not the requester under four-eyes) and counted once per
 * person, and the settling abort must come from someone who may abort.
 */
async function settleProblem(
  ctx: DriverContext,
  step: StepRecord,
  round: ApprovalRound,
  expiresAt: number,
): Promise<string | undefined> {
  const { run, policy, config } = ctx;
  const final = round.final;
  if (final === undefined) return 'the round has no settling decision';
  if (final.decision === 'abort') {
    const verdict = await policy.canAbort(final.user, run);
    return verdict.allowed ? undefined : verdict.reason;
  }
  const approvers = new Set<string>();
  const refused: string[] = [];
  for (const decision of round.decisions) {
    if (decision.decision !== 'approve' || decision.at >= expiresAt || approvers.has(decision.user)) continue;
    const verdict = await policy.canApprove(decision.user, run);
    if (verdict.allowed) approvers.add(decision.user);
    else refused.push(verdict.reason);
  }
  // The stricter of the round's own requirement and the configuration now: a record cannot lower it.
  const required = Math.max(step.approvalsRequired ?? 1, config.slack.approvals);
  if (approvers.size >= required && approvers.has(final.user)) return undefined;
  return (
    `${approvers.size} of ${required} required approval(s) stand` +
    (refused.length > 0 ? ` (${refused.join('; ')})` : '')
  );
}

/** A settled round whose decisions do not stand: the step is not run; the run pauses to ask again. */
async function refuseSettlement(
  ctx: DriverContext,
  step: StepRecord,
  problem: string,
): Promise<ApprovalOutcome> {
  const { run } = ctx;
  ctx.logger.warn(
    { stepId: step.id, round: step.approvalRound, problem },
    'an approval round was settled by decisions the approver policy does not allow now: refused',
  );
  step.status = 'pending';
  delete step.approvalExpiresAt;
  run.status = 'paused';
  run.pauseReason =
    `the approval of step ${step.id} (${step.title}) was refused when it settled: ${problem}. ` +
    'Nothing was run; resume the run to ask again, or abort it';
  await save(ctx);
  await audit(ctx, {
    what: 'approval-refused',
    stepId: step.id,
    detail: `round ${step.approvalRound}: ${problem}`,
  });
  ctx.emit(run, { type: 'run-paused', reason: run.pauseReason });
  return 'paused';
}

async function settleChecked(
  ctx: DriverContext,
  step: StepRecord,
  round: ApprovalRound,
  expiresAt: number,
): Promise<ApprovalOutcome> {
  const problem = await settleProblem(ctx, step, round, expiresAt);
  return problem === undefined ? settle(ctx, step, round) : refuseSettlement(ctx, step, problem);
}

async function settle(ctx: DriverContext, step: StepRecord, round: ApprovalRound): Promise<ApprovalOutcome> {
  step.approvals = [...round.decisions];
  const final = round.final;
  if (final?.decision === 'abort') {
    markAborted(ctx, { user: final.user, at: final.at });
    return 'aborted';
  }
  step.status = 'approved';
  delete step.approvalExpiresAt;
  ctx.run.status = 'running';
  await save(ctx);
  await audit(ctx, {
    what: 'approval-granted',
    stepId: step.id,
    detail: `round ${step.approvalRound} by ${step.approvals.map((a) => a.user).join(', ')}`,
  });
  return 'approved';
}

/** Opens a new round for the step (closing an earlier one), or continues the round open before a crash. */
async function openRound(ctx: DriverContext, index: number): Promise<StepRecord> {
  const { run, clock, config } = ctx;
  let step = run.steps[index];
  if (!step) throw new Error(`run ${run.id} has no step at ${index}`);
  const continuing =
    step.status === 'waiting-approval' && step.approvalRound > 0 && step.approvalExpiresAt !== undefined;
  if (!continuing) {
    if (step.approvalRound > 0) {
      // Buttons of an earlier round (before a crash or pause) must not approve this one.
      await ctx.store.closeRound(run.id, step.id, step.approvalRound, {
        reason: 'a new approval round was requested',
        at: clock.now(),
      });
    }
    step = refreshDescription(ctx, index);
    const expiresAt = clock.now() + config.slack.approvalTimeoutMs;
    step.approvalRound += 1;
    step.approvals = [];
    step.approvalsRequired = config.slack.approvals;
    step.approvalExpiresAt = expiresAt;
    step.status = 'waiting-approval';
    run.status = 'waiting-approval';
    await save(ctx);
    await audit(ctx, {
      what: 'approval-requested',
      stepId: step.id,
      detail: `round ${step.approvalRound}; ${config.slack.approvals} approval(s) needed; expires at ${new Date(expiresAt).toISOString()}`,
    });
    ctx.emit(run, { type: 'approval-requested', stepId: step.id, expiresAt });
  } else if (run.status !== 'waiting-approval') {
    run.status = 'waiting-approval';
    await save(ctx);
  }
  return step;
}

export async function awaitApproval(ctx: DriverContext, index: number): Promise<ApprovalOutcome> {
  const { run, clock, config } = ctx;
  const step = await openRound(ctx, index);
  const round = step.approvalRound;
  const expiresAt = step.approvalExpiresAt ?? clock.now();
  // An approval settles the round only when it was given before the expiry: one recorded later (by a
  // replica whose clock is behind, or while no driver was alive to close the round) does not count.
  const settles = (state: ApprovalRound): boolean =>
    state.final !== undefined && (state.final.decision === 'abort' || state.final.at < expiresAt);

  for (;;) {
    throwIfStopped(ctx);
    if (await abortRequested(ctx)) return 'aborted';
    if (!run.dryRun && (!ctx.lease || ctx.lockCtl.signal.aborted)) {
      // pause() closes the round and announces it.
      await pauseForLock(ctx);
      return 'paused';
    }
    const state = await ctx.store.readRound(run.id, step.id, round);
    if (settles(state)) return settleChecked(ctx, step, state, expiresAt);
    if (state.decisions.length !== step.approvals.length) {
      step.approvals = [...state.decisions];
      await save(ctx);
    }
    if (clock.now() >= expiresAt || state.final !== undefined) {
      const closed = await ctx.store.closeRound(run.id, step.id, round, {
        reason: 'expired',
        at: clock.now(),
      });
      if (closed.kind === 'decided' && settles(closed.round))
        return settleChecked(ctx, step, closed.round, expiresAt);
      step.status = 'pending';
      delete step.approvalExpiresAt;
      run.status = 'paused';
      run.pauseReason =
        `the approval of step ${step.id} (${step.title}) expired after ${formatMs(config.slack.approvalTimeoutMs)} ` +
        'without a decision; resume the run to ask again, or abort it';
      await save(ctx);
      await audit(ctx, { what: 'approval-expired', stepId: step.id, detail: `round ${round}` });
      ctx.emit(run, { type: 'approval-expired', stepId: step.id });
      ctx.emit(run, { type: 'run-paused', reason: run.pauseReason });
      return 'paused';
    }
    await waitForChange(ctx, Math.min(ctx.timings.pollMs, expiresAt - clock.now()), workSignal(ctx));
  }
}
