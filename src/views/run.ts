/**
 * The messages of one run: the channel message (edited as the run advances) and its thread (plan, step
 * progress, approval requests, result). Pure functions of the run record and the time, so the sandbox
 * console shows exactly what Slack shows and tests can snapshot them.
 */
import type { ApprovalRecord, RunRecord, RunStatus, StepRecord, StepStatus } from '../runbooks/types.js';
import type { UserSet } from '../config/config.js';
import type { Block } from '../ports/chat.js';
import { formatDuration } from '../config/duration.js';
import { redactSecrets } from '../infra/redact.js';
import { RUN_ACTIONS, type RunActionValue } from './action-ids.js';
import {
  actions,
  button,
  clockTime,
  codeBlock,
  context,
  cutText,
  escapeText,
  fieldsSection,
  groupMention,
  header,
  mention,
  message,
  section,
  type RenderedMessage,
} from './kit.js';

const RUN_STATUS_LABEL: Record<RunStatus, string> = {
  pending: ':hourglass_flowing_sand: pending',
  running: ':arrow_forward: running',
  'waiting-approval': ':raised_hand: waiting for approval',
  paused: ':double_vertical_bar: paused',
  succeeded: ':white_check_mark: succeeded',
  failed: ':x: failed',
  aborted: ':octagonal_sign: aborted',
};

const STEP_STATUS_LABEL: Record<StepStatus, string> = {
  pending: ':white_circle: pending',
  'waiting-approval': ':raised_hand: waiting for approval',
  approved: ':ballot_box_with_check: approved',
  running: ':arrow_forward: running',
  succeeded: ':white_check_mark: succeeded',
  failed: ':x: failed',
  skipped: ':fast_forward: skipped',
  aborted: ':octagonal_sign: aborted',
  undone: ':leftwards_arrow_with_hook: undone',
};

/** Characters of step output shown in the thread; the full (redacted) tail stays in the audit stream. */
const OUTPUT_EXCERPT_CHARS = 1_500;

/** Output lines come from hosts: redact secrets first, then escape, then cut. */
function outputExcerpt(lines: readonly string[]): string | undefined {
  const text = redactSecrets(lines.join('\n')).trim();
  return text.length === 0 ? undefined : codeBlock(text, OUTPUT_EXCERPT_CHARS);
}

function safe(text: string): string {
  return escapeText(redactSecrets(text));
}

function stepIndex(run: RunRecord, stepId: string): { step: StepRecord | undefined; label: string } {
  const index = run.steps.findIndex((s) => s.id === stepId);
  return { step: run.steps[index], label: `step ${index + 1}/${run.steps.length}` };
}

function runMode(run: RunRecord): string | undefined {
  const fromParams = run.params.mode;
  if (typeof fromParams === 'string') return fromParams;
  const fromFacts = run.facts.mode;
  return typeof fromFacts === 'string' ? fromFacts : undefined;
}

function runElapsedMs(run: RunRecord, now: number): number {
  return (run.endedAt ?? now) - run.createdAt;
}

function isFinished(status: RunStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'aborted';
}

/** The channel message of a run, edited as it advances. */
export function renderRunMessage(run: RunRecord, now: number): RenderedMessage {
  const title = `${run.dryRun ? 'Dry run: ' : ''}${run.summary}`;
  const mode = runMode(run);
  const current = run.currentStep ? run.steps.find((s) => s.id === run.currentStep) : undefined;
  const fields = [
    `*Node*\n${escapeText(run.node)}`,
    `*Mode*\n${mode === undefined ? '—' : escapeText(mode)}`,
    `*Requested by*\n${mention(run.requester)}`,
    `*Status*\n${RUN_STATUS_LABEL[run.status]}`,
    `*Elapsed*\n${formatDuration(runElapsedMs(run, now))}`,
    `*Steps done*\n${run.steps.filter((s) => s.status === 'succeeded' || s.status === 'skipped').length}/${run.steps.length}`,
  ];
  const blocks: Block[] = [header(title), fieldsSection(fields)];
  if (current && !isFinished(run.status)) {
    blocks.push(section(`*Now:* ${safe(current.title)}`));
  }
  if (run.status === 'paused' && run.pauseReason) {
    blocks.push(
      section(
        `*Paused:* ${safe(run.pauseReason)}\nResume with \`/cell resume ${escapeText(run.id)}\` or stop with \`/cell abort ${escapeText(run.id)}\`.`,
      ),
    );
  }
  if (run.status === 'failed' && run.error) {
    blocks.push(section(`*Error:* ${safe(run.error)}`));
  }
  blocks.push(
    context([
      `Run \`${escapeText(run.id)}\` · ${escapeText(run.runbook)} v${run.runbookVersion} · details in the thread`,
    ]),
  );
  return message(`${escapeText(title)}: ${RUN_STATUS_LABEL[run.status].replace(/^:[a-z_]+: /, '')}`, blocks);
}

