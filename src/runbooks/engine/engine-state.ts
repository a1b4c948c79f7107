/**
 * The state of one engine (engine.ts), passed explicitly to the modules that serve its requests: starting
 * runs (run-start.ts), decisions and control requests (run-control.ts) and taking over runs whose owner
 * died (run-recovery.ts). Also the plumbing they share: event delivery, notifications, launching drivers.
 */
import type { CellopsConfig } from '../../config/config.js';
import { InputError, NotAuthorizedError } from '../../errors.js';
import type { LockLease, RunLock } from '../../locks/types.js';
import type { Clock } from '../../ports/clock.js';
import type { Logger } from '../../ports/logger.js';
import type { ApprovalPolicy } from '../approval-policy.js';
import type { AnyRunbook, RunbookPorts, RunEvent, RunObserver, RunRecord, StepDefinition } from '../types.js';
import type { EngineTimings } from './driver-context.js';
import { driveRun, type RunDrive } from './run-driver.js';
import type { RunStore } from './run-store.js';

/** What an engine is given and keeps as it is (EngineDeps adds the runbooks and options). */
export interface EngineServices {
  readonly store: RunStore;
  readonly lock: RunLock;
  readonly ports: RunbookPorts;
  readonly config: CellopsConfig;
  readonly policy: ApprovalPolicy;
  readonly observer: RunObserver;
  readonly clock: Clock;
  readonly logger: Logger;
  /** This process's id (unique per process, e.g. host:pid:random): the owner of the runs it drives. */
  readonly ownerId: string;
}

export interface EngineState extends EngineServices {
  /** Logs as the engine component. */
  readonly logger: Logger;
  readonly timings: EngineTimings;
  readonly newRunId: () => string;
  /** `who` of the audit entries the engine writes on its own. */
  readonly engineWho: string;
  readonly runbooks: ReadonlyMap<string, AnyRunbook>;
  /** The runs this process drives, by id. */
  readonly drives: Map<string, { drive: RunDrive; settled: Promise<void> }>;
  closed: boolean;
  subscription: Promise<(() => Promise<void>) | undefined> | undefined;
  /** The last event handed to the observer (see emit). */
  delivery: Promise<void>;
}

/**
 * Events are delivered in order, one at a time, without holding up the runs: a slow or failing
 * observer (Slack) never stalls or breaks a failover.
 */
export function emit(state: EngineState, run: RunRecord, event: RunEvent): void {
  const snapshot = structuredClone(run);
  state.delivery = state.delivery.then(async () => {
    try {
      await state.observer.onRunEvent(snapshot, event);
    } catch (error) {
      state.logger.warn(
        { err: error, runId: run.id, event: event.type },
        'the run observer failed; the run goes on',
      );
    }
  });
}

export async function ensureSubscribed(state: EngineState): Promise<void> {
  state.subscription ??= state.store
    .subscribe((runId) => state.drives.get(runId)?.drive.wake())
    .catch((error: unknown) => {
      state.logger.warn(
        { err: error },
        'could not subscribe to run notifications; waiting runs poll the store instead',
      );
      state.subscription = undefined;
      return undefined;
    });
  await state.subscription;
}

export function findRunbook(state: EngineState, id: string): AnyRunbook {
  const runbook = state.runbooks.get(id);
  if (!runbook) {
    throw new InputError(`unknown runbook "${id}" (known: ${[...state.runbooks.keys()].sort().join(', ')})`);
  }
  return runbook;
}

/** Hands the run to a driver in this process. */
export function launch(
  state: EngineState,
  run: RunRecord,
  params: unknown,
  steps: readonly StepDefinition<unknown>[],
  lease: LockLease | undefined,
): void {
  const { store, lock, ports, config, clock, logger, ownerId, timings, policy } = state;
  const drive = driveRun(
    {
      policy,
      store,
      lock,
      ports,
      config,
      clock,
      logger,
      ownerId,
      timings,
      emit: (record, event) => emit(state, record, event),
    },
    { run, params, steps, lease },
  );
  const settled = drive.done.finally(() => state.drives.delete(run.id));
  state.drives.set(run.id, { drive, settled });
}

export async function loadOrThrow(state: EngineState, runId: string): Promise<RunRecord> {
  const run = await state.store.loadRun(runId);
  if (!run) throw new InputError(`no run ${runId} (see /cell runs for recent runs)`);
  return run;
}

export async function authorize(verdict: Promise<{ allowed: boolean; reason?: string }>): Promise<void> {
  const result = await verdict;
  if (!result.allowed) throw new NotAuthorizedError(result.reason ?? 'not allowed');
}

/** Why the run cannot be resumed by this bot's runbooks, if so. */
export function versionProblem(state: EngineState, run: RunRecord): string | undefined {
  const runbook = state.runbooks.get(run.runbook);
  if (!runbook) {
    return `run ${run.id} was recorded under runbook "${run.runbook}", which this bot does not have; abort it`;
  }
  if (runbook.version !== run.runbookVersion) {
    return (
      `run ${run.id} was recorded under ${run.runbook} version ${run.runbookVersion} and this bot runs ` +
      `version ${runbook.version}; it is not resumed on changed steps. Check the cell by hand, then abort it ` +
      'and start again'
    );
  }
  return undefined;
}
