/**
 * A tiny stand-in for the engine, for runbook unit tests: runs steps in order (when → run → verify) with
 * facts shared between them, approves destructive and manual steps automatically (or as `approve` says),
 * and on failure runs the failed step's own undo when it is destructive (it may have acted half way), then
 * the undos of completed steps in reverse, as the engine does. It keeps every output line and every
 * step description so tests can grep them for secrets.
 */
import type { Clock } from '../../src/ports/clock.js';
import type { CellopsConfig } from '../../src/config/config.js';
import type { Fact, RunbookPorts, StepContext, StepDefinition } from '../../src/runbooks/types.js';
import { RecordingLogger } from '../fakes/recording-logger.js';

export interface RunStepsOptions<P> {
  readonly params: P;
  readonly config: CellopsConfig;
  readonly ports: RunbookPorts;
  readonly runId?: string;
  readonly facts?: Record<string, Fact>;
  /** Asked before every destructive or manual step; false stops the run as aborted. Default: approve. */
  readonly approve?: (step: StepDefinition<P>) => boolean;
  /** Run undos of completed steps when a step fails. Default true. */
  readonly undoOnFailure?: boolean;
}

export interface RunStepsResult {
  readonly status: 'succeeded' | 'failed' | 'aborted';
  readonly failedStep?: string;
  readonly error?: unknown;
  readonly facts: Record<string, Fact>;
  readonly outputs: { stepId: string; line: string }[];
  readonly descriptions: { stepId: string; text: string }[];
  readonly ran: string[];
  readonly skipped: string[];
  readonly approved: string[];
  readonly undone: string[];
  readonly undoErrors: unknown[];
  readonly log: RecordingLogger;
  /** Every output line and description, joined, for secret greps. */
  text(): string;
}

export async function runSteps<P>(
  steps: readonly StepDefinition<P>[],
  options: RunStepsOptions<P>,
): Promise<RunStepsResult> {
  const facts: Record<string, Fact> = { ...options.facts };
  const outputs: { stepId: string; line: string }[] = [];
  const descriptions: { stepId: string; text: string }[] = [];
  const ran: string[] = [];
  const skipped: string[] = [];
  const approved: string[] = [];
  const undone: string[] = [];
  const undoErrors: unknown[] = [];
  const log = new RecordingLogger();
  const controller = new AbortController();
  const runId = options.runId ?? 'run1';

  const contextFor = (step: StepDefinition<P>): StepContext<P> => ({
    params: options.params,
    config: options.config,
    ports: options.ports,
    runId,
    signal: controller.signal,
    log: log.child({ step: step.id }),
    fact: <T extends Fact>(key: string) => facts[key] as T | undefined,
    setFact: (key, value) => {
      facts[key] = value;
    },
    output: (line) => outputs.push({ stepId: step.id, line }),
    resumed: false,
  });

  const completed: StepDefinition<P>[] = [];
  const finish = (
    status: RunStepsResult['status'],
    failedStep?: string,
    error?: unknown,
  ): RunStepsResult => ({
    status,
    ...(failedStep === undefined ? {} : { failedStep }),
    ...(error === undefined ? {} : { error }),
    facts,
    outputs,
    descriptions,
    ran,
    skipped,
    approved,
    undone,
    undoErrors,
    log,
    text: () => [...descriptions.map((d) => d.text), ...outputs.map((o) => o.line), log.text()].join('\n'),
  });

  for (const step of steps) {
    const ctx = contextFor(step);
    descriptions.push({
      stepId: step.id,
      text: step.describe({ params: options.params, config: options.config, fact: ctx.fact }),
    });
    if (step.when && !(await step.when(ctx))) {
      skipped.push(step.id);
      continue;
    }
    if (step.destructive || step.kind === 'manual') {
      if (options.approve && !options.approve(step)) return finish('aborted', step.id);
      approved.push(step.id);
    }
    try {
      ran.push(step.id);
      await step.run(ctx);
      if (step.verify && !(await step.verify(ctx)))
        throw new Error(`step ${step.id}: its post-condition does not hold after run`);
      completed.push(step);
    } catch (error) {
      if (options.undoOnFailure ?? true) {
        const own = step.destructive && step.undo ? [step] : [];
        for (const done of [...own, ...[...completed].reverse()]) {
          if (!done.undo) continue;
          try {
            await done.undo(contextFor(done));
            undone.push(done.id);
          } catch (undoError) {
            undoErrors.push(undoError);
          }
        }
      }
      return finish('failed', step.id, error);
    }
  }
  return finish('succeeded');
}

/** A clock whose sleeps return at once, moving time forward by the slept amount. */
export function createJumpClock(
  start = Date.UTC(2026, 10, 26, 3, 0, 0),
): Clock & { advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    advance(ms) {
      now += ms;
    },
    async sleep(ms, signal) {
      if (signal?.aborted) throw signal.reason;
      now += Math.max(0, ms);
      await Promise.resolve();
    },
  };
}