export interface PlanStep {
  readonly id: string;
  readonly title: string;
  readonly description: string;
  readonly destructive: boolean;
}

/** The plan: every step with exactly what it will do. Posted first in the thread, and for --dry-run. */
export function renderPlan(
  summary: string,
  steps: readonly PlanStep[],
  options: { dryRun?: boolean } = {},
): RenderedMessage {
  const blocks: Block[] = [
    section(
      `*${options.dryRun ? 'Dry run — plan' : 'Plan'}:* ${escapeText(summary)} (${steps.length} steps; :warning: = needs approval)`,
    ),
  ];
  steps.forEach((step, i) => {
    blocks.push(
      section(
        `${i + 1}. ${step.destructive ? ':warning: ' : ''}*${safe(step.title)}*\n${cutText(safe(step.description), 2_000)}`,
      ),
    );
  });
  if (options.dryRun) {
    blocks.push(context(['Dry run: only the read-only preflight runs; nothing is changed.']));
  }
  return message(`Plan: ${escapeText(summary)}`, blocks);
}

export function renderStepStarted(run: RunRecord, stepId: string): RenderedMessage {
  const { step, label } = stepIndex(run, stepId);
  const title = step ? safe(step.title) : escapeText(stepId);
  const blocks: Block[] = [section(`:arrow_forward: *${title}* started (${label})`)];
  if (step && step.attempts > 1) blocks.push(context([`attempt ${step.attempts}`]));
  return message(`${title} started`, blocks);
}

export function renderStepFinished(run: RunRecord, stepId: string, status: StepStatus): RenderedMessage {
  const { step, label } = stepIndex(run, stepId);
  const title = step ? safe(step.title) : escapeText(stepId);
  const took =
    step?.startedAt !== undefined && step.endedAt !== undefined
      ? ` in ${formatDuration(step.endedAt - step.startedAt)}`
      : '';
  const blocks: Block[] = [section(`${STEP_STATUS_LABEL[status]}: *${title}*${took} (${label})`)];
  if (step?.error) blocks.push(section(`*Error:* ${cutText(safe(step.error), 2_000)}`));
  const excerpt = step ? outputExcerpt(step.output) : undefined;
  if (excerpt) blocks.push(section(excerpt));
  return message(`${title}: ${status}${took}`, blocks);
}

export interface ApprovalView {
  readonly approvers: UserSet;
  readonly fourEyes: boolean;
  /** Distinct approvals the step needs. */
  readonly approvalsNeeded: number;
}

function whoMayApprove(run: RunRecord, view: ApprovalView): string {
  const names = [...view.approvers.users.map(mention), ...view.approvers.usergroups.map(groupMention)];
  const who = names.length > 0 ? names.join(', ') : 'nobody is configured (slack.approvers)';
  const four = view.fourEyes ? ` — not ${mention(run.requester)}, who started the run` : '';
  return `Who may approve: ${who}${four}`;
}

export function runActionValue(value: RunActionValue): string {
  return JSON.stringify({ runId: value.runId, stepId: value.stepId, round: value.round });
}

function approvalBlockId(runId: string, stepId: string, round: number): string {
  return `approval:${runId}:${stepId}:${round}`;
}

