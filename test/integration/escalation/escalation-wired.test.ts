/**
 * Escalation through the real composition (src/app/create-cellops.ts, as the sandbox builds it): the real
 * monitor probing the simulated cell, the real engine and runbooks, the console chat, and the real pager
 * adapters talking HTTP to the loopback stand-ins of test/support/pager-stand-ins.ts. Short delays on real
 * timers; every wait polls for the state it needs, no assertion is about time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createPagers } from '../../../src/adapters/pager/create-pagers.js';
import { createSystemClock } from '../../../src/infra/system-clock.js';
import type { ConsoleMessage } from '../../../src/sandbox/console-chat.js';
import type { Sandbox } from '../../../src/sandbox/start-sandbox.js';
import { ALERT_ACTIONS } from '../../../src/views/action-ids.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import {
  startOpsgenieStandIn,
  startPagerDutyStandIn,
  startWebhookStandIn,
  type PagerStandIn,
} from '../../support/pager-stand-ins.js';
import { ALICE, BOB, buttons, startFastSandbox, until } from '../../support/sandbox-harness.js';

const PD_KEY = 'pd-routing-key-wired-0123456789';
const OG_KEY = 'og-api-key-wired-0123456789abcdef';
const HOOK_SECRET = 'webhook-secret-wired-0123456789';

let sandbox: Sandbox | undefined;
const standIns: PagerStandIn[] = [];

afterEach(async () => {
  await sandbox?.stop();
  sandbox = undefined;
  for (const s of standIns.splice(0)) await s.close();
});

async function startWithPagers(logger: RecordingLogger, pageAfter = '1s') {
  const pd = await startPagerDutyStandIn(PD_KEY);
  const og = await startOpsgenieStandIn(OG_KEY);
  const hook = await startWebhookStandIn(HOOK_SECRET);
  standIns.push(pd, og, hook);
  const escalation = {
    pagerduty: { routingKeyEnv: 'PD', url: pd.url },
    opsgenie: { apiKeyEnv: 'OG', url: og.url },
    webhook: { url: `${hook.url}/cellops`, secretEnv: 'HOOK' },
    pageAfterMs: 1_000,
    approvalReminderMs: 60_000,
    approvalPageMs: 120_000,
  };
  const pagers = createPagers(
    escalation,
    { pagerduty: PD_KEY, opsgenie: OG_KEY, webhook: HOOK_SECRET },
    { clock: createSystemClock() },
  );
  sandbox = await startFastSandbox({ logger, pagers, escalation: { pageAfter } });
  return { sb: sandbox, pd, og, hook };
}

function alertOf(sb: Sandbox, node: string): Promise<ConsoleMessage> {
  return until(`the ${node} alert`, () =>
    sb.chat
      .messages()
      .find(
        (m) =>
          !m.threadTs &&
          m.text.startsWith(node) &&
          buttons(m).some((b) => b.action_id === ALERT_ACTIONS.acknowledge),
      ),
  );
}

function threadOf(sb: Sandbox, parent: ConsoleMessage): string {
  return sb.chat
    .messages()
    .filter((m) => m.threadTs === parent.ts)
    .map((m) => m.text)
    .join('\n');
}

function everything(sb: Sandbox, logger: RecordingLogger): string {
  return `${JSON.stringify(sb.chat.messages())}\n${logger.text()}`;
}

describe('escalation wired into cellops', () => {
  it('pages an alert nobody acknowledges, acknowledges the page from Slack, and resolves it on recovery', async () => {
    const logger = new RecordingLogger();
    const { sb, pd, og, hook } = await startWithPagers(logger);
    await sb.handlers.fault('cn1', 'stall', ALICE);
    const alert = await alertOf(sb, 'cn1');

    const key = await until('the page', () => [...pd.incidents.keys()].find((k) => k.startsWith('cn1')));
    await until('triggered everywhere', () =>
      pd.incidents.get(key) === 'triggered' && og.alerts.get(key) === 'open' ? true : undefined,
    );
    await until('the note in the alert thread', () =>
      threadOf(sb, alert).includes('Paging the on-call') ? true : undefined,
    );
    const trigger = pd.requests.find((r) => JSON.stringify(r.body).includes('"trigger"'));
    expect(JSON.stringify(trigger?.body)).toContain('cn1');

    const ack = buttons(alert).find((b) => b.action_id === ALERT_ACTIONS.acknowledge);
    await sb.handlers.action({
      actionId: ALERT_ACTIONS.acknowledge,
      value: ack?.value ?? '',
      user: BOB,
      messageTs: alert.ts,
      threadTs: alert.ts,
    });
    await until('acknowledged at the pagers', () =>
      pd.incidents.get(key) === 'acknowledged' && og.alerts.get(key) === 'acked' ? true : undefined,
    );

    await sb.handlers.fault('cn1', 'heal', ALICE);
    await until('resolved at the pagers', () =>
      pd.incidents.get(key) === 'resolved' && og.alerts.get(key) === 'closed' ? true : undefined,
    );
    const events = await until('the webhook events', () =>
      hook.events.length >= 3 ? hook.events : undefined,
    );
    expect(events.map((e) => (e as { event: string }).event)).toEqual(['trigger', 'acknowledge', 'resolve']);
    expect(threadOf(sb, alert)).toContain('Recovered');

    const seen = everything(sb, logger);
    for (const secret of [PD_KEY, OG_KEY, HOOK_SECRET]) expect(seen).not.toContain(secret);
  });

  it('an alert acknowledged before its delay is never paged', async () => {
    const logger = new RecordingLogger();
    // Long enough that the acknowledgement always comes first.
    const { sb: sb2, pd } = await startWithPagers(logger, '10m');
    await sb2.handlers.fault('cn1', 'stall', ALICE);
    const alert = await alertOf(sb2, 'cn1');
    await sb2.handlers.command('/cell mute cn1 1h', ALICE);
    await until('the policy to know it is muted', async () => {
      const panel = await sb2.handlers.pager?.();
      return panel?.waiting.some((w) => w.state === 'acknowledged') ? true : undefined;
    });
    await sb2.handlers.fault('cn1', 'heal', ALICE);
    await until('the recovery', () => (threadOf(sb2, alert).includes('Recovered') ? true : undefined));
    expect(pd.requests).toEqual([]);
  });

  it('a failing pager leaves the monitor running and says so in the alert thread, without the secret', async () => {
    const logger = new RecordingLogger();
    const { sb, pd, hook } = await startWithPagers(logger);
    // Opsgenie-style error answers that repeat the request and its Authorization header.
    hook.answerAlways({ status: 500, echo: true });
    await sb.handlers.fault('cn1', 'stall', ALICE);
    const alert = await alertOf(sb, 'cn1');
    await until('the failure note', () =>
      threadOf(sb, alert).includes('Could not page via webhook (trigger)') ? true : undefined,
    );
    // PagerDuty got it all the same.
    expect([...pd.incidents.values()]).toContain('triggered');

    // The monitor carries on: another node's alert is posted and paged.
    await sb.handlers.fault('cn2', 'stop', ALICE);
    await alertOf(sb, 'cn2');
    await until('cn2 paged', () =>
      [...pd.incidents.keys()].some((k) => k.startsWith('cn2')) ? true : undefined,
    );
    expect(logger.text()).toContain('page failed');
    const seen = everything(sb, logger);
    for (const secret of [PD_KEY, OG_KEY, HOOK_SECRET]) expect(seen).not.toContain(secret);
  });
});
