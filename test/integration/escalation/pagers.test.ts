import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPagers } from '../../../src/adapters/pager/create-pagers.js';
import type { EscalationConfig } from '../../../src/config/config.js';
import { createPageDispatcher, type PageDispatcher } from '../../../src/escalation/dispatcher.js';
import type { PagerError } from '../../../src/escalation/pager-error.js';
import type { PageEvent } from '../../../src/ports/pager.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import {
  instantClock,
  startOpsgenieStandIn,
  startPagerDutyStandIn,
  startWebhookStandIn,
  verifyCellopsSignature,
  type OpsgenieStandIn,
  type PagerDutyStandIn,
  type WebhookStandIn,
} from '../../support/pager-stand-ins.js';

const ROUTING_KEY = 'R0UTINGKEY0123456789abcdefSECRET';
const API_KEY = 'genie-5ec2e7-0000-1111-2222-333344445555';
const WEBHOOK_SECRET = 'whsec-d0-n0t-l0g-me';

const at = Date.UTC(2026, 10, 26, 3, 5, 0);
const event = (action: PageEvent['action'], key = 'cn1-mkv3x9'): PageEvent => ({
  action,
  key,
  summary: 'my-core-cell: cn1 down since 2026-11-26 03:00 UTC, 42 blocks behind',
  severity: 'critical',
  cell: 'my-core-cell',
  node: 'cn1',
  condition: 'down',
  since: Date.UTC(2026, 10, 26, 3, 0, 0),
  lag: 42,
  threadUrl: 'https://example.slack.com/archives/C0123ALERTS/p1764126000000100',
  at,
});

interface Failure {
  readonly target: string;
  readonly event: PageEvent;
  readonly error: Error;
}