/** Approvals recorded so far on the current round (the step record keeps them). */
function approvalsSoFar(step: StepRecord): ApprovalRecord[] {
  return step.approvals.filter((a) => a.decision === 'approve');
}

/**
 * An approval request: what the step will do in plain words, who may approve, when it expires, and the
 * Approve / Abort buttons. While more approvals are needed it lists those already given.
 */
export function renderApprovalRequest(
  run: RunRecord,
  stepId: string,
  view: ApprovalView,
  expiresAt: number,
): RenderedMessage {
  const { step, label } = stepIndex(run, stepId);
  const title = step ? safe(step.title) : escapeText(stepId);
  const description = step ? safe(step.description) : '';
  const round = step?.approvalRound ?? 0;
  const value = runActionValue({ runId: run.id, stepId, round });
  const given = step ? approvalsSoFar(step) : [];
  const kind = step?.kind === 'manual' ? 'Confirmation' : 'Approval';
  const needed = step?.approvalsRequired ?? view.approvalsNeeded;
  const blocks: Block[] = [
    section(
      `:raised_hand: *${kind} needed* for ${label}: *${title}*\n${cutText(description, 2_500)}`,
      `request:${stepId}:${round}`,
    ),
    context([
      `${whoMayApprove(run, view)} · ${needed} approval${needed === 1 ? '' : 's'} needed · expires at ${clockTime(expiresAt)}`,
    ]),
  ];
  if (given.length > 0) {
    blocks.push(
      context([
        `Approved so far by ${given.map((a) => `${mention(a.user)} at ${clockTime(a.at)}`).join(', ')} (${given.length} of ${needed})`,
      ]),
    );
  }
  blocks.push(
    actions(approvalBlockId(run.id, stepId, round), [
      button({
        actionId: RUN_ACTIONS.approve,
        text: 'Approve',
        style: 'primary',
        value,
        confirm: {
          title: step?.kind === 'manual' ? 'Confirm this was done?' : 'Approve this step?',
          text: `${step ? redactSecrets(step.title) : stepId}: ${step ? redactSecrets(step.description) : ''}`,
          confirm: 'Approve',
          deny: 'Cancel',
        },
      }),
      button({
        actionId: RUN_ACTIONS.abort,
        text: 'Abort',
        style: 'danger',
        value,
        confirm: {
          title: 'Abort the run?',
          text: 'The run stops before this step; completed steps that can be undone are undone.',
          confirm: 'Abort',
          deny: 'Cancel',
          style: 'danger',
        },
      }),
    ]),
  );
  return message(`${kind} needed: ${title} (run ${escapeText(run.id)})`, blocks);
}

export type ApprovalOutcome =
  | { readonly kind: 'approved'; readonly by: ApprovalRecord; readonly all?: readonly ApprovalRecord[] }
  | { readonly kind: 'aborted'; readonly by: ApprovalRecord }
  | { readonly kind: 'expired'; readonly at: number }
  /** The run paused before a decision (its lock was lost, say): the round is over. */
  | { readonly kind: 'closed'; readonly at: number };

/** The approval message after the decision: the buttons are gone, replaced by who decided and when. */
export function renderApprovalDecided(
  run: RunRecord,
  stepId: string,
  outcome: ApprovalOutcome,
): RenderedMessage {
  const { step, label } = stepIndex(run, stepId);
  const title = step ? safe(step.title) : escapeText(stepId);
  const description = step ? safe(step.description) : '';
  let line: string;
  switch (outcome.kind) {
    case 'approved': {
      const all = outcome.all && outcome.all.length > 1 ? outcome.all : [outcome.by];
      line = `:white_check_mark: Approved by ${all.map((a) => `${mention(a.user)} at ${clockTime(a.at)}`).join(', ')}`;
      break;
    }
    case 'aborted':
      line = `:octagonal_sign: Aborted by ${mention(outcome.by.user)} at ${clockTime(outcome.by.at)}`;
      break;
    case 'expired':
      line = `:hourglass: Expired at ${clockTime(outcome.at)} with no decision — the run is paused. \`/cell resume ${escapeText(run.id)}\` asks again; \`/cell abort ${escapeText(run.id)}\` stops it.`;
      break;
    case 'closed':
      line = `:double_vertical_bar: Closed at ${clockTime(outcome.at)} with no decision: the run paused (the thread says why). \`/cell resume ${escapeText(run.id)}\` asks again; \`/cell abort ${escapeText(run.id)}\` stops it.`;
      break;
  }
  const blocks: Block[] = [section(`*${title}* (${label})\n${cutText(description, 2_500)}`), context([line])];
  return message(`${title}: ${line.replace(/^:[a-z_]+: /, '')}`, blocks);
}

