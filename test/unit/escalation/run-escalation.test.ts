import { describe, expect, it } from 'vitest';
import { createEscalationPolicy } from '../../../src/escalation/escalation-policy.js';
import type { EscalationIntent } from '../../../src/escalation/policy.js';
import { createRunEscalation } from '../../../src/escalation/run-escalation.js';
import type { RunRecord } from '../../../src/runbooks/types.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';

const MIN = 60_000;

describe('run escalation observer', () => {
  it('turns an approval request into reminders and a page, and a final decision into a resolve', async () => {
    const clock = new ManualClock();
    const intents: EscalationIntent[] = [];
    const policy = createEscalationPolicy({
      settings: {
        cell: 'c',
        pageAfterMs: 5 * MIN,
        approvalReminderMs: 5 * MIN,
        approvalPageMs: 10 * MIN,
        paging: true,
      },
      clock,
      logger: new RecordingLogger(),
      emit: (i) => void intents.push(i),
    });
    await policy.start();
    const observer = createRunEscalation({
      policy,
      approvers: { users: ['U0AAA'], usergroups: ['S0ONCALL'] },
      chat: { permalink: async (ref) => `https://slack.example/${ref.ts}` },
      approvalTimeoutMs: 15 * MIN,
    });
    const run = {
      id: 'run-1',
      runbook: 'failover',
      node: 'cn1',
      thread: { channel: 'C1', ts: '1.5' },
      steps: [{ id: 'swap', title: 'Swap the nodekey', approvalRound: 2 }],
    } as unknown as RunRecord;

    await observer.onRunEvent(run, {
      type: 'approval-requested',
      stepId: 'swap',
      expiresAt: clock.now() + 15 * MIN,
    });
    await clock.advance(10 * MIN);
    const approve = { user: 'U0BBB', decision: 'approve' as const, at: clock.now() };
    await observer.onRunEvent(run, {
      type: 'approval-decided',
      stepId: 'swap',
      approval: approve,
      final: false,
    });
    expect(intents.map((i) => (i.type === 'page' ? i.event.action : i.type))).toEqual([
      'approval-reminder',
      'trigger',
    ]);
    await observer.onRunEvent(run, {
      type: 'approval-decided',
      stepId: 'swap',
      approval: approve,
      final: true,
    });
    const pages = intents.flatMap((i) => (i.type === 'page' ? [i.event] : []));
    expect(pages.map((p) => [p.action, p.key, p.threadUrl])).toEqual([
      ['trigger', 'approval:run-1:swap:2', 'https://slack.example/1.5'],
      ['resolve', 'approval:run-1:swap:2', 'https://slack.example/1.5'],
    ]);
  });
});
