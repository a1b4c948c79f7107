/**
 * Reading a run's Slack messages off the Web API stand-in: the approval requests (with their button
 * values), the edits of a message, the result post. Shared by the HTTP and Socket Mode end-to-end tests.
 */
import { RUN_ACTIONS } from '../../src/views/action-ids.js';
import type { ApiCall, SlackStandIn } from './slack-stand-in.js';

interface WithSlack {
  readonly slack: SlackStandIn;
}

export function blocksText(call: ApiCall): string {
  return JSON.stringify(call.args.blocks ?? []);
}

export interface ApprovalRequest {
  readonly ts: string;
  readonly value: string;
}

/** Waits for the approval request of `stepId` and returns its ts and button value. */
export async function approvalRequest(env: WithSlack, stepId: string): Promise<ApprovalRequest> {
  const call = await env.slack.waitFor(`the approval request of ${stepId}`, () =>
    env.slack
      .callsOf('chat.postMessage')
      .find(
        (c) =>
          blocksText(c).includes(RUN_ACTIONS.approve) && blocksText(c).includes(`"stepId\\":\\"${stepId}`),
      ),
  );
  const blocks = call.args.blocks as { type: string; elements?: { action_id: string; value: string }[] }[];
  const approve = blocks
    .find((b) => b.type === 'actions')
    ?.elements?.find((e) => e.action_id === RUN_ACTIONS.approve);
  if (!approve) throw new Error('no Approve button');
  return { ts: String(call.result?.ts), value: approve.value };
}

export function updatesOf(env: WithSlack, ts: string): ApiCall[] {
  return env.slack.callsOf('chat.update').filter((c) => c.args.ts === ts);
}

export async function waitForResult(env: WithSlack, text: RegExp): Promise<ApiCall> {
  return env.slack.waitFor(`a post matching ${String(text)}`, () =>
    env.slack.callsOf('chat.postMessage').find((c) => text.test(String(c.args.text))),
  );
}
