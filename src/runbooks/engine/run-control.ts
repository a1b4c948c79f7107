/**
 * Requests from people about a run, which any replica may receive: decisions on an approval, abort,
 * resume, and where the run's Slack thread is. Each is written to the store and published; the process
 * that drives the run acts on it, and a run nobody drives is taken over here (run-recovery.ts).
 */
import { InputError } from '../../errors.js';
import type { DecisionOutcome, RunRecord } from '../types.js';
import { type EngineState, authorize, emit, loadOrThrow, versionProblem } from './engine-state.js';
import { abortUnresumable, actOnUndriven } from './run-recovery.js';
import { isFinished } from './run-store.js';

/**
 * Records one decision atomically. The replica that records it emits `approval-decided`, so Slack is
 * updated exactly once whichever replica got the click.
 */
export async function decide(
  state: EngineState,
  runId: string,
  stepId: string,
  user: string,
  decision: 'approve' | 'abort',
  round: number | undefined,
): Promise<DecisionOutcome> {
  const { store, policy, clock } = state;
  const run = await loadOrThrow(state, runId);
  await authorize(decision === 'approve' ? policy.canApprove(user, run) : policy.canAbort(user, run));
  const step = run.steps.find((s) => s.id === stepId);
  if (!step || isFinished(run.status)) return { kind: 'not-waiting', status: step?.status ?? run.status };
  const wanted = round ?? step.approvalRound;
  if (wanted !== step.approvalRound || wanted < 1) return { kind: 'not-waiting', status: step.status };
  if (step.status !== 'waiting-approval') {
    // Settled already (a repeated click, a Slack redelivery) or not asked for.
    const settled = await store.readRound(runId, stepId, wanted);
    return settled.final
      ? { kind: 'already-decided', by: settled.final }
      : { kind: 'not-waiting', status: step.status };
  }

  // Until its driver notices, an expired request still reads as waiting (and with no driver alive, it
  // can read so for hours): an approval after the expiry must not count. An abort still does.
  const expiredAt = step.approvalExpiresAt;
  if (decision === 'approve' && expiredAt !== undefined && clock.now() >= expiredAt) {
    return { kind: 'expired', expiredAt };
  }

  const approval = { user, decision, at: clock.now() } as const;
  const result = await store.recordDecision(
    runId,
    stepId,
    wanted,
    approval,
    step.approvalsRequired ?? state.config.slack.approvals,
  );
  if (result.kind === 'already-decided') return { kind: 'already-decided', by: result.by };
  if (result.kind === 'closed') {
    // The round ended without a decision (expired, aborted, asked again) just before this click.
    const now = await store.loadRun(runId);
    return { kind: 'not-waiting', status: now?.steps.find((s) => s.id === stepId)?.status ?? 'pending' };
  }

  await store.appendAudit(runId, {
    at: approval.at,
    who: user,
    what: 'decision',
    stepId,
    detail: `${decision} (round ${wanted}${result.final ? ', settles it' : ''})`,
  });
  const updated = structuredClone(run);
  const updatedStep = updated.steps.find((s) => s.id === stepId);
  if (updatedStep) updatedStep.approvals = [...result.round.decisions];
  emit(state, updated, { type: 'approval-decided', stepId, approval, final: result.final });
  state.drives.get(runId)?.drive.wake();
  await store.publish(runId);
  return { kind: 'recorded', run: updated, final: result.final };
}

/** Records the abort request and waits until the run (driven here, or taken over) has ended. */
export async function abortRun(state: EngineState, runId: string, user: string): Promise<RunRecord> {
  const { store } = state;
  const run = await loadOrThrow(state, runId);
  await authorize(state.policy.canAbort(user, run));
  if (isFinished(run.status)) throw new InputError(`run ${runId} already ${run.status}; nothing to abort`);
  const request = await store.requestAbort(runId, { user, at: state.clock.now() });
  await store.appendAudit(runId, { at: request.at, who: user, what: 'abort-requested' });
  await store.publish(runId);

  const local = state.drives.get(runId);
  if (local) {
    local.drive.abort(request);
    await local.settled;
    return (await store.loadRun(runId)) ?? run;
  }
  if (versionProblem(state, run) !== undefined && (await store.ownerOf(runId)) === undefined) {
    return abortUnresumable(state, run, user);
  }
  await actOnUndriven(state, run);
  const taken = state.drives.get(runId);
  if (taken) await taken.settled;
  return (await store.loadRun(runId)) ?? run;
}

export async function resumeRun(state: EngineState, runId: string, user: string): Promise<RunRecord> {
  const { store, clock } = state;
  const run = await loadOrThrow(state, runId);
  await authorize(state.policy.canAbort(user, run));
  if (run.status !== 'paused') {
    throw new InputError(`run ${runId} is ${run.status}; only a paused run can be resumed`);
  }
  const problem = versionProblem(state, run);
  if (problem) throw new InputError(problem);
  await store.requestResume(runId, { user, at: clock.now() });
  await store.appendAudit(runId, { at: clock.now(), who: user, what: 'resume-requested' });
  state.drives.get(runId)?.drive.wake();
  await store.publish(runId);
  await actOnUndriven(state, run);
  return (await store.loadRun(runId)) ?? run;
}

export async function setThread(
  state: EngineState,
  runId: string,
  thread: { channel: string; ts: string },
): Promise<void> {
  const local = state.drives.get(runId);
  if (local) {
    await local.drive.setThread(thread);
    return;
  }
  // Not driven here (finished, or driven elsewhere): record it directly; the driver keeps its own
  // copy, so a remote driver learns the thread only when it reloads the run after a takeover.
  const run = await loadOrThrow(state, runId);
  run.thread = thread;
  await state.store.saveRun(run);
}
