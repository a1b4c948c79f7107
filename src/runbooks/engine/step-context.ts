/**
 * What a driver hands to a step's code and records about a step: the StepContext, bounded calls of the
 * step's functions, its output lines, its description and its status.
 */
import type { Fact, StepContext, StepDefinition, StepRecord, StepStatus } from '../types.js';
import { boundedCall } from './bounded-call.js';
import { type DriverContext, audit, auditSoon, track } from './driver-context.js';
import { save } from './lease-keeper.js';
import { appendOutput, newStepRecord, planContext } from './run-record.js';

/** Keeps the step's output lines in the record (cut to size), and sends each to the audit and observer. */
export function output(ctx: DriverContext, step: StepRecord, text: string): void {
  const { run, timings } = ctx;
  const lines = appendOutput(step, text, timings.outputLines, timings.outputLineChars);
  for (const line of lines) {
    track(
      ctx,
      audit(ctx, { what: 'step-output', stepId: step.id, detail: line }),
      'writing step output to the audit stream',
    );
    ctx.emit(run, { type: 'step-output', stepId: step.id, line });
  }
}

export function stepContext(
  ctx: DriverContext,
  step: StepRecord,
  signal: AbortSignal,
  resumed: boolean,
): StepContext<unknown> {
  const { run } = ctx;
  return {
    params: ctx.params,
    config: ctx.config,
    ports: ctx.ports,
    runId: run.id,
    signal,
    log: ctx.logger.child({ stepId: step.id }),
    fact: <T extends Fact>(key: string) => run.facts[key] as T | undefined,
    setFact: (key, value) => {
      run.facts[key] = value;
    },
    output: (line) => output(ctx, step, line),
    resumed,
    ...(ctx.lease && !run.dryRun ? { fencingToken: ctx.lease.fencingToken } : {}),
  };
}

/** Calls one of the step's functions within its timeout, and lets it go (after a grace) when interrupted. */
export function bounded<T>(
  ctx: DriverContext,
  step: StepRecord,
  what: string,
  timeoutMs: number,
  signal: AbortSignal,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  return boundedCall(
    {
      clock: ctx.clock,
      timeoutMs,
      signal,
      graceMs: ctx.timings.graceMs,
      what: `${what} of step ${step.id} (${step.title}) in run ${ctx.run.id}`,
      logger: ctx.logger,
    },
    fn,
  );
}

export function timeoutOf(ctx: DriverContext, def: StepDefinition<unknown>): number {
  return def.timeoutMs ?? ctx.timings.stepTimeoutMs;
}

/** Re-renders the step's description with the facts known now: what approvers read must be current. */
export function refreshDescription(ctx: DriverContext, index: number): StepRecord {
  const { run } = ctx;
  const def = ctx.steps[index];
  const current = run.steps[index];
  if (!def || !current) throw new Error(`run ${run.id} has no step at ${index}`);
  const fresh = newStepRecord(def, planContext(ctx.params, ctx.config, run.facts));
  const updated: StepRecord = { ...current, description: fresh.description };
  run.steps[index] = updated;
  return updated;
}

export async function setStepStatus(
  ctx: DriverContext,
  step: StepRecord,
  status: StepStatus,
  detail?: string,
): Promise<void> {
  step.status = status;
  step.endedAt = ctx.clock.now();
  await save(ctx);
  auditSoon(ctx, {
    what: 'step-finished',
    stepId: step.id,
    detail: detail ? `${status}: ${detail}` : status,
  });
  ctx.emit(ctx.run, { type: 'step-finished', stepId: step.id, status });
}
