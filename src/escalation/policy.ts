/**
 * When cellops pages, reminds and resolves: pure functions from an entry's state, the time and an input
 * to the next state and the intents to carry out. No clock, no I/O: src/escalation/escalation-policy.ts
 * drives them with the Clock port and a store, and the caller carries out the intents (dispatch a page,
 * post a reminder in a thread).
 *
 * Alerts (one entry per monitor incident, keyed by its id):
 *   opened → not acknowledged in Slack within `pageAfter` → trigger (and a note in the thread)
 *   acknowledged (or muted) in Slack before → never paged; after → acknowledge at the pager
 *   recovered → resolve at the pager, if it was paged
 * Which conditions page and how urgently: `alertSeverity` (docs/escalation.md has the table).
 *
 * Approvals (one entry per request round, keyed by `<run>:<step>:<round>`):
 *   waiting `approvalReminder` → reminder in the run's thread mentioning the approvers
 *   waiting `approvalPage`     → trigger
 *   shortly before it expires  → a notice saying when the run will pause
 *   decided, expired or closed → resolve at the pager, if it was paged
 * A stage whose time is not before the expiry is skipped: the run has paused by then.
 */
import { formatDuration } from '../config/duration.js';
import { redactThenTruncate } from '../infra/redact.js';
import type { PageAction, PageEvent, PageSeverity } from '../ports/pager.js';

export interface EscalationSettings {
  readonly cell: string;
  readonly pageAfterMs: number;
  readonly approvalReminderMs: number;
  readonly approvalPageMs: number;
  /** At least one pager is configured. Without one, reminders and expiry notices still go to Slack. */
  readonly paging: boolean;
}

export type NodeRoleName = 'cn' | 'standby' | 'pn';

/** What the monitor knows about an incident, as the page shows it. */
export interface AlertFacts {
  /** The incident id: the page's dedup key. */
  readonly id: string;
  readonly node: string;
  readonly role: NodeRoleName;
  /** The incident kind: down, stalled, lagging, isolated, standby-lagging, check-failed. */
  readonly condition: string;
  /** Epoch ms since the condition holds. */
  readonly since: number;
  readonly lag?: number;
  readonly threadUrl?: string;
  /** The machine serving the CN role when it is not the node itself (after a failover). */
  readonly servedBy?: string;
  /** The last probe error or the failed check's message, short. */
  readonly detail?: string;
  /** The alert's Slack message: notes about its page (paged, pager failed) go in its thread. */
  readonly thread?: { readonly channel: string; readonly ts: string };
}

export interface ApprovalFacts {
  /** `<run>:<step>:<round>`: unique per request round. */
  readonly id: string;
  readonly runId: string;
  readonly runbook: string;
  readonly stepId: string;
  readonly stepTitle: string;
  readonly node: string;
  readonly requestedAt: number;
  readonly expiresAt: number;
  /** The run's thread, where reminders go. */
  readonly thread?: { readonly channel: string; readonly ts: string };
  readonly threadUrl?: string;
  /** Approvers to mention: user groups (S…) first, users (U…) when there are no groups. */
  readonly approverGroups: readonly string[];
  readonly approverUsers: readonly string[];
}

export interface AlertEntry {
  readonly kind: 'alert';
  readonly facts: AlertFacts;
  /** When the alert was opened in Slack: the delay counts from here. */
  readonly openedAt: number;
  readonly state: 'waiting' | 'paged' | 'acknowledged';
  /** A trigger was sent (so acknowledge and resolve must follow). */
  readonly paged: boolean;
  /** Severity of the last trigger, to re-trigger when the condition gets worse. */
  readonly pagedSeverity?: PageSeverity;
}

export const APPROVAL_STAGES = ['reminder', 'page', 'notice'] as const;
export type ApprovalStage = (typeof APPROVAL_STAGES)[number];

export interface ApprovalEntry {
  readonly kind: 'approval';
  readonly facts: ApprovalFacts;
  /** Stages already carried out. */
  readonly done: readonly ApprovalStage[];
  readonly paged: boolean;
}

/** JSON-serialisable, so a Redis store can keep it as it is. */
export type EscalationEntry = AlertEntry | ApprovalEntry;

