/**
 * The durable runbook engine (DESIGN.md §3): the public face used by src/commands, src/monitor and the
 * sandbox. It validates and authorizes requests, records decisions atomically, and hands each run to a
 * driver (run-driver.ts) in this process; recover() takes over runs whose driving process died.
 *
 * Any replica may receive a click: decide(), abort() and resume() write to the store and publish a
 * notification; the process that drives the run acts on it. The replica that records a decision emits
 * `approval-decided`, so Slack is updated exactly once whichever replica got the click.
 */
import { randomBytes } from 'node:crypto';
import type { CellopsConfig } from '../../config/config.js';
import { describeError, InputError, NotAuthorizedError } from '../../errors.js';
import { LockBusyError, type LockLease, type RunLock } from '../../locks/types.js';
import type { Clock } from '../../ports/clock.js';
import type { Logger } from '../../ports/logger.js';
import type { ApprovalPolicy } from '../approval-policy.js';
import { EngineClosedError } from './engine-errors.js';
import type { EngineTimings } from './driver-context.js';
import { driveRun, type RunDrive } from './run-driver.js';
import { lockHolderOf, newStepRecord, parseParams, planContext } from './run-record.js';
import { isFinished, type RunStore } from './run-store.js';
import type {
  AnyRunbook,
  DecisionOutcome,
  Engine,
  RunbookPorts,
  RunEvent,
  RunObserver,
  RunRecord,
  StepDefinition,
} from '../types.js';

export interface EngineOptions {
  /** TTL of the run lock, renewed every third of it while the run lives. Default 30 s. */
  readonly lockTtlMs?: number;
  /**
   * TTL of the per-run owner lease, renewed with the lock. After the driving process dies, another one
   * resumes the run once this lapses (and the lock too). Default 30 s.
   */
  readonly ownerLeaseMs?: number;
  /**
   * How often a waiting run looks at the store when no notification arrived (approvals, resume).
   * Notifications are the fast path; this is the fallback. Default 2 s.
   */
  readonly pollMs?: number;
  /** Timeout of a step's run, verify, when and undo when the step declares none. Default 2 min. */
  readonly stepTimeoutMs?: number;
  /** How long interrupted step code may take to settle before the engine moves on. Default 5 s. */
  readonly graceMs?: number;
  /** Output lines kept per step in the run record (all lines go to the audit stream). Default 50. */
  readonly outputLines?: number;
  /** Longest output line kept; longer ones are cut. Default 500 characters. */
  readonly outputLineChars?: number;
  /** Makes run ids; default 10 random hex characters. */
  readonly newRunId?: () => string;
}

export interface EngineDeps {
  readonly store: RunStore;
  readonly lock: RunLock;
  readonly runbooks: readonly AnyRunbook[];
  readonly ports: RunbookPorts;
  readonly config: CellopsConfig;
  readonly policy: ApprovalPolicy;
  readonly observer: RunObserver;
  readonly clock: Clock;
  readonly logger: Logger;
  /** This process's id (unique per process, e.g. host:pid:random): the owner of the runs it drives. */
  readonly ownerId: string;
  readonly options?: EngineOptions;
}

export const ENGINE_DEFAULTS: EngineTimings = {
  lockTtlMs: 30_000,
  ownerLeaseMs: 30_000,
  pollMs: 2_000,
  stepTimeoutMs: 120_000,
  graceMs: 5_000,
  outputLines: 50,
  outputLineChars: 500,
};

