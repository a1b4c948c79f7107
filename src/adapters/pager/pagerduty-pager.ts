/**
 * PagerDuty Events API v2: POST {url}/v2/enqueue with the integration's routing key. The incident id is
 * the `dedup_key`, so a trigger sent twice is one PagerDuty incident and acknowledge/resolve find it.
 * Answers: 202 accepted; 400 invalid event (not retried); 429 throttled; 5xx retried by the dispatcher.
 */
import type { Pager, PageEvent } from '../../ports/pager.js';
import { pageDetails } from './page-fields.js';
import type { PagerPoster } from './pager-http.js';
import { redactThenTruncate } from '../../infra/redact.js';

export interface PagerDutyOptions {
  /** Base URL, default https://events.pagerduty.com (tests and proxies point it elsewhere). */
  readonly url: string;
  /** The integration key of an Events API v2 integration (from the environment only). */
  readonly routingKey: string;
  readonly timeoutMs: number;
  readonly post: PagerPoster;
}

/** PagerDuty truncates longer summaries; we cut them ourselves so the end is visibly cut. */
const SUMMARY_MAX = 1_024;

export function pagerDutyBody(event: PageEvent, routingKey: string): Record<string, unknown> {
  const base = { routing_key: routingKey, event_action: event.action, dedup_key: event.key };
  if (event.action !== 'trigger') return base;
  return {
    ...base,
    payload: {
      summary: redactThenTruncate(event.summary, SUMMARY_MAX),
      source: event.node === undefined ? event.cell : `${event.cell}/${event.node}`,
      severity: event.severity,
      timestamp: new Date(event.at).toISOString(),
      ...(event.node === undefined ? {} : { component: event.node }),
      group: event.cell,
      ...(event.condition === undefined ? {} : { class: event.condition }),
      custom_details: pageDetails(event),
    },
    client: 'cellops',
    ...(event.threadUrl === undefined
      ? {}
      : { client_url: event.threadUrl, links: [{ href: event.threadUrl, text: 'Slack thread' }] }),
  };
}

export function createPagerDutyPager(options: PagerDutyOptions): Pager {
  const url = `${options.url.replace(/\/+$/, '')}/v2/enqueue`;
  return {
    name: 'pagerduty',
    send: (event, signal) =>
      options.post({
        target: 'pagerduty',
        url,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(pagerDutyBody(event, options.routingKey)),
        timeoutMs: options.timeoutMs,
        secrets: [options.routingKey],
        ...(signal === undefined ? {} : { signal }),
      }),
  };
}
