/**
 * What the run presenter posts for each run event: a list of tasks, run in order by the run's queue
 * (./run-presenter.ts). Rendering is src/views/run.ts; this decides which message is posted, in the
 * thread or as an edit of an approval request.
 */
import type { CellopsConfig } from '../config/config.js';
import type { MessageRef } from '../ports/chat.js';
import type { Clock } from '../ports/clock.js';
import type { RunEvent, RunRecord } from '../runbooks/types.js';
import {
  renderApprovalDecided,
  renderApprovalRequest,
  renderPlan,
  renderRunNote,
  renderRunResult,
  renderStepFinished,
  renderStepStarted,
  type ApprovalView,
} from '../views/run.js';
import { escapeText, mention, type RenderedMessage } from '../views/kit.js';

export interface Task {
  readonly kind: 'thread' | 'step-started';
  readonly stepId?: string;
  readonly run: () => Promise<void>;
}

/** The presenter's means of posting, given to the tasks. */
export interface ThreadPoster {
  readonly config: CellopsConfig;
  readonly clock: Clock;
  readonly view: ApprovalView;
  /** Posts the run message unless it exists (waiting for another replica's ref when `wait`). */
  ensureRunMessage(run: RunRecord, wait: boolean): Promise<MessageRef>;
  postInThread(run: RunRecord, rendered: RenderedMessage): Promise<MessageRef>;
  /** Edits the approval request of `stepId`'s current round. */
  editApproval(run: RunRecord, stepId: string, rendered: RenderedMessage): Promise<void>;
  /** Remembers where the approval request of `stepId`'s current round is. */
  saveApprovalRef(run: RunRecord, stepId: string, ref: MessageRef): Promise<void>;
}

function renderDecision(
  poster: ThreadPoster,
  run: RunRecord,
  event: Extract<RunEvent, { type: 'approval-decided' }>,
): RenderedMessage {
  const step = run.steps.find((s) => s.id === event.stepId);
  if (event.approval.decision === 'abort') {
    return renderApprovalDecided(run, event.stepId, { kind: 'aborted', by: event.approval });
  }
  if (event.final) {
    const all = step?.approvals.filter((a) => a.decision === 'approve') ?? [];
    return renderApprovalDecided(run, event.stepId, { kind: 'approved', by: event.approval, all });
  }
  return renderApprovalRequest(
    run,
    event.stepId,
    poster.view,
    step?.approvalExpiresAt ?? poster.clock.now() + poster.config.slack.approvalTimeoutMs,
  );
}

export function tasksFor(poster: ThreadPoster, run: RunRecord, event: RunEvent): Task[] {
  const { clock } = poster;
  const thread = (render: () => RenderedMessage): Task => ({
    kind: 'thread',
    run: async () => {
      await poster.postInThread(run, render());
    },
  });
  switch (event.type) {
    case 'run-started':
      return [
        {
          kind: 'thread',
          run: async () => {
            await poster.ensureRunMessage(run, false);
            await poster.postInThread(run, renderPlan(run.summary, run.steps, { dryRun: run.dryRun }));
          },
        },
      ];
    case 'step-started':
      return [
        {
          kind: 'step-started',
          stepId: event.stepId,
          run: async () => {
            await poster.postInThread(run, renderStepStarted(run, event.stepId));
          },
        },
      ];
    case 'step-output':
      // Shown as an excerpt when the step finishes; posting every line would flood the thread.
      return [];
    case 'step-finished':
      return [thread(() => renderStepFinished(run, event.stepId, event.status))];
    case 'approval-requested':
      return [
        {
          kind: 'thread',
          run: async () => {
            const ref = await poster.postInThread(
              run,
              renderApprovalRequest(run, event.stepId, poster.view, event.expiresAt),
            );
            await poster.saveApprovalRef(run, event.stepId, ref);
          },
        },
      ];
    case 'approval-decided':
      return [
        {
          kind: 'thread',
          run: () => poster.editApproval(run, event.stepId, renderDecision(poster, run, event)),
        },
      ];
    case 'approval-expired':
    case 'approval-closed': {
      const kind = event.type === 'approval-expired' ? 'expired' : 'closed';
      return [
        {
          kind: 'thread',
          run: () =>
            poster.editApproval(
              run,
              event.stepId,
              renderApprovalDecided(run, event.stepId, { kind, at: clock.now() }),
            ),
        },
      ];
    }
    case 'run-paused':
      return [
        thread(() =>
          renderRunNote(
            `:double_vertical_bar: Paused: ${escapeText(event.reason)}. \`/cell resume ${escapeText(run.id)}\` continues; \`/cell abort ${escapeText(run.id)}\` stops it.`,
          ),
        ),
      ];
    case 'run-resumed':
      return [thread(() => renderRunNote(`:arrow_forward: Resumed by ${mention(event.user)}.`))];
    case 'run-finished':
      return [thread(() => renderRunResult(run, clock.now()))];
  }
}