export function createEngine(deps: EngineDeps): Engine {
  const { store, lock, ports, config, policy, observer, clock, ownerId } = deps;
  const logger = deps.logger.child({ component: 'engine' });
  const options = deps.options ?? {};
  const timings: EngineTimings = {
    lockTtlMs: options.lockTtlMs ?? ENGINE_DEFAULTS.lockTtlMs,
    ownerLeaseMs: options.ownerLeaseMs ?? ENGINE_DEFAULTS.ownerLeaseMs,
    pollMs: options.pollMs ?? ENGINE_DEFAULTS.pollMs,
    stepTimeoutMs: options.stepTimeoutMs ?? ENGINE_DEFAULTS.stepTimeoutMs,
    graceMs: options.graceMs ?? ENGINE_DEFAULTS.graceMs,
    outputLines: options.outputLines ?? ENGINE_DEFAULTS.outputLines,
    outputLineChars: options.outputLineChars ?? ENGINE_DEFAULTS.outputLineChars,
  };
  const newRunId = options.newRunId ?? (() => randomBytes(5).toString('hex'));
  const engineWho = `engine:${ownerId}`;

  const runbooks = new Map<string, AnyRunbook>();
  for (const runbook of deps.runbooks) {
    if (runbooks.has(runbook.id)) throw new Error(`two runbooks share the id ${runbook.id}`);
    runbooks.set(runbook.id, runbook);
  }

  const drives = new Map<string, { drive: RunDrive; settled: Promise<void> }>();
  let closed = false;
  let subscription: Promise<(() => Promise<void>) | undefined> | undefined;

  // Events are delivered in order, one at a time, without holding up the runs: a slow or failing
  // observer (Slack) never stalls or breaks a failover.
  let delivery: Promise<void> = Promise.resolve();
  const emit = (run: RunRecord, event: RunEvent): void => {
    const snapshot = structuredClone(run);
    delivery = delivery.then(async () => {
      try {
        await observer.onRunEvent(snapshot, event);
      } catch (error) {
        logger.warn(
          { err: error, runId: run.id, event: event.type },
          'the run observer failed; the run goes on',
        );
      }
    });
  };

  const ensureSubscribed = async (): Promise<void> => {
    subscription ??= store
      .subscribe((runId) => drives.get(runId)?.drive.wake())
      .catch((error: unknown) => {
        logger.warn(
          { err: error },
          'could not subscribe to run notifications; waiting runs poll the store instead',
        );
        subscription = undefined;
        return undefined;
      });
    await subscription;
  };

  const findRunbook = (id: string): AnyRunbook => {
    const runbook = runbooks.get(id);
    if (!runbook) {
      throw new InputError(`unknown runbook "${id}" (known: ${[...runbooks.keys()].sort().join(', ')})`);
    }
    return runbook;
  };

  const launch = (
    run: RunRecord,
    params: unknown,
    steps: readonly StepDefinition<unknown>[],
    lease: LockLease | undefined,
  ): void => {
    const drive = driveRun(
      { store, lock, ports, config, clock, logger, ownerId, timings, emit },
      { run, params, steps, lease },
    );
    const settled = drive.done.finally(() => drives.delete(run.id));
    drives.set(run.id, { drive, settled });
  };

  const loadOrThrow = async (runId: string): Promise<RunRecord> => {
    const run = await store.loadRun(runId);
    if (!run) throw new InputError(`no run ${runId} (see /cell runs for recent runs)`);
    return run;
  };

  const authorize = async (verdict: Promise<{ allowed: boolean; reason?: string }>): Promise<void> => {
    const result = await verdict;
    if (!result.allowed) throw new NotAuthorizedError(result.reason ?? 'not allowed');
  };

  /** Why the run cannot be resumed by this bot's runbooks, if so. */
  const versionProblem = (run: RunRecord): string | undefined => {
    const runbook = runbooks.get(run.runbook);
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
  };

  /** Takes a run whose owner died: owner lease, then the lock (a new fencing token), then drives it. */
  const takeOver = async (run: RunRecord): Promise<void> => {
    if (closed || drives.has(run.id)) return;
    if (!(await store.acquireOwner(run.id, ownerId, timings.ownerLeaseMs))) return;
    const previousOwner = run.owner;
    try {
      const problem = versionProblem(run);
      const runbook = runbooks.get(run.runbook);
      let params: unknown;
      let steps: readonly StepDefinition<unknown>[] = [];
      let stepProblem: string | undefined;
      if (!problem && runbook) {
        try {
          params = parseParams(runbook, run.params);
          steps = runbook.steps(params, config);
          const ids = steps.map((s) => s.id).join(',');
          if (ids !== run.steps.map((s) => s.id).join(',')) {
            stepProblem = `run ${run.id} recorded steps ${run.steps.map((s) => s.id).join(', ')} but ${run.runbook} now has ${steps.map((s) => s.id).join(', ')}; abort it and start again`;
          }
        } catch (error) {
          stepProblem = `run ${run.id} cannot be resumed: ${describeError(error)}`;
        }
      }
      const reason = problem ?? stepProblem;
      if (reason) {
        if (run.status !== 'paused' || run.pauseReason !== reason) {
          run.status = 'paused';
          run.pauseReason = reason;
          run.owner = ownerId;
          if (await store.saveRun(run, { owner: ownerId })) {
            await store.appendAudit(run.id, {
              at: clock.now(),
              who: engineWho,
              what: 'run-paused',
              detail: reason,
            });
            emit(run, { type: 'run-paused', reason });
          }
        }
        await store.releaseOwner(run.id, ownerId);
        return;
      }

      let lease: LockLease | undefined;
      if (!run.dryRun) {
        try {
          lease = await lock.acquire(run.lockKey, timings.lockTtlMs, lockHolderOf(run, clock.now()));
        } catch (error) {
          if (error instanceof LockBusyError && error.holder?.runId === run.id) {
            // Its old lease has not lapsed yet; a later recover() takes it.
            await store.releaseOwner(run.id, ownerId);
            return;
          }
          // Another run holds the lock now: drive it anyway, so that it pauses and says why.
          if (!(error instanceof LockBusyError)) throw error;
        }
      }
      run.owner = ownerId;
      if (lease) run.fencingToken = lease.fencingToken;
      if (!(await store.saveRun(run, { owner: ownerId }))) {
        if (lease) await lock.release(lease);
        return;
      }
      await store.appendAudit(run.id, {
        at: clock.now(),
        who: engineWho,
        what: 'run-recovered',
        detail: `taken over from ${previousOwner ?? 'an unknown process'}${lease ? `; fencing token ${lease.fencingToken}` : '; lock not held'}`,
      });
      logger.info({ runId: run.id, previousOwner }, 'resuming a run whose owner died');
      await ensureSubscribed();
      launch(run, params, steps, lease);
    } catch (error) {
      await store.releaseOwner(run.id, ownerId).catch(() => undefined);
      throw error;
    }
  };

  /** The run is owned by nobody alive: take it over so that the request is acted on. */
  const actOnUndriven = async (run: RunRecord): Promise<void> => {
    if (drives.has(run.id) || isFinished(run.status)) return;
    if ((await store.ownerOf(run.id)) !== undefined) return;
    if (versionProblem(run) !== undefined) return;
    await takeOver(run);
  };

  return {
    async start(request) {
      if (closed) throw new EngineClosedError();
      const runbook = findRunbook(request.runbook);
      const params: unknown = parseParams(runbook, request.params);
      await authorize(policy.canStart(request.requester));
      const steps: readonly StepDefinition<unknown>[] = runbook.steps(params, config);
      const plan = planContext(params, config, {});
      const id = newRunId();
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
      await ensureSubscribed();
      // Emitting only queues the event, and launch registers the drive in the same tick, so an observer
      // that records the run's thread (Engine.setThread) always finds the drive here.
      emit(run, { type: 'run-started' });
      const copy = structuredClone(run);
      launch(run, params, steps, lease);
      return copy;
    },

    async plan(runbookId, rawParams) {
      const runbook = findRunbook(runbookId);
      const params: unknown = parseParams(runbook, rawParams);
      const plan = planContext(params, config, {});
      const steps: readonly StepDefinition<unknown>[] = runbook.steps(params, config);
      return {
        summary: runbook.summary(params, config),
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
    },

    async decide(runId, stepId, user, decision, round): Promise<DecisionOutcome> {
      const run = await loadOrThrow(runId);
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
        step.approvalsRequired ?? config.slack.approvals,
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
      emit(updated, { type: 'approval-decided', stepId, approval, final: result.final });
      drives.get(runId)?.drive.wake();
      await store.publish(runId);
      return { kind: 'recorded', run: updated, final: result.final };
    },

    async abort(runId, user) {
      const run = await loadOrThrow(runId);
      await authorize(policy.canAbort(user, run));
      if (isFinished(run.status))
        throw new InputError(`run ${runId} already ${run.status}; nothing to abort`);
      const request = await store.requestAbort(runId, { user, at: clock.now() });
      await store.appendAudit(runId, { at: request.at, who: user, what: 'abort-requested' });
      await store.publish(runId);

      const local = drives.get(runId);
      if (local) {
        local.drive.abort(request);
        await local.settled;
        return (await store.loadRun(runId)) ?? run;
      }
      if (versionProblem(run) !== undefined && (await store.ownerOf(runId)) === undefined) {
        return abortUnresumable(run, user);
      }
      await actOnUndriven(run);
      const taken = drives.get(runId);
      if (taken) await taken.settled;
      return (await store.loadRun(runId)) ?? run;
    },

    async resume(runId, user) {
      const run = await loadOrThrow(runId);
      await authorize(policy.canAbort(user, run));
      if (run.status !== 'paused') {
        throw new InputError(`run ${runId} is ${run.status}; only a paused run can be resumed`);
      }
      const problem = versionProblem(run);
      if (problem) throw new InputError(problem);
      await store.requestResume(runId, { user, at: clock.now() });
      await store.appendAudit(runId, { at: clock.now(), who: user, what: 'resume-requested' });
      drives.get(runId)?.drive.wake();
      await store.publish(runId);
      await actOnUndriven(run);
      return (await store.loadRun(runId)) ?? run;
    },

    async get(runId) {
      return store.loadRun(runId);
    },

    async list(limit) {
      return store.listRecent(limit);
    },

    async setThread(runId, thread) {
      const local = drives.get(runId);
      if (local) {
        await local.drive.setThread(thread);
        return;
      }
      // Not driven here (finished, or driven elsewhere): record it directly; the driver keeps its own
      // copy, so a remote driver learns the thread only when it reloads the run after a takeover.
      const run = await loadOrThrow(runId);
      run.thread = thread;
      await store.saveRun(run);
    },

    async recover() {
      if (closed) return;
      for (const runId of await store.activeRunIds()) {
        if (closed) return;
        if (drives.has(runId)) continue;
        try {
          if ((await store.ownerOf(runId)) !== undefined) continue;
          const run = await store.loadRun(runId);
          if (!run || isFinished(run.status)) continue;
          if (
            versionProblem(run) !== undefined &&
            run.status === 'paused' &&
            run.pauseReason === versionProblem(run)
          ) {
            continue;
          }
          await takeOver(run);
        } catch (error) {
          logger.error({ err: error, runId }, 'recovering a run failed; the next recover() tries again');
        }
      }
    },

    async close() {
      closed = true;
      const running = [...drives.values()];
      for (const { drive } of running) drive.stop('the engine is closing', true);
      await Promise.all(running.map((entry) => entry.settled));
      await delivery;
      const unsubscribe = await subscription;
      subscription = undefined;
      if (unsubscribe) await unsubscribe();
    },
  };

  /** Ends a run that cannot be resumed under this bot's runbooks: no undos (its steps may differ). */
  async function abortUnresumable(run: RunRecord, user: string): Promise<RunRecord> {
    if (!(await store.acquireOwner(run.id, ownerId, timings.ownerLeaseMs))) return run;
    try {
      run.status = 'aborted';
      run.endedAt = clock.now();
      run.error = `aborted by <@${user}>; undos not run: ${versionProblem(run) ?? 'the runbook changed'}`;
      delete run.pauseReason;
      if (await store.saveRun(run, { owner: ownerId })) {
        await store.appendAudit(run.id, {
          at: clock.now(),
          who: user,
          what: 'run-finished',
          detail: run.error,
        });
        emit(run, { type: 'run-finished', status: 'aborted', error: run.error });
      }
      return run;
    } finally {
      await store.releaseOwner(run.id, ownerId);
    }
  }
}