describe('pagers against local stand-ins', () => {
  let pd: PagerDutyStandIn;
  let og: OpsgenieStandIn;
  let hook: WebhookStandIn;
  let clock: ReturnType<typeof instantClock>;
  let logger: RecordingLogger;
  let registry: Registry;
  let failures: Failure[];
  let dispatcher: PageDispatcher;

  beforeEach(async () => {
    [pd, og, hook] = await Promise.all([
      startPagerDutyStandIn(ROUTING_KEY),
      startOpsgenieStandIn(API_KEY),
      startWebhookStandIn(WEBHOOK_SECRET),
    ]);
    clock = instantClock();
    logger = new RecordingLogger();
    registry = new Registry();
    failures = [];
    const escalation: EscalationConfig = {
      pagerduty: { routingKeyEnv: 'PAGERDUTY_ROUTING_KEY', url: pd.url },
      opsgenie: { apiKeyEnv: 'OPSGENIE_API_KEY', url: og.url },
      webhook: { url: `${hook.url}/cellops`, secretEnv: 'CELLOPS_WEBHOOK_SECRET' },
      pageAfterMs: 300_000,
      approvalReminderMs: 300_000,
      approvalPageMs: 600_000,
    };
    const pagers = createPagers(
      escalation,
      { pagerduty: ROUTING_KEY, opsgenie: API_KEY, webhook: WEBHOOK_SECRET },
      { clock, timeoutMs: 5_000 },
    );
    dispatcher = createPageDispatcher({
      pagers,
      clock,
      logger,
      registry,
      random: () => 0.5,
      onFailure: (target, failed, error) => {
        failures.push({ target, event: failed, error });
      },
    });
  });

  afterEach(async () => {
    await dispatcher.close();
    await Promise.all([pd.close(), og.close(), hook.close()]);
  });

  async function pageCount(target: string, action: string, outcome: string): Promise<number> {
    const metric = await registry.getSingleMetric('cellops_pages_total')?.get();
    const value = metric?.values.find(
      (v) => v.labels.target === target && v.labels.action === action && v.labels.outcome === outcome,
    );
    return value?.value ?? 0;
  }

  it('triggers, acknowledges and resolves the same incident at each pager', async () => {
    dispatcher.dispatch(event('trigger'));
    await dispatcher.idle();
    expect(pd.incidents.get('cn1-mkv3x9')).toBe('triggered');
    expect(og.alerts.get('cn1-mkv3x9')).toBe('open');

    dispatcher.dispatch(event('acknowledge'));
    await dispatcher.idle();
    expect(pd.incidents.get('cn1-mkv3x9')).toBe('acknowledged');
    expect(og.alerts.get('cn1-mkv3x9')).toBe('acked');

    dispatcher.dispatch(event('resolve'));
    await dispatcher.idle();
    expect(pd.incidents.get('cn1-mkv3x9')).toBe('resolved');
    expect(og.alerts.get('cn1-mkv3x9')).toBe('closed');
    expect(hook.events.map((e) => (e as { event: string }).event)).toEqual([
      'trigger',
      'acknowledge',
      'resolve',
    ]);
    expect(failures).toEqual([]);
    expect(await pageCount('pagerduty', 'trigger', 'delivered')).toBe(1);
    expect(await pageCount('webhook', 'resolve', 'delivered')).toBe(1);
  });

  it('sends PagerDuty what a phone needs: summary, source, severity, the thread link and details', async () => {
    dispatcher.dispatch(event('trigger'));
    await dispatcher.idle();
    const body = pd.requests[0]?.body;
    expect(body).toMatchObject({
      routing_key: ROUTING_KEY,
      event_action: 'trigger',
      dedup_key: 'cn1-mkv3x9',
      payload: {
        summary: expect.stringContaining('cn1 down'),
        source: 'my-core-cell/cn1',
        severity: 'critical',
        timestamp: '2026-11-26T03:05:00.000Z',
        custom_details: {
          node: 'cn1',
          condition: 'down',
          since: '2026-11-26T03:00:00.000Z',
          lag: '42 blocks',
        },
      },
      links: [{ href: event('trigger').threadUrl, text: 'Slack thread' }],
    });
  });

  it('creates the Opsgenie alert by alias with priority, details and the GenieKey header', async () => {
    dispatcher.dispatch(event('trigger'));
    dispatcher.dispatch(event('acknowledge'));
    await dispatcher.idle();
    const [create, ack] = og.requests;
    expect(create?.headers.authorization).toBe(`GenieKey ${API_KEY}`);
    expect(create?.body).toMatchObject({
      alias: 'cn1-mkv3x9',
      priority: 'P1',
      details: { node: 'cn1', lag: '42 blocks' },
    });
    expect(ack?.path).toBe('/v2/alerts/cn1-mkv3x9/acknowledge?identifierType=alias');
  });

  it('signs the webhook so that the receiver can verify body and timestamp', async () => {
    dispatcher.dispatch(event('trigger'));
    await dispatcher.idle();
    const request = hook.requests[0];
    expect(request?.status).toBe(200);
    expect(request && verifyCellopsSignature(WEBHOOK_SECRET, request, Date.now())).toBe(true);
    expect(request && verifyCellopsSignature('another-secret', request, Date.now())).toBe(false);
    expect(
      request &&
        verifyCellopsSignature(
          WEBHOOK_SECRET,
          { ...request, raw: request.raw.replace('cn1', 'cn2') },
          Date.now(),
        ),
    ).toBe(false);
    expect(request?.body).toEqual({
      version: 1,
      event: 'trigger',
      incidentId: 'cn1-mkv3x9',
      cell: 'my-core-cell',
      node: 'cn1',
      condition: 'down',
      since: '2026-11-26T03:00:00.000Z',
      lag: 42,
      severity: 'critical',
      threadUrl: event('trigger').threadUrl,
      summary: event('trigger').summary,
      at: '2026-11-26T03:05:00.000Z',
      details: {},
    });
  });

  it('waits as long as a 429 Retry-After says, then delivers', async () => {
    pd.answerNext({ status: 429, retryAfter: '7' });
    dispatcher.dispatch(event('trigger'));
    await dispatcher.idle();
    expect(pd.requests.map((r) => r.status)).toEqual([429, 202]);
    expect(clock.sleeps).toEqual([7_000]);
    expect(pd.incidents.get('cn1-mkv3x9')).toBe('triggered');
  });

  it('backs off exponentially after a 429 without Retry-After and after 5xx, then delivers', async () => {
    og.answerNext({ status: 503 }, 2);
    og.answerNext({ status: 429 });
    dispatcher.dispatch(event('trigger'));
    await dispatcher.idle();
    expect(og.requests.map((r) => r.status)).toEqual([503, 503, 429, 202]);
    // random() = 0.5: three quarters of 1 s, 2 s, 4 s.
    expect(clock.sleeps).toEqual([750, 1_500, 3_000]);
    expect(og.alerts.get('cn1-mkv3x9')).toBe('open');
    expect(failures).toEqual([]);
  });

  it('does not retry a 400 and reports it once', async () => {
    pd.answerNext({ status: 400 });
    dispatcher.dispatch(event('trigger'));
    await dispatcher.idle();
    expect(pd.requests).toHaveLength(1);
    expect(failures.map((f) => [f.target, f.event.action, (f.error as PagerError).code])).toEqual([
      ['pagerduty', 'trigger', 'pager_rejected'],
    ]);
    expect(await pageCount('pagerduty', 'trigger', 'failed')).toBe(1);
  });

  it('keeps paging the other targets while one always fails, reports it, and stays healthy', async () => {
    og.answerAlways({ status: 500 });
    dispatcher.dispatch(event('trigger'));
    dispatcher.dispatch(event('acknowledge'));
    await dispatcher.idle();
    expect(pd.incidents.get('cn1-mkv3x9')).toBe('acknowledged');
    expect(hook.events).toHaveLength(2);
    expect(og.requests).toHaveLength(12); // 6 attempts for each of the two events
    expect(failures.map((f) => `${f.target} ${f.event.action}`)).toEqual([
      'opsgenie trigger',
      'opsgenie acknowledge',
    ]);
    expect(failures[0]?.error.message).toContain('HTTP 500');
    expect(await pageCount('opsgenie', 'trigger', 'failed')).toBe(1);
    expect(await pageCount('pagerduty', 'acknowledge', 'delivered')).toBe(1);

    og.answerAlways(undefined);
    dispatcher.dispatch(event('resolve'));
    await dispatcher.idle();
    expect(og.requests.at(-1)?.status).toBe(202);
    expect(dispatcher.depth('opsgenie')).toBe(0);
  });

  it('reports a pager that cannot be reached, and never blocks the caller', async () => {
    await hook.close();
    // dispatch returns at once, before any pager has answered.
    expect(dispatcher.dispatch(event('trigger'))).toBeUndefined();
    expect(pd.requests).toHaveLength(0);
    await dispatcher.idle();
    expect(failures.map((f) => [f.target, (f.error as PagerError).code])).toEqual([
      ['webhook', 'pager_unavailable'],
    ]);
    expect(pd.incidents.get('cn1-mkv3x9')).toBe('triggered');
  });

  it('never lets a key or secret into logs or errors, even when a pager echoes the request', async () => {
    pd.answerNext({ status: 400, echo: true });
    og.answerNext({ status: 403, echo: true });
    hook.answerNext({ status: 422, echo: true });
    og.answerNext({ status: 429, echo: true });
    dispatcher.dispatch(event('trigger'));
    dispatcher.dispatch(event('resolve', 'other'));
    await dispatcher.idle();
    expect(failures.length).toBeGreaterThanOrEqual(3);
    // The echo did come back with the secret in it: the scrubbing is what keeps it out.
    expect(pd.requests[0]?.raw).toContain(ROUTING_KEY);
    expect(failures.find((f) => f.target === 'opsgenie')?.error.message).toContain('HTTP 403');
    const text = [
      logger.text(),
      ...failures.map((f) => `${f.error.message} ${JSON.stringify(f.error)} ${String(f.error.stack)}`),
    ].join('\n');
    for (const secret of [ROUTING_KEY, API_KEY, WEBHOOK_SECRET]) expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
  });
});
