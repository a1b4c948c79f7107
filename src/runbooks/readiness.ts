/**
 * Runs the read-only `check` runbook outside the engine, for the monitor's schedule: no run record, no
 * lock, no Slack thread every hour — only an alert when a condition fails. Every step runs (a failed
 * condition does not hide the next one), each bounded by its timeout, and the failures are returned in
 * the steps' own words. An operator's `/cell check` still goes through the engine.
 */
import type { CellopsConfig } from '../config/config.js';
import type { Logger } from '../ports/logger.js';
import { describeError } from '../errors.js';
import { redactSecrets } from '../infra/redact.js';
import type { CnParams } from './failover-params.js';
import type { Fact, RunbookDefinition, RunbookPorts, StepContext } from './types.js';

export interface ReadinessResult {
  readonly cn: string;
  /** One line per failed condition, naming the step. */
  readonly failures: readonly string[];
  /** The ids of the failed steps, in order (what the monitor's protection reads). */
  readonly failed: readonly string[];
  readonly passed: readonly string[];
}

/** Where a scheduled check's outcome goes: the monitor (src/monitor/monitor.ts). */
export interface ReadinessReporter {
  reportCheckFailure(cn: string, message: string, failedSteps?: readonly string[]): Promise<void>;
  reportCheckSuccess(cn: string): Promise<void>;
}

/**
 * The monitor's `startCheck`: runs the check of a CN and reports its outcome. `reporter` is asked at
 * report time, so it may be built after this (the monitor is created with its startCheck).
 */
export function readinessCheckStarter(deps: {
  runbook: RunbookDefinition<CnParams>;
  config: CellopsConfig;
  ports: RunbookPorts;
  logger: Logger;
  reporter: () => ReadinessReporter | undefined;
}): (cn: string) => Promise<void> {
  return async (cn) => {
    const result = await runReadinessCheck({ ...deps, cn });
    const reporter = deps.reporter();
    if (result.failures.length > 0)
      await reporter?.reportCheckFailure(cn, result.failures.join('\n'), result.failed);
    else await reporter?.reportCheckSuccess(cn);
  };
}

const DEFAULT_STEP_TIMEOUT_MS = 60_000;

export async function runReadinessCheck(deps: {
  runbook: RunbookDefinition<CnParams>;
  cn: string;
  config: CellopsConfig;
  ports: RunbookPorts;
  logger: Logger;
  signal?: AbortSignal;
}): Promise<ReadinessResult> {
  const params = deps.runbook.params.parse({ cn: deps.cn });
  const steps = deps.runbook.steps(params, deps.config);
  const unsafe = steps.filter((s) => s.destructive || s.readOnly !== true);
  if (unsafe.length > 0) {
    throw new Error(
      `readiness check ${deps.runbook.id} has steps that are not read-only: ${unsafe.map((s) => s.id).join(', ')}`,
    );
  }
  const facts: Record<string, Fact> = {};
  const failures: string[] = [];
  const failed: string[] = [];
  const passed: string[] = [];
  const log = deps.logger.child({ component: 'readiness', cn: deps.cn });

  for (const step of steps) {
    const controller = new AbortController();
    const timeoutMs = step.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
    const stop = () =>
      controller.abort(new Error(`the check "${step.title}" took longer than ${timeoutMs} ms`));
    deps.signal?.addEventListener('abort', stop, { once: true });
    const timer = deps.ports.clock.sleep(timeoutMs, controller.signal).then(stop, () => undefined);
    const ctx: StepContext<CnParams> = {
      params,
      config: deps.config,
      ports: deps.ports,
      runId: `check-${deps.cn}`,
      signal: controller.signal,
      log,
      fact: <T extends Fact>(key: string) => facts[key] as T | undefined,
      setFact: (key, value) => {
        facts[key] = value;
      },
      output: (line) => log.debug({ step: step.id, line: redactSecrets(line) }, 'check output'),
      resumed: false,
    };
    try {
      const aborted = new Promise<never>((_, reject) =>
        controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), {
          once: true,
        }),
      );
      const work = (async () => {
        if (step.when && !(await step.when(ctx))) return 'skipped' as const;
        await step.run(ctx);
        if (step.verify && !(await step.verify(ctx))) throw new Error('its post-condition did not hold');
        return 'passed' as const;
      })();
      const outcome = await Promise.race([work, aborted]);
      if (outcome === 'passed') passed.push(step.id);
    } catch (error) {
      failures.push(`${step.title}: ${redactSecrets(describeError(error))}`);
      failed.push(step.id);
    } finally {
      deps.signal?.removeEventListener('abort', stop);
      controller.abort(new Error('step finished'));
      await timer;
    }
  }
  return { cn: deps.cn, failures, failed, passed };
}
