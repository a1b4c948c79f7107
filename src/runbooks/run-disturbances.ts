/**
 * Which nodes a run is working on now, from its durable record: a node is disturbed once a step that
 * declares it in `disturbs` has started, until the run ends or pauses. Read from the run store, this is
 * the same on every replica and after a restart, so the monitor's leader need not be the run's driver.
 *
 * Why until the end of the run and not of the step: the standby failover stops the standby's kcnd in one
 * step and starts it again four steps later; in between the node is down because of the run. A paused
 * run is no longer working on anything, so what it left behind (a stopped kcnd) alerts again.
 */
import type { CellopsConfig } from '../config/config.js';
import type { AnyRunbook, RunRecord, RunStatus, StepStatus } from './types.js';
import { parseParams, planContext } from './engine/run-record.js';

/** A run in one of these is still working on its nodes. */
const WORKING: readonly RunStatus[] = ['running', 'waiting-approval'];
/** A step in one of these has begun to act. */
const STARTED: readonly StepStatus[] = ['running', 'succeeded', 'failed', 'undone'];

export interface Disturbance {
  readonly runId: string;
  readonly stepTitle: string;
  readonly thread?: { readonly channel: string; readonly ts: string };
}

/** The nodes the run disturbs now, each with the first step that took it out. */
export function runDisturbances(
  run: RunRecord,
  runbook: AnyRunbook | undefined,
  config: CellopsConfig,
): Map<string, Disturbance> {
  const out = new Map<string, Disturbance>();
  if (!runbook || run.dryRun || !WORKING.includes(run.status)) return out;
  let params: unknown;
  try {
    params = parseParams(runbook, run.params);
  } catch {
    return out;
  }
  const plan = planContext(params, config, run.facts);
  for (const step of runbook.steps(params, config)) {
    if (!step.disturbs) continue;
    const record = run.steps.find((s) => s.id === step.id);
    if (!record || !STARTED.includes(record.status)) continue;
    let nodes: readonly string[];
    try {
      nodes = step.disturbs(plan);
    } catch {
      // A node its facts do not name yet (a PN not chosen): nothing to spare.
      continue;
    }
    for (const node of nodes) {
      if (out.has(node)) continue;
      out.set(node, { runId: run.id, stepTitle: step.title, ...(run.thread ? { thread: run.thread } : {}) });
    }
  }
  return out;
}