export type EscalationIntent =
  | {
      readonly type: 'page';
      readonly event: PageEvent;
      /** Where to post a note when a pager fails this event (the alert's or the run's thread). */
      readonly thread?: { readonly channel: string; readonly ts: string };
    }
  /** A line for the alert thread ("Paging the on-call: …"). */
  | {
      readonly type: 'alert-note';
      readonly alertId: string;
      readonly thread?: { readonly channel: string; readonly ts: string };
      readonly text: string;
    }
  | {
      readonly type: 'approval-reminder' | 'approval-expiry-notice';
      readonly approval: ApprovalFacts;
      /** Slack mrkdwn for the run's thread, with the approvers' mentions. */
      readonly text: string;
    };

export interface Transition {
  /** The entry after the input; undefined: forget it. */
  readonly entry: EscalationEntry | undefined;
  readonly intents: readonly EscalationIntent[];
}

const SEVERITY_RANK: Readonly<Record<PageSeverity, number>> = { info: 0, warning: 1, error: 2, critical: 3 };

/**
 * Whether an incident pages, and how urgently. A CN that is down or stalled produces no blocks for the
 * cell: critical. A lagging or isolated CN still runs but may drop out of consensus: error. Trouble with
 * a standby, a PN or a failed readiness check (no failover possible) does not stop the cell now: warning,
 * which PagerDuty and Opsgenie can route to low urgency.
 */
export function alertSeverity(role: NodeRoleName, condition: string): PageSeverity | undefined {
  if (role === 'cn') {
    if (condition === 'down' || condition === 'stalled') return 'critical';
    if (condition === 'lagging' || condition === 'isolated') return 'error';
    if (condition === 'check-failed') return 'warning';
    return undefined;
  }
  if (['down', 'stalled', 'lagging', 'isolated', 'standby-lagging'].includes(condition)) return 'warning';
  return undefined;
}

