/** Starting a run (Engine.start) and rendering a runbook's plan without side effects (Engine.plan). */
import type { AnyRunbook, Engine, RunRecord, StartRequest, StepDefinition } from '../types.js';
import { EngineClosedError } from './engine-errors.js';
import { type EngineState, authorize, emit, ensureSubscribed, findRunbook, launch } from './engine-state.js';
import { lockHolderOf, newStepRecord, parseParams, planContext } from './run-record.js';

/** Validates and authorizes the request, takes the lock, records the run and hands it to a driver. */
export async function startRun(state: EngineState, request: StartRequest): Promise<RunRecord> {
  const { store, lock, config, clock, ownerId, timings } = state;
  if (state.closed) throw new EngineClosedError();
  const runbook = findRunbook(state, request.runbook);
  const parsed: unknown = parseParams(runbook, request.params);
  await authorize(state.policy.canStart(request.requester));
  const params = await prepared(state, runbook, parsed);
  const steps: readonly StepDefinition<unknown>[] = runbook.steps(params, config);
  const plan = planContext(params, config, {});
  const id = state.newRunId();
  const now = clock.now();
  const run: RunRecord = {
    id,
    runbook: runbook.id,
    runbookVersion: runbook.version,
    params: params as Record<string, unknown>,
    node: runbook.node(params),
    summary: runbook.summary(params, config),
    requester: request.requester,
    dryRun: request.dryRun === true,
    createdAt: now,
    ...(request.incident === undefined ? {} : { incident: request.incident }),
    status: 'running',
    steps: steps.map((step) => newStepRecord(step, plan)),
    facts: {},
    lockKey: runbook.lockKey(params),
    owner: ownerId,
  };

  // A dry run changes nothing, so it neither takes nor waits for the lock.
  const lease = run.dryRun
    ? undefined
    : await lock.acquire(run.lockKey, timings.lockTtlMs, lockHolderOf(run, now));
  try {
    if (lease) run.fencingToken = lease.fencingToken;
    if (!(await store.acquireOwner(id, ownerId, timings.ownerLeaseMs))) {
      throw new Error(`run id ${id} is already taken; try again`);
    }
    await store.saveRun(run, { owner: ownerId });
    await store.appendAudit(id, {
      at: now,
      who: run.requester,
      what: 'run-started',
      detail: `${run.summary}${run.dryRun ? ' (dry run)' : ''}; params ${JSON.stringify(run.params)}`,
    });
  } catch (error) {
    if (lease) await lock.release(lease).catch(() => undefined);
    throw error;
  }
  await ensureSubscribed(state);
  // Emitting only queues the event, and launch registers the drive in the same tick, so an observer
  // that records the run's thread (Engine.setThread) always finds the drive here.
  emit(state, run, { type: 'run-started' });
  const copy = structuredClone(run);
  launch(state, run, params, steps, lease);
  return copy;
}

/** The runbook's own settling of the parameters from the cell state (RunbookDefinition.prepare), checked again. */
async function prepared(state: EngineState, runbook: AnyRunbook, params: unknown): Promise<unknown> {
  if (!runbook.prepare) return params;
  const settled: unknown = await runbook.prepare(params, { config: state.config, state: state.ports.state });
  return parseParams(runbook, settled);
}

export async function planRun(
  state: EngineState,
  runbookId: string,
  rawParams: unknown,
): ReturnType<Engine['plan']> {
  const runbook = findRunbook(state, runbookId);
  const params = await prepared(state, runbook, parseParams(runbook, rawParams));
  const plan = planContext(params, state.config, {});
  const steps: readonly StepDefinition<unknown>[] = runbook.steps(params, state.config);
  return {
    summary: runbook.summary(params, state.config),
    steps: steps.map((step) => {
      const record = newStepRecord(step, plan);
      return {
        id: record.id,
        title: record.title,
        description: record.description,
        destructive: record.destructive,
      };
    }),
  };
}
