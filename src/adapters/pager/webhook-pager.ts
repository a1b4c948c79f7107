/**
 * A generic signed webhook (schema in docs/escalation.md): one JSON POST per event, with
 * `X-Cellops-Timestamp: <unix seconds>` and `X-Cellops-Signature: sha256=<hex HMAC-SHA256 of
 * "<timestamp>.<raw body>">`. The timestamp is inside the signed string so a captured request cannot be
 * replayed later with a fresh timestamp; receivers reject timestamps older than a few minutes.
 */
import { createHmac } from 'node:crypto';
import type { Pager, PageEvent } from '../../ports/pager.js';
import type { PagerPoster } from './pager-http.js';

export const WEBHOOK_SCHEMA_VERSION = 1;

export interface WebhookOptions {
  readonly url: string;
  /** The HMAC key (from the environment only). */
  readonly secret: string;
  readonly timeoutMs: number;
  readonly post: PagerPoster;
}

export interface WebhookPayload {
  readonly version: typeof WEBHOOK_SCHEMA_VERSION;
  readonly event: PageEvent['action'];
  readonly incidentId: string;
  readonly cell: string;
  readonly node: string | null;
  readonly condition: string | null;
  /** ISO 8601 UTC. */
  readonly since: string | null;
  readonly lag: number | null;
  readonly severity: PageEvent['severity'];
  readonly threadUrl: string | null;
  readonly summary: string;
  /** ISO 8601 UTC: when cellops decided to send the event. */
  readonly at: string;
  readonly details: Readonly<Record<string, string | number>>;
}

export function webhookPayload(event: PageEvent): WebhookPayload {
  return {
    version: WEBHOOK_SCHEMA_VERSION,
    event: event.action,
    incidentId: event.key,
    cell: event.cell,
    node: event.node ?? null,
    condition: event.condition ?? null,
    since: event.since === undefined ? null : new Date(event.since).toISOString(),
    lag: event.lag ?? null,
    severity: event.severity,
    threadUrl: event.threadUrl ?? null,
    summary: event.summary,
    at: new Date(event.at).toISOString(),
    details: event.details ?? {},
  };
}

/** `sha256=<hex>` over `${timestamp}.${body}`. */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export function createWebhookPager(options: WebhookOptions, now: () => number): Pager {
  return {
    name: 'webhook',
    send: (event, signal) => {
      const body = JSON.stringify(webhookPayload(event));
      const timestamp = String(Math.floor(now() / 1_000));
      return options.post({
        target: 'webhook',
        url: options.url,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'cellops',
          'x-cellops-timestamp': timestamp,
          'x-cellops-signature': webhookSignature(options.secret, timestamp, body),
        },
        body,
        timeoutMs: options.timeoutMs,
        secrets: [options.secret],
        ...(signal === undefined ? {} : { signal }),
      });
    },
  };
}
