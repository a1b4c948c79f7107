/**
 * Opsgenie Alert API: create with the incident id as `alias` (Opsgenie de-duplicates open alerts by
 * alias), acknowledge and close by alias. Authorization: `GenieKey <key>` of an API integration. Opsgenie
 * processes requests asynchronously and answers 202; 429 and 5xx are retried by the dispatcher.
 */
import type { Pager, PageEvent, PageSeverity } from '../../ports/pager.js';
import { pageDetails } from './page-fields.js';
import type { PagerPoster } from './pager-http.js';
import { redactThenTruncate } from '../../infra/redact.js';

export interface OpsgenieOptions {
  /** Base URL, default https://api.opsgenie.com (EU accounts: https://api.eu.opsgenie.com). */
  readonly url: string;
  /** The API integration's key (from the environment only). */
  readonly apiKey: string;
  readonly timeoutMs: number;
  readonly post: PagerPoster;
}

const PRIORITY: Readonly<Record<PageSeverity, string>> = {
  critical: 'P1',
  error: 'P2',
  warning: 'P3',
  info: 'P5',
};

/** Opsgenie's limits: message 130 characters, description 15,000. */
const MESSAGE_MAX = 130;
const DESCRIPTION_MAX = 15_000;

/** Redacted before it is cut: a cut key would no longer look like one. */
function cut(text: string, max: number): string {
  return redactThenTruncate(text, max);
}

export function opsgenieRequest(event: PageEvent): { path: string; body: Record<string, unknown> } {
  const alias = encodeURIComponent(event.key);
  if (event.action === 'trigger') {
    const description = [
      event.summary,
      event.threadUrl === undefined ? '' : `Slack thread: ${event.threadUrl}`,
    ]
      .filter(Boolean)
      .join('\n\n');
    return {
      path: '/v2/alerts',
      body: {
        message: cut(event.summary, MESSAGE_MAX),
        alias: event.key,
        description: cut(description, DESCRIPTION_MAX),
        details: pageDetails(event),
        tags: [
          'cellops',
          event.cell,
          ...(event.node === undefined ? [] : [event.node]),
          ...(event.condition === undefined ? [] : [event.condition]),
        ],
        priority: PRIORITY[event.severity],
        source: 'cellops',
        ...(event.node === undefined ? {} : { entity: event.node }),
      },
    };
  }
  const verb = event.action === 'acknowledge' ? 'acknowledge' : 'close';
  return {
    path: `/v2/alerts/${alias}/${verb}?identifierType=alias`,
    body: { source: 'cellops', user: 'cellops', note: event.summary },
  };
}

export function createOpsgeniePager(options: OpsgenieOptions): Pager {
  const base = options.url.replace(/\/+$/, '');
  return {
    name: 'opsgenie',
    send: (event, signal) => {
      const { path, body } = opsgenieRequest(event);
      return options.post({
        target: 'opsgenie',
        url: `${base}${path}`,
        headers: { 'content-type': 'application/json', authorization: `GenieKey ${options.apiKey}` },
        body: JSON.stringify(body),
        timeoutMs: options.timeoutMs,
        secrets: [options.apiKey],
        ...(signal === undefined ? {} : { signal }),
      });
    },
  };
}