const utc = (ms: number) => `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;

function alertSummary(settings: EscalationSettings, facts: AlertFacts): string {
  const served = facts.servedBy === undefined ? '' : ` (served by ${facts.servedBy})`;
  const lag = facts.lag === undefined ? '' : `, ${facts.lag} blocks behind`;
  return `${settings.cell}: ${facts.node}${served} ${facts.condition} since ${utc(facts.since)}${lag}`;
}

function alertPage(
  settings: EscalationSettings,
  facts: AlertFacts,
  action: PageAction,
  severity: PageSeverity,
  now: number,
  extra: Record<string, string> = {},
): EscalationIntent {
  return {
    type: 'page',
    ...(facts.thread === undefined ? {} : { thread: facts.thread }),
    event: {
      action,
      key: facts.id,
      summary: alertSummary(settings, facts),
      severity,
      cell: settings.cell,
      node: facts.node,
      condition: facts.condition,
      since: facts.since,
      ...(facts.lag === undefined ? {} : { lag: facts.lag }),
      ...(facts.threadUrl === undefined ? {} : { threadUrl: facts.threadUrl }),
      at: now,
      details: {
        ...(facts.servedBy === undefined ? {} : { servedBy: facts.servedBy }),
        ...(facts.detail === undefined ? {} : { detail: redactThenTruncate(facts.detail, 500) }),
        ...extra,
      },
    },
  };
}

/** When the alert pages, or undefined when it will not (acknowledged, paged, or a condition that does not page). */
export function alertDueAt(settings: EscalationSettings, entry: AlertEntry): number | undefined {
  if (entry.state !== 'waiting' || !settings.paging) return undefined;
  if (alertSeverity(entry.facts.role, entry.facts.condition) === undefined) return undefined;
  return entry.openedAt + settings.pageAfterMs;
}

export function alertOpened(
  settings: EscalationSettings,
  current: EscalationEntry | undefined,
  facts: AlertFacts,
  openedAt: number,
  now: number,
): Transition {
  if (current?.kind === 'alert') return alertChanged(settings, current, facts, now);
  return { entry: { kind: 'alert', facts, openedAt, state: 'waiting', paged: false }, intents: [] };
}

/** New facts (condition, lag, thread link). A paged, unacknowledged alert that got worse is triggered again. */
export function alertChanged(
  settings: EscalationSettings,
  current: AlertEntry,
  facts: AlertFacts,
  now: number,
): Transition {
  const entry: AlertEntry = { ...current, facts };
  const severity = alertSeverity(facts.role, facts.condition);
  const worse =
    severity !== undefined &&
    current.pagedSeverity !== undefined &&
    SEVERITY_RANK[severity] > SEVERITY_RANK[current.pagedSeverity];
  if (current.state === 'paged' && worse) {
    return {
      entry: { ...entry, pagedSeverity: severity },
      intents: [alertPage(settings, facts, 'trigger', severity, now)],
    };
  }
  return { entry, intents: [] };
}

export function alertAcknowledged(
  settings: EscalationSettings,
  current: AlertEntry,
  by: string,
  now: number,
): Transition {
  if (current.state === 'acknowledged') return { entry: current, intents: [] };
  const entry: AlertEntry = { ...current, state: 'acknowledged' };
  if (!current.paged) return { entry, intents: [] };
  const severity = current.pagedSeverity ?? 'error';
  return {
    entry,
    intents: [alertPage(settings, current.facts, 'acknowledge', severity, now, { acknowledgedBy: by })],
  };
}

export function alertResolved(settings: EscalationSettings, current: AlertEntry, now: number): Transition {
  if (!current.paged) return { entry: undefined, intents: [] };
  const severity = current.pagedSeverity ?? 'error';
  return {
    entry: undefined,
    intents: [
      alertPage(settings, current.facts, 'resolve', severity, now, {
        lastedMs: String(now - current.facts.since),
      }),
    ],
  };
}

function alertDue(settings: EscalationSettings, current: AlertEntry, now: number): Transition {
  const dueAt = alertDueAt(settings, current);
  const severity = alertSeverity(current.facts.role, current.facts.condition);
  if (dueAt === undefined || dueAt > now || severity === undefined) return { entry: current, intents: [] };
  const waited = formatDuration(now - current.openedAt);
  return {
    entry: { ...current, state: 'paged', paged: true, pagedSeverity: severity },
    intents: [
      alertPage(settings, current.facts, 'trigger', severity, now, { notAcknowledgedFor: waited }),
      {
        type: 'alert-note',
        alertId: current.facts.id,
        ...(current.facts.thread === undefined ? {} : { thread: current.facts.thread }),
        text: `Paging the on-call: not acknowledged in Slack for ${waited}. Acknowledge here to acknowledge the page.`,
      },
    ],
  };
}

/** How long before the expiry the last notice goes: 10 % of the wait, at least a minute. */
export function expiryNoticeLeadMs(facts: ApprovalFacts): number {
  return Math.max(60_000, Math.round((facts.expiresAt - facts.requestedAt) / 10));
}

/** When each stage is due; a stage not before the expiry (or, for the notice, not after the request) is left out. */
export function approvalStageTimes(
  settings: EscalationSettings,
  facts: ApprovalFacts,
): Partial<Record<ApprovalStage, number>> {
  const times: Partial<Record<ApprovalStage, number>> = {};
  const reminder = facts.requestedAt + settings.approvalReminderMs;
  const page = facts.requestedAt + settings.approvalPageMs;
  const notice = facts.expiresAt - expiryNoticeLeadMs(facts);
  if (reminder < facts.expiresAt) times.reminder = reminder;
  if (settings.paging && page < facts.expiresAt) times.page = page;
  if (notice > facts.requestedAt) times.notice = notice;
  return times;
}

export function approvalDueAt(settings: EscalationSettings, entry: ApprovalEntry): number | undefined {
  const times = approvalStageTimes(settings, entry.facts);
  const pending = APPROVAL_STAGES.filter((s) => !entry.done.includes(s)).map((s) => times[s]);
  const due = pending.filter((t): t is number => t !== undefined);
  return due.length === 0 ? undefined : Math.min(...due);
}

export function mentions(facts: ApprovalFacts): string {
  if (facts.approverGroups.length > 0) return facts.approverGroups.map((g) => `<!subteam^${g}>`).join(' ');
  if (facts.approverUsers.length > 0) return facts.approverUsers.map((u) => `<@${u}>`).join(' ');
  return 'Approvers';
}

function approvalPage(
  settings: EscalationSettings,
  facts: ApprovalFacts,
  action: PageAction,
  now: number,
  summary: string,
): EscalationIntent {
  return {
    type: 'page',
    ...(facts.thread === undefined ? {} : { thread: facts.thread }),
    event: {
      action,
      key: `approval:${facts.id}`,
      summary,
      severity: 'error',
      cell: settings.cell,
      node: facts.node,
      condition: 'approval-waiting',
      since: facts.requestedAt,
      ...(facts.threadUrl === undefined ? {} : { threadUrl: facts.threadUrl }),
      at: now,
      details: {
        run: facts.runId,
        runbook: facts.runbook,
        step: facts.stepId,
        expiresAt: utc(facts.expiresAt),
      },
    },
  };
}

function stageIntent(
  settings: EscalationSettings,
  facts: ApprovalFacts,
  stage: ApprovalStage,
  now: number,
): EscalationIntent {
  const waited = formatDuration(now - facts.requestedAt);
  const pauses = `the run pauses at ${utc(facts.expiresAt)}`;
  const step = `*${facts.stepTitle}* (${facts.runbook} on ${facts.node})`;
  if (stage === 'page') {
    return approvalPage(
      settings,
      facts,
      'trigger',
      now,
      `${settings.cell}: approval for ${facts.stepTitle} (${facts.runbook} on ${facts.node}) waiting ${waited}; ${pauses}`,
    );
  }
  if (stage === 'reminder') {
    const next =
      approvalStageTimes(settings, facts).page === undefined
        ? ''
        : ' The on-call is paged if it keeps waiting.';
    return {
      type: 'approval-reminder',
      approval: facts,
      text: `${mentions(facts)} ${step} has waited ${waited} for approval; ${pauses}.${next}`,
    };
  }
  return {
    type: 'approval-expiry-notice',
    approval: facts,
    text: `${mentions(facts)} ${step} still needs approval: in ${formatDuration(facts.expiresAt - now)} the request expires and ${pauses}.`,
  };
}

function approvalDue(settings: EscalationSettings, current: ApprovalEntry, now: number): Transition {
  const times = approvalStageTimes(settings, current.facts);
  const due = APPROVAL_STAGES.filter((s) => {
    const at = times[s];
    return !current.done.includes(s) && at !== undefined && at <= now;
  });
  if (due.length === 0) return { entry: current, intents: [] };
  // After a long outage several stages may be due at once: the page and the latest notice still matter,
  // a reminder superseded by the expiry notice does not.
  const send = due.includes('notice') ? due.filter((s) => s !== 'reminder') : due;
  return {
    entry: { ...current, done: [...current.done, ...due], paged: current.paged || due.includes('page') },
    intents: send.map((s) => stageIntent(settings, current.facts, s, now)),
  };
}

export function approvalRequested(facts: ApprovalFacts): Transition {
  return { entry: { kind: 'approval', facts, done: [], paged: false }, intents: [] };
}

export const APPROVAL_ENDINGS = ['approved', 'aborted', 'expired', 'closed'] as const;
export type ApprovalEnding = (typeof APPROVAL_ENDINGS)[number];

export function approvalEnded(
  settings: EscalationSettings,
  current: ApprovalEntry,
  ending: ApprovalEnding,
  now: number,
): Transition {
  if (!current.paged) return { entry: undefined, intents: [] };
  const { facts } = current;
  return {
    entry: undefined,
    intents: [
      approvalPage(
        settings,
        facts,
        'resolve',
        now,
        `${settings.cell}: approval for ${facts.stepTitle} ${ending}`,
      ),
    ],
  };
}

/** When the entry next needs attention, or undefined. */
export function entryDueAt(settings: EscalationSettings, entry: EscalationEntry): number | undefined {
  return entry.kind === 'alert' ? alertDueAt(settings, entry) : approvalDueAt(settings, entry);
}

/** Carries out whatever is due at `now`. */
export function entryDue(settings: EscalationSettings, entry: EscalationEntry, now: number): Transition {
  return entry.kind === 'alert' ? alertDue(settings, entry, now) : approvalDue(settings, entry, now);
}
