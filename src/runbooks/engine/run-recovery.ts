/**
 * Taking over runs whose driving process died (recover(), or a request for a run nobody drives): the
 * owner lease, then the lock (a new fencing token), then a driver here. A run that this bot's runbooks
 * cannot resume (another version, changed steps) is paused with the reason instead, and can only be
 * aborted, without undos.
 */
import { describeError } from '../../errors.js';
import { LockBusyError, type LockLease } from '../../locks/types.js';
import type { RunRecord, StepDefinition } from '../types.js';
import { type EngineState, emit, ensureSubscribed, launch, versionProblem } from './engine-state.js';
import { lockHolderOf, parseParams } from './run-record.js';
import { isFinished } from './run-store.js';

interface ResumableSteps {
  readonly params?: unknown;
  readonly steps: readonly StepDefinition<unknown>[];
  /** Why the run cannot be resumed, if so. */
  readonly problem?: string;
}

/** The run's params and steps under this bot's runbooks, or why it cannot be resumed on them. */
function resumableSteps(state: EngineState, run: RunRecord): ResumableSteps {
  const problem = versionProblem(state, run);
  const runbook = state.runbooks.get(run.runbook);
  if (problem || !runbook) return { steps: [], ...(problem ? { problem } : {}) };
  try {
    const params = parseParams(runbook, run.params);
    const steps = runbook.steps(params, state.config);
    const ids = steps.map((s) => s.id).join(',');
    if (ids !== run.steps.map((s) => s.id).join(',')) {
      return {
        params,
        steps,
        problem: `run ${run.id} recorded steps ${run.steps.map((s) => s.id).join(', ')} but ${run.runbook} now has ${steps.map((s) => s.id).join(', ')}; abort it and start again`,
      };
    }
    return { params, steps };
  } catch (error) {
    return { steps: [], problem: `run ${run.id} cannot be resumed: ${describeError(error)}` };
  }
}

/** Records (once) why the run cannot be resumed, while holding its owner lease. */
async function pauseUnresumable(state: EngineState, run: RunRecord, reason: string): Promise<void> {
  const { store, ownerId } = state;
  if (run.status === 'paused' && run.pauseReason === reason) return;
  run.status = 'paused';
  run.pauseReason = reason;
  run.owner = ownerId;
  if (await store.saveRun(run, { owner: ownerId })) {
    await store.appendAudit(run.id, {
      at: state.clock.now(),
      who: state.engineWho,
      what: 'run-paused',
      detail: reason,
    });
    emit(state, run, { type: 'run-paused', reason });
  }
}

/**
 * Takes the run lock back for a run taken over; `'retry-later'` when its old lease has not lapsed yet.
 * When another run holds the lock now, the run is driven without it, so that it pauses and says why.
 */
async function retakeLock(
  state: EngineState,
  run: RunRecord,
): Promise<LockLease | undefined | 'retry-later'> {
  if (run.dryRun) return undefined;
  try {
    return await state.lock.acquire(
      run.lockKey,
      state.timings.lockTtlMs,
      lockHolderOf(run, state.clock.now()),
    );
  } catch (error) {
    // Its old lease has not lapsed yet; a later recover() takes it.
    if (error instanceof LockBusyError && error.holder?.runId === run.id) return 'retry-later';
    if (!(error instanceof LockBusyError)) throw error;
    return undefined;
  }
}

/** Takes a run whose owner died: owner lease, then the lock (a new fencing token), then drives it. */
async function takeOver(state: EngineState, run: RunRecord): Promise<void> {
  const { store, ownerId } = state;
  if (state.closed || state.drives.has(run.id)) return;
  if (!(await store.acquireOwner(run.id, ownerId, state.timings.ownerLeaseMs))) return;
  const previousOwner = run.owner;
  try {
    const { params, steps, problem } = resumableSteps(state, run);
    if (problem) {
      await pauseUnresumable(state, run, problem);
      await store.releaseOwner(run.id, ownerId);
      return;
    }
    const lease = await retakeLock(state, run);
    if (lease === 'retry-later') {
      await store.releaseOwner(run.id, ownerId);
      return;
    }
    run.owner = ownerId;
    if (lease) run.fencingToken = lease.fencingToken;
    if (!(await store.saveRun(run, { owner: ownerId }))) {
      if (lease) await state.lock.release(lease);
      return;
    }
    await store.appendAudit(run.id, {
      at: state.clock.now(),
      who: state.engineWho,
      what: 'run-recovered',
      detail: `taken over from ${previousOwner ?? 'an unknown process'}${lease ? `; fencing token ${lease.fencingToken}` : '; lock not held'}`,
    });
    state.logger.info({ runId: run.id, previousOwner }, 'resuming a run whose owner died');
    await ensureSubscribed(state);
    launch(state, run, params, steps, lease);
  } catch (error) {
    await store.releaseOwner(run.id, ownerId).catch(() => undefined);
    throw error;
  }
}

/** The run is owned by nobody alive: take it over so that the request is acted on. */
export async function actOnUndriven(state: EngineState, run: RunRecord): Promise<void> {
  if (state.drives.has(run.id) || isFinished(run.status)) return;
  if ((await state.store.ownerOf(run.id)) !== undefined) return;
  if (versionProblem(state, run) !== undefined) return;
  await takeOver(state, run);
}

/** Takes over every unfinished run that nobody owns (Engine.recover). */
export async function recoverRuns(state: EngineState): Promise<void> {
  const { store } = state;
  if (state.closed) return;
  for (const runId of await store.activeRunIds()) {
    if (state.closed) return;
    if (state.drives.has(runId)) continue;
    try {
      if ((await store.ownerOf(runId)) !== undefined) continue;
      const run = await store.loadRun(runId);
      if (!run || isFinished(run.status)) continue;
      if (
        versionProblem(state, run) !== undefined &&
        run.status === 'paused' &&
        run.pauseReason === versionProblem(state, run)
      ) {
        continue;
      }
      await takeOver(state, run);
    } catch (error) {
      state.logger.error({ err: error, runId }, 'recovering a run failed; the next recover() tries again');
    }
  }
}

/** Ends a run that cannot be resumed under this bot's runbooks: no undos (its steps may differ). */
export async function abortUnresumable(state: EngineState, run: RunRecord, user: string): Promise<RunRecord> {
  const { store, ownerId, clock } = state;
  if (!(await store.acquireOwner(run.id, ownerId, state.timings.ownerLeaseMs))) return run;
  try {
    run.status = 'aborted';
    run.endedAt = clock.now();
    run.error = `aborted by <@${user}>; undos not run: ${versionProblem(state, run) ?? 'the runbook changed'}`;
    delete run.pauseReason;
    if (await store.saveRun(run, { owner: ownerId })) {
      await store.appendAudit(run.id, {
        at: clock.now(),
        who: user,
        what: 'run-finished',
        detail: run.error,
      });
      emit(state, run, { type: 'run-finished', status: 'aborted', error: run.error });
    }
    return run;
  } finally {
    await store.releaseOwner(run.id, ownerId);
  }
}
