/**
 * Building and reading run records: the plan of a runbook as step records, and the small rules the
 * engine applies to them (which steps need an approval, which are done, how output is kept).
 */
import type { CellopsConfig } from '../../config/config.js';
import { InputError } from '../../errors.js';
import { redactSecrets } from '../../infra/redact.js';
import type { LockHolder } from '../../locks/types.js';
import type {
  AnyRunbook,
  Fact,
  PlanContext,
  RunRecord,
  StepDefinition,
  StepRecord,
  StepStatus,
} from '../types.js';

/** Statuses after which the engine moves on to the next step. */
const DONE: readonly StepStatus[] = ['succeeded', 'skipped', 'undone'];

export function isStepDone(status: StepStatus): boolean {
  return DONE.includes(status);
}

/** Destructive steps and manual steps (a person confirms what they did) wait for approval. */
export function needsApproval(step: StepDefinition<unknown>): boolean {
  return step.destructive || step.kind === 'manual';
}

/** Validates parameters with the runbook's own schema; the message names each bad field. */
export function parseParams<P>(runbook: AnyRunbook, params: unknown): P {
  const parsed = runbook.params.safeParse(params);
  if (parsed.success) return parsed.data as P;
  const problems = parsed.error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    return path === '' ? issue.message : `${path}: ${issue.message}`;
  });
  throw new InputError(`bad parameters for ${runbook.id}: ${problems.join('; ')}`);
}

export function planContext<P>(
  params: P,
  config: CellopsConfig,
  facts: Readonly<Record<string, Fact>>,
): PlanContext<P> {
  return { params, config, fact: <T extends Fact>(key: string) => facts[key] as T | undefined };
}

export function newStepRecord<P>(step: StepDefinition<P>, plan: PlanContext<P>): StepRecord {
  return {
    id: step.id,
    title: step.title,
    description: redactSecrets(step.describe(plan)),
    destructive: step.destructive,
    kind: step.kind ?? 'auto',
    status: 'pending',
    attempts: 0,
    output: [],
    approvals: [],
    approvalRound: 0,
  };
}

/** Appends redacted lines to a step's output, keeping the last `maxLines`, each cut at `maxChars`. */
export function appendOutput(step: StepRecord, text: string, maxLines: number, maxChars: number): string[] {
  const lines = redactSecrets(text)
    .split(/\r?\n/)
    .map((line) => (line.length > maxChars ? `${line.slice(0, maxChars)}…` : line));
  step.output.push(...lines);
  if (step.output.length > maxLines) step.output.splice(0, step.output.length - maxLines);
  return lines;
}

/** Who holds the lock for this run, as a refused requester is told (with the run's thread when known). */
export function lockHolderOf(run: RunRecord, since: number): LockHolder {
  return {
    requester: run.requester,
    runbook: run.runbook,
    node: run.node,
    runId: run.id,
    since,
    ...(run.thread ? { thread: run.thread } : {}),
  };
}
