/**
 * Loopback stand-ins for the three pagers, each speaking its documented request and response shapes:
 * - PagerDuty Events API v2: POST /v2/enqueue → 202 {status, message, dedup_key}; 400 {status: "invalid
 *   event", message, errors[]} for a bad event or routing key.
 * - Opsgenie Alert API: POST /v2/alerts, /v2/alerts/{alias}/acknowledge|close?identifierType=alias with
 *   `Authorization: GenieKey <key>` → 202 {result: "Request will be processed", took, requestId}; 401
 *   without the key; 422 for a bad body.
 * - The webhook of docs/escalation.md: verifies X-Cellops-Signature over `${timestamp}.${body}` on its
 *   own (not with cellops' code) and answers 401 when it does not match.
 * Each records every request and keeps the state a real pager would (incident or alert status), and can
 * be scripted to answer 429 (with or without Retry-After), 5xx or 400 for the next requests.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../src/ports/clock.js';

export interface RecordedRequest {
  readonly method: string;
  /** Path and query. */
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly raw: string;
  readonly body: unknown;
  /** What the stand-in answered. */
  status: number;
}

export interface ScriptedAnswer {
  readonly status: number;
  /** Retry-After header value (seconds or an HTTP date). */
  readonly retryAfter?: string;
  /** Answer body; default a short error. */
  readonly body?: string;
  /** Repeat the request body and Authorization header in the answer, as some APIs' errors do. */
  readonly echo?: boolean;
}

export interface PagerStandIn {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** The next `times` requests get this answer instead of the real one. */
  answerNext(answer: ScriptedAnswer, times?: number): void;
  /** Every request gets this answer from now on (undefined: behave again). */
  answerAlways(answer: ScriptedAnswer | undefined): void;
  close(): Promise<void>;
}

export interface PagerDutyStandIn extends PagerStandIn {
  /** dedup_key → triggered | acknowledged | resolved. */
  readonly incidents: Map<string, 'triggered' | 'acknowledged' | 'resolved'>;
}
export interface OpsgenieStandIn extends PagerStandIn {
  /** alias → open | acked | closed. */
  readonly alerts: Map<string, 'open' | 'acked' | 'closed'>;
}
export interface WebhookStandIn extends PagerStandIn {
  /** Verified deliveries in order. */
  readonly events: unknown[];
}

type Handler = (req: RecordedRequest) => { status: number; body: unknown };

