/**
 * The alert's Slack messages as pure Block Kit: the channel message of an open incident (with its
 * buttons), the same message once resolved, and thread updates. No I/O, so the sandbox and snapshot tests
 * render exactly what Slack gets.
 */
import { formatDuration } from '../config/duration.js';
import type { IncidentKind } from '../monitor/incidents.js';
import { ALERT_ACTIONS } from './action-ids.js';
import { alertActionValue } from './action-values.js';
import { actions, button, context, cutPlain, message, section, type RenderedMessage } from './kit.js';

export interface AlertView {
  readonly incidentId: string;
  /** The node, or the CN role, the incident is about. */
  readonly node: string;
  /** The machine serving the CN role when it is not the node itself (after a failover). */
  readonly servedBy?: string;
  /** A CN's own machine alerted on as the standby of that CN (after a rebuild on it). */
  readonly standbyOf?: string;
  readonly kind: IncidentKind;
  /** When the condition began (epoch ms). */
  readonly openedAt: number;
  readonly height?: number;
  readonly lag?: number;
  readonly referenceHeight?: number;
  /** Last probe error, or the failed check's message. */
  readonly detail?: string;
  readonly acknowledgedBy?: string;
  readonly acknowledgedAt?: number;
  readonly mutedUntil?: number;
  readonly mutedBy?: string;
}

/** Mute length offered by the alert's button. */
export const ALERT_MUTE_MS = 30 * 60_000;

const TITLES: Record<IncidentKind, string> = {
  lagging: 'is lagging behind the chain',
  stalled: 'has stalled: its block height stopped moving',
  down: 'is down: probes fail',
  isolated: 'is isolated: no CN peers',
  'standby-lagging': '(standby) is lagging behind the chain',
  'check-failed': 'failed its readiness check',
  'no-standby': 'has no standby: nothing can take over if it fails',
};

/** Slack renders this in the reader's time zone; the fallback is UTC. */
export function slackDate(ms: number): string {
  const fallback = new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
  return `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} {time_secs}|${fallback}>`;
}

function nodeLabel(view: AlertView): string {
  if (view.standbyOf) return `${view.node} (the machine, standby of ${view.standbyOf})`;
  return view.servedBy ? `${view.node} (served by ${view.servedBy})` : view.node;
}

/** One-line summary, used as the notification text. */
export function alertSummary(view: AlertView): string {
  return `${nodeLabel(view)} ${TITLES[view.kind]}`;
}

function facts(view: AlertView): string[] {
  const lines = [`*Since:* ${slackDate(view.openedAt)}`];
  if (view.lag !== undefined) {
    const reference = view.referenceHeight === undefined ? '' : ` (reference ${view.referenceHeight})`;
    lines.push(`*Lag:* ${view.lag} blocks${reference}`);
  }
  if (view.height !== undefined) lines.push(`*Height:* ${view.height}`);
  if (view.detail) lines.push(`*Detail:* ${cutPlain(view.detail, 500)}`);
  return lines;
}

function statusLine(view: AlertView): string | undefined {
  const parts: string[] = [];
  if (view.acknowledgedBy) {
    const when = view.acknowledgedAt === undefined ? '' : ` at ${slackDate(view.acknowledgedAt)}`;
    parts.push(`Acknowledged by <@${view.acknowledgedBy}>${when}`);
  }
  if (view.mutedUntil !== undefined) {
    const by = view.mutedBy ? ` by <@${view.mutedBy}>` : '';
    parts.push(`Muted${by} until ${slackDate(view.mutedUntil)}`);
  }
  return parts.length > 0 ? parts.join(' · ') : undefined;
}

/** The channel message of an open incident, with Start failover, Mute 30m and Acknowledge. */
export function renderAlertMessage(view: AlertView): RenderedMessage {
  const summary = alertSummary(view);
  const value = alertActionValue(view.node, view.incidentId);
  const status = statusLine(view);
  const buttons = [
    // A failover replaces a CN; it makes no sense for a PN, a standby of its own, or with no standby.
    ...(view.kind === 'standby-lagging' || view.kind === 'no-standby' || view.standbyOf
      ? []
      : [
          button({
            actionId: ALERT_ACTIONS.startFailover,
            text: 'Start failover',
            style: 'danger',
            value,
            // One click starts a run that replaces a consensus node: ask first, as Approve and Abort do.
            confirm: {
              title: `Fail over ${view.node}?`,
              text: `This starts the failover runbook for ${view.node}. Its destructive steps still wait for approval.`,
              confirm: 'Start failover',
              deny: 'Cancel',
              style: 'danger',
            },
          }),
        ]),
    button({ actionId: ALERT_ACTIONS.mute, text: 'Mute 30m', value }),
    button({ actionId: ALERT_ACTIONS.acknowledge, text: 'Acknowledge', value }),
  ];
  return message(summary, [
    section(`:rotating_light: *${summary}*`),
    section(facts(view).join('\n')),
    ...(status ? [context([status])] : []),
    actions(`alert:${view.incidentId}`, buttons),
  ]);
}

/** The channel message once the incident is over: no buttons, how long it lasted. */
export function renderResolvedMessage(view: AlertView, resolvedAt: number): RenderedMessage {
  const lasted = formatDuration(resolvedAt - view.openedAt);
  const text = `Resolved after ${lasted}: ${alertSummary(view)}`;
  const acknowledged = view.acknowledgedBy ? ` · acknowledged by <@${view.acknowledgedBy}>` : '';
  return message(text, [
    section(`:white_check_mark: *${text}*`),
    context([`From ${slackDate(view.openedAt)} to ${slackDate(resolvedAt)}${acknowledged}`]),
  ]);
}

/** A thread update carrying one or more coalesced notes. */
export function renderThreadUpdate(notes: readonly string[]): RenderedMessage {
  const text = notes.join('\n');
  return message(text, [section(text)]);
}

/** The thread's last word on an incident. */
export function recoveredNote(durationMs: number): string {
  return `:white_check_mark: Recovered after ${formatDuration(durationMs)}`;
}
