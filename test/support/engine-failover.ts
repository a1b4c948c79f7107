/**
 * A real standby failover of cn1 onto cn1s driven by the real engine (memory store and lock) over the
 * simulated hosts of standby-cell.ts, every approval given by APPROVER as soon as it is asked: what a
 * report is built from, with an audit stream as the engine writes it.
 */
import type { CellopsConfig } from '../../src/config/config.js';
import type { Clock } from '../../src/ports/clock.js';
import { createMemoryLock } from '../../src/locks/memory-lock.js';
import { createApprovalPolicy } from '../../src/runbooks/approval-policy.js';
import { createEngine } from '../../src/runbooks/engine/engine.js';
import { createMemoryRunStore } from '../../src/runbooks/engine/memory-run-store.js';
import { isFinished, type RunStore } from '../../src/runbooks/engine/run-store.js';
import { failoverRunbook } from '../../src/runbooks/failover.js';
import type { RunIncident, RunRecord } from '../../src/runbooks/types.js';
import { ManualClock } from '../fakes/manual-clock.js';
import { RecordingLogger } from '../fakes/recording-logger.js';
import { createStandbyCell, type StandbyCell } from './standby-cell.js';

export const REQUESTER = 'U0REQ';
export const APPROVER = 'U0AAA';

export interface EngineFailover {
  readonly cell: StandbyCell;
  readonly store: RunStore;
  readonly run: RunRecord;
  readonly config: CellopsConfig;
}

/** Fails cn1, then runs `/failover cn1` to its end. `incident` is kept with the run as the bot keeps it. */
export async function runEngineFailover(
  options: {
    readonly incident?: (now: number) => RunIncident;
    /** Where runs are kept; default in memory. */
    readonly store?: (clock: Clock) => RunStore;
  } = {},
): Promise<EngineFailover> {
  const cell = createStandbyCell();
  cell.sim.host('cn1').stopDaemon();
  // The engine bounds every step with a timer on the clock, so time moves only when the test moves it:
  // one second a turn, the simulated chain (on the cell's own clock) in step.
  const clock = new ManualClock(cell.clock.now());
  const tick = async () => {
    await clock.advance(1_000);
    cell.clock.advance(1_000);
  };
  const config: CellopsConfig = {
    ...cell.config,
    slack: { ...cell.config.slack, operators: { users: [REQUESTER], usergroups: [] } },
  };
  const store = options.store ? options.store(clock) : createMemoryRunStore({ clock });
  const policy = createApprovalPolicy({
    slack: config.slack,
    directory: { usergroupMembers: async () => [] },
  });
  let ids = 0;
  const engine = createEngine({
    store,
    lock: createMemoryLock({ clock }),
    runbooks: [failoverRunbook],
    ports: { ...cell.ports, clock },
    config,
    policy,
    observer: {
      onRunEvent: async (run, event) => {
        if (event.type !== 'approval-requested') return;
        setImmediate(() => void engine.decide(run.id, event.stepId, APPROVER, 'approve'));
      },
    },
    clock,
    logger: new RecordingLogger(),
    ownerId: 'bot-1',
    options: { pollMs: 1_000, newRunId: () => `r${++ids}` },
  });
  try {
    const started = await engine.start({
      runbook: 'failover',
      params: { cn: 'cn1' },
      requester: REQUESTER,
      ...(options.incident ? { incident: options.incident(clock.now()) } : {}),
    });
    for (let turn = 0; turn < 3_600; turn++) {
      const run = await store.loadRun(started.id);
      if (run && isFinished(run.status)) return { cell, store, run, config };
      await tick();
    }
    const last = await store.loadRun(started.id);
    throw new Error(
      `the failover did not finish: ${JSON.stringify({ status: last?.status, step: last?.currentStep, pause: last?.pauseReason, audit: (await store.readAudit(started.id)).slice(-6) })}`,
    );
  } finally {
    await engine.close();
  }
}
