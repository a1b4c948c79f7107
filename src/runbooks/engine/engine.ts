/**
 * The durable runbook engine (docs/architecture.md §Floors, README §The life of a run): the public face used
 * by src/commands, src/monitor and the sandbox. It validates and authorizes requests, records decisions
 * atomically, and hands each run to a driver (run-driver.ts) in this process; recover() takes over runs whose
 * driving process died. The work is in run-start.ts, run-control.ts and run-recovery.ts, on one EngineState
 * (engine-state.ts).
 *
 * Any replica may receive a click: decide(), abort() and resume() write to the store and publish a
 * notification; the process that drives the run acts on it. The replica that records a decision emits
 * `approval-decided`, so Slack is updated exactly once whichever replica got the click.
 */
import { randomBytes } from 'node:crypto';
import type { AnyRunbook, Engine } from '../types.js';
import type { EngineTimings } from './driver-context.js';
import type { EngineServices, EngineState } from './engine-state.js';
import { abortRun, decide, resumeRun, setThread } from './run-control.js';
import { recoverRuns } from './run-recovery.js';
import { planRun, startRun } from './run-start.js';

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

export interface EngineDeps extends EngineServices {
  readonly runbooks: readonly AnyRunbook[];
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
  const options = deps.options ?? {};
  const runbooks = new Map<string, AnyRunbook>();
  for (const runbook of deps.runbooks) {
    if (runbooks.has(runbook.id)) throw new Error(`two runbooks share the id ${runbook.id}`);
    runbooks.set(runbook.id, runbook);
  }
  const { store, lock, ports, config, policy, observer, clock, ownerId } = deps;
  const state: EngineState = {
    store,
    lock,
    ports,
    config,
    policy,
    observer,
    clock,
    ownerId,
    logger: deps.logger.child({ component: 'engine' }),
    timings: resolveTimings(options),
    newRunId: options.newRunId ?? (() => randomBytes(5).toString('hex')),
    engineWho: `engine:${deps.ownerId}`,
    runbooks,
    drives: new Map(),
    closed: false,
    subscription: undefined,
    delivery: Promise.resolve(),
  };

  return {
    start: (request) => startRun(state, request),
    plan: async (runbookId, rawParams) => planRun(state, runbookId, rawParams),
    decide: (runId, stepId, user, decision, round) => decide(state, runId, stepId, user, decision, round),
    abort: (runId, user) => abortRun(state, runId, user),
    resume: (runId, user) => resumeRun(state, runId, user),
    get: (runId) => state.store.loadRun(runId),
    list: (limit) => state.store.listRecent(limit),
    setThread: (runId, thread) => setThread(state, runId, thread),
    recover: () => recoverRuns(state),
    close: () => close(state),
  };
}

function resolveTimings(options: EngineOptions): EngineTimings {
  return {
    lockTtlMs: options.lockTtlMs ?? ENGINE_DEFAULTS.lockTtlMs,
    ownerLeaseMs: options.ownerLeaseMs ?? ENGINE_DEFAULTS.ownerLeaseMs,
    pollMs: options.pollMs ?? ENGINE_DEFAULTS.pollMs,
    stepTimeoutMs: options.stepTimeoutMs ?? ENGINE_DEFAULTS.stepTimeoutMs,
    graceMs: options.graceMs ?? ENGINE_DEFAULTS.graceMs,
    outputLines: options.outputLines ?? ENGINE_DEFAULTS.outputLines,
    outputLineChars: options.outputLineChars ?? ENGINE_DEFAULTS.outputLineChars,
  };
}

/** Stops driving runs here (each hands its owner lease over) once their drivers settle. */
async function close(state: EngineState): Promise<void> {
  state.closed = true;
  const running = [...state.drives.values()];
  for (const { drive } of running) drive.stop('the engine is closing', true);
  await Promise.all(running.map((entry) => entry.settled));
  await state.delivery;
  const unsubscribe = await state.subscription;
  state.subscription = undefined;
  if (unsubscribe) await unsubscribe();
}
