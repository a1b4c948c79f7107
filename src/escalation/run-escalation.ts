/**
 * The engine's side of escalation: a RunObserver that turns approval events into policy inputs, so that
 * an approval nobody answers is reminded, paged and announced before it expires.
 */
import type { UserSet } from '../config/config.js';
import type { Chat } from '../ports/chat.js';
import type { RunEvent, RunObserver, RunRecord } from '../runbooks/types.js';
import type { EscalationPolicy } from './escalation-policy.js';
import type { ApprovalEnding } from './policy.js';

export interface RunEscalationDeps {
  readonly policy: EscalationPolicy;
  /** slack.approvers: their user groups (or users) are mentioned in reminders. */
  readonly approvers: UserSet;
  readonly chat: Pick<Chat, 'permalink'>;
  /** slack.approvalTimeout: a request's start is its expiry minus this. */
  readonly approvalTimeoutMs: number;
}

/** The policy's id of a step's current approval round. */
export function approvalId(run: RunRecord, stepId: string, round?: number): string {
  const current = round ?? run.steps.find((s) => s.id === stepId)?.approvalRound ?? 0;
  return `${run.id}:${stepId}:${current}`;
}

/** How a request round ended, or undefined while it still waits (one of several approvals recorded). */
function ending(event: RunEvent): ApprovalEnding | undefined {
  switch (event.type) {
    case 'approval-decided':
      if (event.approval.decision === 'abort') return 'aborted';
      return event.final ? 'approved' : undefined;
    case 'approval-expired':
      return 'expired';
    case 'approval-closed':
      return 'closed';
    default:
      return undefined;
  }
}

export function createRunEscalation(deps: RunEscalationDeps): RunObserver {
  return {
    async onRunEvent(run, event) {
      if (event.type === 'approval-requested') {
        const step = run.steps.find((s) => s.id === event.stepId);
        const threadUrl = run.thread ? await deps.chat.permalink(run.thread) : undefined;
        await deps.policy.approvalRequested({
          id: approvalId(run, event.stepId),
          runId: run.id,
          runbook: run.runbook,
          stepId: event.stepId,
          stepTitle: step?.title ?? event.stepId,
          node: run.node,
          requestedAt: event.expiresAt - deps.approvalTimeoutMs,
          expiresAt: event.expiresAt,
          ...(run.thread ? { thread: run.thread } : {}),
          ...(threadUrl === undefined ? {} : { threadUrl }),
          approverGroups: deps.approvers.usergroups,
          approverUsers: deps.approvers.users,
        });
        return;
      }
      const ended = ending(event);
      if (ended === undefined || !('stepId' in event)) return;
      const round = event.type === 'approval-closed' ? event.round : undefined;
      await deps.policy.approvalEnded(approvalId(run, event.stepId, round), ended);
    },
  };
}