/** The result: how the run ended and, for a failover, the time to recover. */
export function renderRunResult(run: RunRecord, now: number): RenderedMessage {
  const elapsed = runElapsedMs(run, now);
  const ttr = run.facts.timeToRecoverMs;
  const lines: string[] = [];
  const title = `${run.dryRun ? 'Dry run of ' : ''}${escapeText(run.summary)}`;
  switch (run.status) {
    case 'succeeded':
      lines.push(`:white_check_mark: *${title} succeeded* in ${formatDuration(elapsed)}.`);
      if (typeof ttr === 'number') lines.push(`Time to recover: *${formatDuration(ttr)}*.`);
      break;
    case 'failed': {
      const failed = run.steps.find((s) => s.status === 'failed');
      lines.push(
        `:x: *${title} failed*${failed ? ` at *${safe(failed.title)}*` : ''} after ${formatDuration(elapsed)}.`,
      );
      if (run.error) lines.push(cutText(safe(run.error), 2_000));
      break;
    }
    case 'aborted':
      lines.push(`:octagonal_sign: *${title} was aborted* after ${formatDuration(elapsed)}.`);
      if (run.error) lines.push(cutText(safe(run.error), 2_000));
      break;
    default:
      lines.push(`*${title}* is ${RUN_STATUS_LABEL[run.status]}.`);
  }
  if (run.note) lines.push(cutText(safe(run.note), 1_000));
  const undone = run.steps.filter((s) => s.status === 'undone');
  if (undone.length > 0) lines.push(`Undone: ${undone.map((s) => safe(s.title)).join(', ')}.`);
  const steps = run.steps
    .map((s) => {
      const took =
        s.startedAt !== undefined && s.endedAt !== undefined
          ? ` ${formatDuration(s.endedAt - s.startedAt)}`
          : '';
      return `${STEP_STATUS_LABEL[s.status].split(' ')[0] ?? ''} ${safe(s.title)}${took}`;
    })
    .join('\n');
  const blocks: Block[] = [section(lines.join('\n'))];
  if (steps.length > 0) blocks.push(section(steps));
  if (leftCloudResources(run)) {
    blocks.push(
      section(
        `This run left cloud resources (tagged \`cellops:run-id=${escapeText(run.id)}\`). *Clean up* terminates and deletes them, after an approval (the same as \`/cell cleanup ${escapeText(run.id)}\`).`,
      ),
      actions(`run:${run.id}:cleanup`, [
        button({
          text: 'Clean up',
          actionId: RUN_ACTIONS.cleanup,
          value: runActionValue({ runId: run.id, stepId: 'cleanup', round: 0 }),
          style: 'danger',
        }),
      ]),
    );
  }
  return message(lines[0]?.replace(/[*]/g, '') ?? title, blocks);
}

/** A snapshot failover that failed or was aborted after it created a snapshot or an instance. */
function leftCloudResources(run: RunRecord): boolean {
  if (run.dryRun || run.runbook !== 'failover') return false;
  if (run.status !== 'failed' && run.status !== 'aborted') return false;
  return typeof run.facts.snapshotId === 'string' || typeof run.facts.instanceId === 'string';
}

/** A short line in the thread (paused, resumed). */
export function renderRunNote(text: string): RenderedMessage {
  return message(text, [section(text)]);
}
