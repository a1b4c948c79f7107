import { describe, expect, it } from 'vitest';
import { alertActionValue, parseAlertActionValue } from '../../../src/views/action-values.js';
import {
  recoveredNote,
  renderAlertMessage,
  renderResolvedMessage,
  renderThreadUpdate,
  type AlertView,
} from '../../../src/views/alert.js';
import { ALERT_ACTIONS } from '../../../src/views/action-ids.js';

const openedAt = Date.UTC(2026, 10, 26, 3, 0, 0);
const view: AlertView = {
  incidentId: 'cn1-abc',
  node: 'cn1',
  kind: 'lagging',
  openedAt,
  height: 1000,
  lag: 42,
  referenceHeight: 1042,
};

describe('alert blocks', () => {
  it('the alert names node, condition, lag and since when, with the three buttons carrying node and incident', () => {
    const message = renderAlertMessage(view);
    expect(message.text).toBe('cn1 is lagging behind the chain');
    const body = JSON.stringify(message.blocks);
    expect(body).toContain('*Lag:* 42 blocks (reference 1042)');
    expect(body).toContain(`<!date^${openedAt / 1000}^`);
    expect(body).toContain('2026-11-26 03:00:00 UTC');
    const actions = message.blocks.find((b) => b.type === 'actions') as {
      elements: { action_id: string; style?: string; value: string }[];
    };
    expect(actions.elements.map((e) => e.action_id)).toEqual([
      ALERT_ACTIONS.startFailover,
      ALERT_ACTIONS.mute,
      ALERT_ACTIONS.acknowledge,
    ]);
    expect(actions.elements[0]?.style).toBe('danger');
    // Start failover asks first, as Approve and Abort do; Mute and Acknowledge change nothing on the cell.
    expect(actions.elements[0]).toMatchObject({
      confirm: {
        title: { type: 'plain_text', text: 'Fail over cn1?' },
        confirm: { type: 'plain_text', text: 'Start failover' },
        deny: { type: 'plain_text', text: 'Cancel' },
        style: 'danger',
      },
    });
    expect(actions.elements.slice(1).some((e) => 'confirm' in e)).toBe(false);
    for (const e of actions.elements)
      expect(JSON.parse(e.value)).toEqual({ node: 'cn1', incident: 'cn1-abc' });
  });

  it('shows who acknowledged and until when it is muted', () => {
    const body = JSON.stringify(
      renderAlertMessage({
        ...view,
        acknowledgedBy: 'U0AAA',
        mutedUntil: openedAt + 1_800_000,
        mutedBy: 'U0BBB',
      }).blocks,
    );
    expect(body).toContain('Acknowledged by <@U0AAA>');
    expect(body).toContain('Muted by <@U0BBB> until');
  });

  it('names the serving machine after a failover, and a check failure carries its message', () => {
    expect(renderAlertMessage({ ...view, servedBy: 'cn1s', kind: 'down' }).text).toBe(
      'cn1 (served by cn1s) is down: probes fail',
    );
    const check = renderAlertMessage({ ...view, kind: 'check-failed', detail: 'backup checksum differs' });
    expect(JSON.stringify(check.blocks)).toContain('backup checksum differs');
  });

  it('the resolved message says how long it lasted and has no buttons', () => {
    const resolved = renderResolvedMessage(view, openedAt + 252_000);
    expect(resolved.text).toBe('Resolved after 4m12s: cn1 is lagging behind the chain');
    expect(resolved.blocks.some((b) => b.type === 'actions')).toBe(false);
    expect(recoveredNote(252_000)).toContain('Recovered after 4m12s');
  });

  it('a thread update joins its notes', () => {
    expect(renderThreadUpdate(['a', 'b']).text).toBe('a\nb');
  });

  it('button values round-trip, and anything else is refused', () => {
    expect(parseAlertActionValue(alertActionValue('cn2', 'cn2-x'))).toEqual({
      node: 'cn2',
      incident: 'cn2-x',
    });
    expect(parseAlertActionValue('{"node":1}')).toBeUndefined();
    expect(parseAlertActionValue('not json')).toBeUndefined();
  });
});
