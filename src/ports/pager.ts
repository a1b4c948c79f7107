/**
 * Paging the on-call: one event (trigger, acknowledge or resolve) to one pager. Real adapters:
 * src/adapters/pager (PagerDuty Events API v2, Opsgenie Alert API, a signed generic webhook). Delivery,
 * retries and the queue live above this port, in src/escalation/dispatcher.ts.
 */

export const PAGE_ACTIONS = ['trigger', 'acknowledge', 'resolve'] as const;
export type PageAction = (typeof PAGE_ACTIONS)[number];

/** PagerDuty's severities; Opsgenie maps them to P1–P4, the webhook passes them on. */
export const PAGE_SEVERITIES = ['critical', 'error', 'warning', 'info'] as const;
export type PageSeverity = (typeof PAGE_SEVERITIES)[number];

/** What an engineer needs on a phone: what, where, since when, how bad, and where to act. */
export interface PageEvent {
  readonly action: PageAction;
  /** Deduplication key: the incident id, or `approval:<run>:<step>:<round>`. Same key, same page. */
  readonly key: string;
  /** One line, shown as the page's title (at most 1,024 characters for PagerDuty, 130 for Opsgenie). */
  readonly summary: string;
  readonly severity: PageSeverity;
  /** The Core Cell's name (the `cell` of the configuration). */
  readonly cell: string;
  /** The node the page is about. */
  readonly node?: string;
  /** e.g. down, stalled, lagging, approval-waiting. */
  readonly condition?: string;
  /** Epoch ms since the condition holds (or since the approval was requested). */
  readonly since?: number;
  /** Blocks behind the reference height, when known. */
  readonly lag?: number;
  /** Link to the Slack thread where people act on it. */
  readonly threadUrl?: string;
  /** When cellops decided to send this event (epoch ms). */
  readonly at: number;
  /** More facts for the page's details (run id, step, who acknowledged…). No secrets. */
  readonly details?: Readonly<Record<string, string | number>>;
}

export interface Pager {
  /** The target's name in metrics, logs and Slack notes: pagerduty, opsgenie or webhook. */
  readonly name: string;
  /**
   * Delivers one event or throws a PagerError (src/adapters/pager/pager-error.ts) saying whether a retry
   * may succeed and, for 429, after how long. Never retries itself; messages never contain the secret.
   */
  send(event: PageEvent, signal?: AbortSignal): Promise<void>;
}
