/**
 * The probes and `/metrics`, served next to the Bolt receiver (HTTP mode) or on their own server
 * (Socket Mode, or HEALTH_PORT; ./health-server.ts):
 *
 * - `GET /livez`: the process is alive. 200 whenever the event loop runs; it touches nothing outside the
 *   process, so a Redis or Slack outage never makes a liveness probe restart a healthy bot.
 * - `GET /readyz`: the bot can do its job. Redis answers, Slack accepted the token (auth.test, retried
 *   here until it works) and, in Socket Mode, the socket is connected; plus any extra checks. Each check
 *   is bounded by a timeout; 200, or 503 with the reasons.
 * - `GET /healthz`: the same as /readyz, kept for existing probes.
 * - `GET /metrics`: Prometheus text, or 404 when metrics are not enabled.
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

/** The Socket Mode connection as readiness sees it. */
export interface SocketHealth {
  readonly connected: boolean;
  /** For people: "connected", or what the socket is doing instead and since when. */
  readonly detail: string;
}

export interface HealthRoutesDeps {
  readonly redis: Pick<Redis, 'ping'>;
  readonly identity: SlackIdentity;
  readonly logger: Logger;
  /** Prometheus text for GET /metrics; without it /metrics answers 404. */
  readonly metrics?: (() => Promise<string>) | undefined;
  /** Extra health checks (Redis and Slack auth are always checked). */
  readonly healthy?: (() => Promise<HealthReport>) | undefined;
  /** Socket Mode only: the connection's state; absent in HTTP mode. */
  readonly socket?: (() => SocketHealth) | undefined;
}

export const HEALTH_PATHS = ['/livez', '/readyz', '/healthz', '/metrics'] as const;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
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

/** Readiness: Redis, Slack auth, the socket (Socket Mode) and the extra checks. */
export async function checkReadiness(deps: HealthRoutesDeps): Promise<HealthReport> {
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
  if (deps.socket) {
    const socket = deps.socket();
    details.socket = socket.detail;
    if (!socket.connected) ok = false;
  }
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

function serveReadiness(deps: HealthRoutesDeps, res: ServerResponse): void {
  void checkReadiness(deps).then(
    (result) => sendJson(res, result.ok ? 200 : 503, { ok: result.ok, ...result.details }),
    (error: unknown) => sendJson(res, 503, { ok: false, error: problemOf(error) }),
  );
}

/** GET handlers by path, for Bolt's customRoutes and for the separate health server alike. */
export function healthHandlers(
  deps: HealthRoutesDeps,
): Record<(typeof HEALTH_PATHS)[number], (res: ServerResponse) => void> {
  return {
    '/livez': (res) => sendJson(res, 200, { ok: true }),
    '/readyz': (res) => serveReadiness(deps, res),
    '/healthz': (res) => serveReadiness(deps, res),
    '/metrics': (res) => serveMetrics(deps, res),
  };
}

export function healthRoutes(deps: HealthRoutesDeps): CustomRoute[] {
  const handlers = healthHandlers(deps);
  return HEALTH_PATHS.map((path) => ({
    path,
    method: ['GET'],
    handler: (_req: IncomingMessage, res: ServerResponse) => handlers[path](res),
  }));
}
