/**
 * `GET /healthz` and `GET /metrics`, served next to the Bolt receiver in both modes (HTTP and Socket Mode).
 * /healthz checks Redis and Slack auth (retrying auth.test until it works) plus any extra checks, each
 * bounded by a timeout, and answers 200 or 503 with the details; /metrics is Prometheus text, or 404 when
 * metrics are not enabled.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CustomRoute } from '@slack/bolt';
import type { Redis } from 'ioredis';
import type { Logger } from '../ports/logger.js';
import { redactSecrets } from '../infra/redact.js';
import type { SlackIdentity } from './slack-identity.js';

export interface HealthReport {
  readonly ok: boolean;
  readonly details: Record<string, unknown>;
}

export interface HealthRoutesDeps {
  readonly redis: Pick<Redis, 'ping'>;
  readonly identity: SlackIdentity;
  readonly logger: Logger;
  /** Prometheus text for GET /metrics; without it /metrics answers 404. */
  readonly metrics?: (() => Promise<string>) | undefined;
  /** Extra health checks (Redis and Slack auth are always checked). */
  readonly healthy?: (() => Promise<HealthReport>) | undefined;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function problemOf(error: unknown): string {
  return redactSecrets(error instanceof Error ? error.message : String(error));
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

export async function checkHealth(deps: HealthRoutesDeps): Promise<HealthReport> {
  const { identity } = deps;
  const details: Record<string, unknown> = {};
  let ok = true;
  try {
    await withTimeout(deps.redis.ping(), 1_000, 'Redis');
    details.redis = 'ok';
  } catch (error) {
    ok = false;
    details.redis = problemOf(error);
  }
  if (!identity.current())
    await withTimeout(identity.check(), 3_000, 'Slack auth.test').catch(() => undefined);
  details.slack = identity.current() ? 'ok' : (identity.problem() ?? 'auth.test has not succeeded');
  if (!identity.current()) ok = false;
  if (deps.healthy) {
    try {
      const extra = await deps.healthy();
      Object.assign(details, extra.details);
      ok = ok && extra.ok;
    } catch (error) {
      ok = false;
      details.checks = problemOf(error);
    }
  }
  return { ok, details };
}

function serveMetrics(deps: HealthRoutesDeps, res: ServerResponse): void {
  if (!deps.metrics) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('metrics are not enabled\n');
    return;
  }
  void deps.metrics().then(
    (text) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(text);
    },
    (error: unknown) => {
      deps.logger.warn({ err: error }, 'metrics failed');
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('metrics failed\n');
    },
  );
}

export function healthRoutes(deps: HealthRoutesDeps): CustomRoute[] {
  return [
    {
      path: '/healthz',
      method: ['GET'],
      handler: (_req: IncomingMessage, res: ServerResponse) => {
        void checkHealth(deps).then(
          (result) => sendJson(res, result.ok ? 200 : 503, { ok: result.ok, ...result.details }),
          (error: unknown) => sendJson(res, 503, { ok: false, error: String(error) }),
        );
      },
    },
    {
      path: '/metrics',
      method: ['GET'],
      handler: (_req: IncomingMessage, res: ServerResponse) => serveMetrics(deps, res),
    },
  ];
}
