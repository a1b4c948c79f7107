import { beforeEach, describe, expect, it } from 'vitest';
import { createEscalationPolicy, type EscalationPolicy } from '../../../src/escalation/escalation-policy.js';
import { createMemoryEscalationStore } from '../../../src/escalation/escalation-store.js';
import type {
  AlertFacts,
  ApprovalFacts,
  EscalationIntent,
  EscalationSettings,
} from '../../../src/escalation/policy.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { approvalFacts } from '../../support/escalation-replicas.js';

const MIN = 60_000;
const settings: EscalationSettings = {
  cell: 'my-core-cell',
  pageAfterMs: 5 * MIN,
  approvalReminderMs: 5 * MIN,
  approvalPageMs: 10 * MIN,
  paging: true,
};

describe('escalation policy', () => {
  let clock: ManualClock;
  let intents: EscalationIntent[];
  let store: ReturnType<typeof createMemoryEscalationStore>;
  let policy: EscalationPolicy;

  const make = (overrides: Partial<EscalationSettings> = {}) =>
    createEscalationPolicy({
      settings: { ...settings, ...overrides },
      clock,
      logger: new RecordingLogger(),
      store,
      emit: (intent) => {
        intents.push(intent);
      },
    });

  beforeEach(async () => {
    clock = new ManualClock();
    intents = [];
    store = createMemoryEscalationStore();
    policy = make();
    await policy.start();
  });

  const alert = (overrides: Partial<AlertFacts> = {}): AlertFacts => ({
    id: 'cn1-abc',
    node: 'cn1',
    role: 'cn',
    condition: 'down',
    since: clock.now() - 9_000,
    lag: 12,
    threadUrl: 'https://slack.example/archives/C1/p1',
    thread: { channel: 'C1', ts: '1.1' },
    ...overrides,
  });
  const pages = () =>
    intents.flatMap((i) =>
      i.type === 'page' ? [`${i.event.action} ${i.event.key} ${i.event.severity}`] : [],
    );

  describe('alerts', () => {
    it('pages a CN down not acknowledged within pageAfter, with node, condition, since, lag and link', async () => {
      const facts = alert();
      await policy.alertOpened(facts);
      await clock.advance(5 * MIN - 1);
      expect(pages()).toEqual([]);
      await clock.advance(1);
      expect(pages()).toEqual(['trigger cn1-abc critical']);
      const page = intents.find((i) => i.type === 'page');
      expect(page?.type === 'page' && page.event).toMatchObject({
        node: 'cn1',
        condition: 'down',
        since: facts.since,
        lag: 12,
        threadUrl: 'https://slack.example/archives/C1/p1',
        summary: expect.stringContaining('cn1 down since'),
      });
      expect(intents.some((i) => i.type === 'alert-note' && i.text.includes('Paging the on-call'))).toBe(
        true,
      );
    });

    it('does not page an alert acknowledged in Slack before the delay', async () => {
      await policy.alertOpened(alert());
      await clock.advance(4 * MIN);
      await policy.alertAcknowledged('cn1-abc', 'U0AAA');
      await clock.advance(60 * MIN);
      expect(intents).toEqual([]);
    });

    it('acknowledges the page when acknowledged in Slack after it, and resolves it on recovery', async () => {
      await policy.alertOpened(alert());
      await clock.advance(5 * MIN);
      await policy.alertAcknowledged('cn1-abc', 'U0AAA');
      await policy.alertResolved('cn1-abc');
      expect(pages()).toEqual([
        'trigger cn1-abc critical',
        'acknowledge cn1-abc critical',
        'resolve cn1-abc critical',
      ]);
      expect(policy.entries()).toEqual([]);
    });

    it('sends nothing to the pager when an alert that was never paged recovers', async () => {
      await policy.alertOpened(alert());
      await clock.advance(2 * MIN);
      await policy.alertResolved('cn1-abc');
      await clock.advance(10 * MIN);
      expect(intents).toEqual([]);
    });

    it('pages a lagging CN as error and a down standby as warning; does not page an unknown node', async () => {
      await policy.alertOpened(alert({ id: 'a', condition: 'lagging' }));
      await policy.alertOpened(alert({ id: 'b', node: 'cn1s', role: 'standby', condition: 'down' }));
      await policy.alertOpened(alert({ id: 'c', condition: 'unknown' }));
      await clock.advance(5 * MIN);
      expect(pages()).toEqual(['trigger a error', 'trigger b warning']);
    });

    it('triggers again when a paged alert gets worse, not when it gets better', async () => {
      await policy.alertOpened(alert({ condition: 'lagging' }));
      await clock.advance(5 * MIN);
      await policy.alertChanged(alert({ condition: 'down' }));
      await policy.alertChanged(alert({ condition: 'lagging' }));
      expect(pages()).toEqual(['trigger cn1-abc error', 'trigger cn1-abc critical']);
    });

    it('counts the delay from when the alert was opened, across a restart', async () => {
      await policy.alertOpened(alert(), clock.now());
      await clock.advance(3 * MIN);
      policy.stop();
      const restarted = make();
      await restarted.start();
      await clock.advance(2 * MIN);
      expect(pages()).toEqual(['trigger cn1-abc critical']);
      await restarted.alertResolved('cn1-abc');
      expect(pages()).toEqual(['trigger cn1-abc critical', 'resolve cn1-abc critical']);
      expect(store.size).toBe(0);
    });

    it('pages at once on start for an alert that fell due while the process was down', async () => {
      await policy.alertOpened(alert());
      policy.stop();
      await clock.advance(30 * MIN);
      expect(pages()).toEqual([]);
      await make().start();
      expect(pages()).toEqual(['trigger cn1-abc critical']);
    });

    it('never pages without a pager configured', async () => {
      policy.stop();
      const quiet = make({ paging: false });
      await quiet.start();
      await quiet.alertOpened(alert());
      await clock.advance(60 * MIN);
      expect(intents).toEqual([]);
    });
  });

  describe('approvals', () => {
    const approval = (overrides: Partial<ApprovalFacts> = {}): ApprovalFacts =>
      approvalFacts(clock, { approverUsers: ['U0AAA'], ...overrides });
    const kinds = () => intents.map((i) => (i.type === 'page' ? `page ${i.event.action}` : i.type));

    it('reminds the approvers, then pages, then says when the run will pause', async () => {
      await policy.approvalRequested(approval());
      await clock.advance(5 * MIN - 1);
      expect(intents).toEqual([]);
      await clock.advance(1);
      expect(kinds()).toEqual(['approval-reminder']);
      const reminder = intents[0];
      expect(reminder?.type === 'approval-reminder' && reminder.text).toContain('<!subteam^S0ONCALL>');
      await clock.advance(5 * MIN);
      expect(kinds()).toEqual(['approval-reminder', 'page trigger']);
      // 10 % of 15 minutes before the expiry.
      await clock.advance(3.5 * MIN);
      expect(kinds()).toEqual(['approval-reminder', 'page trigger', 'approval-expiry-notice']);
      const notice = intents[2];
      expect(notice?.type === 'approval-expiry-notice' && notice.text).toMatch(
        /in 1m30s .* pauses at 2026-11-26 03:15 UTC/,
      );
    });

    it('resolves its page when the approval is decided, and stops reminding', async () => {
      await policy.approvalRequested(approval());
      await clock.advance(10 * MIN);
      await policy.approvalEnded('run-1:swap-key:1', 'approved');
      await clock.advance(10 * MIN);
      expect(kinds()).toEqual(['approval-reminder', 'page trigger', 'page resolve']);
      const [, trigger, resolve] = intents;
      expect(trigger?.type === 'page' && resolve?.type === 'page' && resolve.event.key).toBe(
        trigger?.type === 'page' && trigger.event.key,
      );
    });

    it('sends nothing once a decision came before the reminder', async () => {
      await policy.approvalRequested(approval());
      await clock.advance(4 * MIN);
      await policy.approvalEnded('run-1:swap-key:1', 'aborted');
      await clock.advance(20 * MIN);
      expect(intents).toEqual([]);
    });

    it('skips stages that would come after the expiry, and mentions users when there is no group', async () => {
      await policy.approvalRequested(approval({ expiresAt: clock.now() + 8 * MIN, approverGroups: [] }));
      await clock.advance(10 * MIN);
      expect(kinds()).toEqual(['approval-reminder', 'approval-expiry-notice']);
      expect(intents[0]?.type === 'approval-reminder' && intents[0].text).toContain('<@U0AAA>');
    });
  });
});
