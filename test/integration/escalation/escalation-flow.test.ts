import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createPagers } from '../../../src/adapters/pager/create-pagers.js';
import { createPageDispatcher } from '../../../src/escalation/dispatcher.js';
import { createEscalationPolicy } from '../../../src/escalation/escalation-policy.js';
import type { EscalationIntent } from '../../../src/escalation/policy.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { instantClock, startPagerDutyStandIn, type PagerDutyStandIn } from '../../support/pager-stand-ins.js';

const MIN = 60_000;
const KEY = 'pd-routing-key-0123456789abcdef';

describe('escalation from alert to pager', () => {
  let pd: PagerDutyStandIn | undefined;
  afterEach(async () => pd?.close());

  it('pages an unacknowledged alert, acknowledges it from Slack and resolves it on recovery', async () => {
    pd = await startPagerDutyStandIn(KEY);
    const clock = new ManualClock();
    const logger = new RecordingLogger();
    const escalation = {
      pagerduty: { routingKeyEnv: 'PD', url: pd.url },
      pageAfterMs: 5 * MIN,
      approvalReminderMs: 5 * MIN,
      approvalPageMs: 10 * MIN,
    };
    const dispatcher = createPageDispatcher({
      pagers: createPagers(escalation, { pagerduty: KEY }, { clock: instantClock() }),
      clock,
      logger,
      registry: new Registry(),
    });
    const notes: string[] = [];
    const policy = createEscalationPolicy({
      settings: { cell: 'my-core-cell', ...escalation, paging: true },
      clock,
      logger,
      emit: (intent: EscalationIntent) => {
        if (intent.type === 'page') dispatcher.dispatch(intent.event);
        else notes.push(intent.text);
      },
    });
    await policy.start();
    await policy.alertOpened({
      id: 'cn1-k1',
      node: 'cn1',
      role: 'cn',
      condition: 'stalled',
      since: clock.now(),
    });
    await clock.advance(5 * MIN);
    await dispatcher.idle();
    expect(pd.incidents.get('cn1-k1')).toBe('triggered');
    expect(notes).toEqual([expect.stringContaining('Paging the on-call')]);

    await policy.alertAcknowledged('cn1-k1', 'U0AAA');
    await dispatcher.idle();
    expect(pd.incidents.get('cn1-k1')).toBe('acknowledged');

    await policy.alertResolved('cn1-k1');
    await dispatcher.idle();
    expect(pd.incidents.get('cn1-k1')).toBe('resolved');
    expect(logger.text()).not.toContain(KEY);
    await dispatcher.close();
  });
});