async function startStandIn(handle: Handler): Promise<PagerStandIn> {
  const requests: RecordedRequest[] = [];
  const script: ScriptedAnswer[] = [];
  let always: ScriptedAnswer | undefined;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        body = undefined;
      }
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        raw,
        body,
        status: 0,
      };
      requests.push(recorded);
      const scripted = script.shift() ?? always;
      if (scripted) {
        recorded.status = scripted.status;
        const text = scripted.echo
          ? JSON.stringify({
              message: 'invalid request',
              errors: [`could not use ${raw} (authorization: ${req.headers.authorization ?? 'none'})`],
            })
          : (scripted.body ?? JSON.stringify({ message: `stand-in answers ${scripted.status}` }));
        res.writeHead(scripted.status, {
          'content-type': 'application/json',
          ...(scripted.retryAfter === undefined ? {} : { 'retry-after': scripted.retryAfter }),
        });
        res.end(text);
        return;
      }
      const answer = handle(recorded);
      recorded.status = answer.status;
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    answerNext(answer, times = 1) {
      for (let i = 0; i < times; i++) script.push(answer);
    },
    answerAlways(answer) {
      always = answer;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

export async function startPagerDutyStandIn(routingKey: string): Promise<PagerDutyStandIn> {
  const incidents = new Map<string, 'triggered' | 'acknowledged' | 'resolved'>();
  const invalid = (errors: string[]) => ({
    status: 400,
    body: { status: 'invalid event', message: 'Event object is invalid', errors },
  });
  const standIn = await startStandIn((req) => {
    if (req.method !== 'POST' || req.path !== '/v2/enqueue')
      return { status: 404, body: { message: 'Not found' } };
    const event = req.body;
    if (!isObject(event)) return invalid(['Event object is invalid JSON']);
    if (event.routing_key !== routingKey) return invalid(["Length of 'routing_key' is incorrect or unknown"]);
    const key = event.dedup_key;
    if (typeof key !== 'string') return invalid(["'dedup_key' is required"]);
    if (event.event_action === 'trigger') {
      const payload = event.payload;
      if (!isObject(payload) || typeof payload.summary !== 'string' || typeof payload.source !== 'string')
        return invalid(["'payload.summary' and 'payload.source' are required"]);
      if (!['critical', 'error', 'warning', 'info'].includes(String(payload.severity)))
        return invalid(["'payload.severity' is invalid"]);
      if (incidents.get(key) !== 'acknowledged') incidents.set(key, 'triggered');
    } else if (event.event_action === 'acknowledge' || event.event_action === 'resolve') {
      // PagerDuty accepts acknowledge and resolve for unknown keys and does nothing with them.
      if (incidents.has(key))
        incidents.set(key, event.event_action === 'resolve' ? 'resolved' : 'acknowledged');
    } else {
      return invalid(["'event_action' must be trigger, acknowledge or resolve"]);
    }
    return { status: 202, body: { status: 'success', message: 'Event processed', dedup_key: key } };
  });
  return Object.assign(standIn, { incidents });
}

export async function startOpsgenieStandIn(apiKey: string): Promise<OpsgenieStandIn> {
  const alerts = new Map<string, 'open' | 'acked' | 'closed'>();
  let requestCount = 0;
  const accepted = () => ({
    status: 202,
    body: { result: 'Request will be processed', took: 0.01, requestId: `req-${++requestCount}` },
  });
  const standIn = await startStandIn((req) => {
    if (req.headers.authorization !== `GenieKey ${apiKey}`)
      return { status: 401, body: { message: 'Could not authenticate', took: 0, requestId: 'req-auth' } };
    const url = new URL(req.path, 'http://stand-in');
    const body = req.body;
    if (req.method !== 'POST' || !isObject(body))
      return { status: 422, body: { message: 'Request body is not valid' } };
    if (url.pathname === '/v2/alerts') {
      if (typeof body.message !== 'string' || body.message.length > 130 || typeof body.alias !== 'string')
        return {
          status: 422,
          body: { message: 'Request body is not valid', errors: { message: 'Message is invalid' } },
        };
      if (alerts.get(body.alias) !== 'acked') alerts.set(body.alias, 'open');
      return accepted();
    }
    const match = /^\/v2\/alerts\/([^/]+)\/(acknowledge|close)$/.exec(url.pathname);
    if (!match || url.searchParams.get('identifierType') !== 'alias')
      return { status: 404, body: { message: 'Not found' } };
    const alias = decodeURIComponent(match[1] ?? '');
    if (alerts.has(alias)) alerts.set(alias, match[2] === 'close' ? 'closed' : 'acked');
    return accepted();
  });
  return Object.assign(standIn, { alerts });
}

/** Verifies the documented signature itself: HMAC-SHA256 over `${X-Cellops-Timestamp}.${raw body}`. */
export function verifyCellopsSignature(secret: string, req: RecordedRequest, nowMs: number): boolean {
  const timestamp = req.headers['x-cellops-timestamp'];
  const signature = req.headers['x-cellops-signature'];
  if (typeof timestamp !== 'string' || typeof signature !== 'string') return false;
  // Replays: a timestamp more than five minutes away is refused.
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > 300) return false;
  const expected = Buffer.from(
    `sha256=${createHmac('sha256', secret).update(`${timestamp}.${req.raw}`).digest('hex')}`,
  );
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export async function startWebhookStandIn(secret: string): Promise<WebhookStandIn> {
  const events: unknown[] = [];
  const standIn = await startStandIn((req) => {
    if (!verifyCellopsSignature(secret, req, Date.now()))
      return { status: 401, body: { message: 'bad signature' } };
    events.push(req.body);
    return { status: 200, body: { ok: true } };
  });
  return Object.assign(standIn, { events });
}

/** A clock whose sleeps return at once and are recorded, so retry delays are asserted, not waited for. */
export function instantClock(): Clock & { readonly sleeps: number[] } {
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => Date.now(),
    sleep: async (ms, signal) => {
      sleeps.push(ms);
      if (signal?.aborted) throw signal.reason;
      await new Promise<void>((resolve) => setImmediate(resolve));
    },
  };
}
