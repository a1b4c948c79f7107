/**
 * The Bolt app: receives slash commands and button clicks, acknowledges them at once, and hands the work
 * to the plain handlers of src/commands. Nothing a command or a click needs lives in this process's
 * memory (run state, approvals and message refs are in Redis), so any replica may receive any request.
 *
 * - Socket Mode when an app token is given, else Bolt's HTTPReceiver on `port` (`POST /slack/events`).
 *   `GET /livez`, `/readyz`, `/healthz` and `/metrics` (./health-routes.ts) are served in both modes: next
 *   to /slack/events, or on a server of their own (./health-server.ts) in Socket Mode and whenever
 *   `healthPort` is given. In Socket Mode, readiness and a gauge follow the socket (./socket-mode-watch.ts).
 * - Bolt's signature verification stays on: a forged or stale (> 5 min) request gets 401 and runs nothing.
 * - Bolt calls auth.test in its constructor when given a token, and then crashes the start when Slack is
 *   unreachable; with only the token and no bot ids it would even call auth.test before acknowledging
 *   every request. So the app gets an `authorize` function that answers from memory, and auth.test runs
 *   once at start in a try/catch (and again from /healthz until it works): ./slack-identity.ts.
 * - Listeners ack first, let the other requests already received be acked, then work; answers go through
 *   `response_url` (./slack-listeners.ts).
 * - A redelivered request (Socket Mode retries unacked envelopes, possibly to another replica) is
 *   acked, then recognised by its trigger id (a click by user, action_ts and action id) in Redis and
 *   dropped, so it is never handled twice (./redelivery.ts).
 * - The command handlers are built by the caller (src/app/create-cellops.ts), so the sandbox console
 *   drives the same ones.
 */
import type { AddressInfo } from 'node:net';
import { createAckGate } from './ack-gate.js';
import { App, HTTPReceiver, LogLevel, SocketModeReceiver } from '@slack/bolt';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { CellopsConfig } from '../config/config.js';
import type { Chat } from '../ports/chat.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import { createRedisKeys } from '../infra/redis-keys.js';
import { createSystemClock } from '../infra/system-clock.js';
import type { CommandHandlers } from '../commands/handlers.js';
import { boltLogger } from './bolt-logger.js';
import { healthRoutes, type HealthReport, type HealthRoutesDeps } from './health-routes.js';
import { startHealthServer, type HealthServer } from './health-server.js';
import { createRedeliveryFilter } from './redelivery.js';
import { createResponseUrlPoster } from './response-url.js';
import { createSlackChat, createSlackWebClient, slackClientOptions } from './slack-chat.js';
import { createSlackIdentity } from './slack-identity.js';
import { registerListeners, type AlertAction } from './slack-listeners.js';
import { watchSocketMode, type SocketModeWatch } from './socket-mode-watch.js';

export interface SlackAppEnv {
  /** SLACK_BOT_TOKEN (xoxb-…). */
  readonly botToken: string;
  /** SLACK_SIGNING_SECRET: verifies every HTTP request. */
  readonly signingSecret: string;
  /** SLACK_APP_TOKEN (xapp-…): present, Socket Mode; absent, the HTTP receiver. */
  readonly appToken?: string | undefined;
  /** SLACK_API_URL: base URL of the Web API (default Slack's own); tests point it at a stand-in. */
  readonly apiUrl?: string | undefined;
  /** PORT: the HTTP receiver (or, in Socket Mode, the probes and /metrics). 0 picks a free port. */
  readonly port: number;
  /** Address to listen on. Default: all interfaces. */
  readonly host?: string | undefined;
  /** HEALTH_PORT: serve the probes and /metrics on this port instead of `port`. 0 picks a free port. */
  readonly healthPort?: number | undefined;
  /** HEALTH_HOST: the address of the health server. Default: `host`. */
  readonly healthHost?: string | undefined;
}

export interface SlackAppDeps {
  readonly env: SlackAppEnv;
  readonly config: CellopsConfig;
  /** What the listeners hand slash commands and clicks to. */
  readonly handlers: CommandHandlers;
  readonly redis: Redis;
  readonly logger: Logger;
  /** Prometheus text for GET /metrics; without it /metrics answers 404. */
  readonly metrics?: () => Promise<string>;
  /** Extra health checks (Redis and Slack auth are always checked). */
  readonly healthy?: () => Promise<HealthReport>;
  /** Called after an alert button was handled, e.g. for the monitor to edit its alert message. */
  readonly onAlertAction?: (action: AlertAction) => Promise<void>;
  /** The Chat adapter (for ephemeral fallbacks). Default: one built over the bot token. */
  readonly chat?: Chat;
  readonly clock?: Clock;
  /** How long a delivery is remembered to drop Slack redeliveries. Default 1 h. */
  readonly dedupTtlSeconds?: number;
  /** Where the Socket Mode gauges go (the /metrics registry). */
  readonly registry?: Registry;
  /** Socket Mode: waits before reconnection attempts in a row. Default RECONNECT_DELAYS_MS. */
  readonly socketReconnectDelaysMs?: readonly number[];
}

export interface SlackAppHandle {
  /** The HTTP port actually listened on (useful with port 0): the receiver's, or the health server's. */
  readonly port: number;
  /** Where the probes and /metrics are served (equals `port` unless they have their own server). */
  readonly healthPort: number;
  readonly mode: 'http' | 'socket';
  stop(): Promise<void>;
}

interface Receivers {
  readonly http?: HTTPReceiver;
  readonly socket?: SocketModeReceiver;
}

/**
 * Socket Mode's receiver is built here rather than by `new App({ socketMode: true })`, to reach its
 * client (state events for readiness) and to keep Bolt's own HTTP server off: the probes get ours.
 */
function buildReceivers(
  env: SlackAppEnv,
  clientOptions: ReturnType<typeof slackClientOptions>,
  slackLogger: ReturnType<typeof boltLogger>,
  customRoutes: ReturnType<typeof healthRoutes>,
): Receivers {
  if (env.appToken !== undefined && env.appToken !== '') {
    return {
      socket: new SocketModeReceiver({
        appToken: env.appToken,
        logger: slackLogger,
        // ./socket-mode-watch.ts reconnects instead: the client's own reconnection can give up for good.
        autoReconnectEnabled: false,
        // Socket Mode writes 100 retries into clientOptions when unset; ours are explicit. A copy: the
        // client also sets a fetch of its own on the object it is given.
        installerOptions: { clientOptions: { ...clientOptions } },
      }),
    };
  }
  return {
    http: new HTTPReceiver({
      signingSecret: env.signingSecret,
      endpoints: '/slack/events',
      customRoutes,
      logger: slackLogger,
      processBeforeResponse: false,
    }),
  };
}

export async function startSlackApp(deps: SlackAppDeps): Promise<SlackAppHandle> {
  const { env, config, redis } = deps;
  const logger = deps.logger.child({ component: 'slack' });
  const clock = deps.clock ?? createSystemClock();
  const keys = createRedisKeys(config.redisPrefix);
  const slackLogger = boltLogger(logger, LogLevel.WARN);
  const client = createSlackWebClient(env.botToken, { apiUrl: env.apiUrl, logger: slackLogger });
  const chat = deps.chat ?? createSlackChat({ client, redis, keys, clock, logger });
  const responses = createResponseUrlPoster();

  const identity = createSlackIdentity(client);
  try {
    await identity.check();
    logger.info({ botUserId: identity.current()?.botUserId }, 'Slack auth.test ok');
  } catch {
    logger.error(
      { problem: identity.problem() },
      'Slack auth.test failed at start; the bot keeps running, /readyz reports it and retries',
    );
  }

  // Filled in once the socket client exists; readiness asks it on every probe.
  const socketBox: { watch?: SocketModeWatch } = {};
  const healthDeps: HealthRoutesDeps = {
    redis,
    identity,
    logger,
    metrics: deps.metrics,
    healthy: deps.healthy,
    ...(env.appToken
      ? {
          socket: () =>
            socketBox.watch?.health() ?? { connected: false, detail: 'Socket Mode has not started yet' },
        }
      : {}),
  };
  const separateHealth = env.appToken !== undefined || env.healthPort !== undefined;
  const customRoutes = separateHealth ? [] : healthRoutes(healthDeps);
  const authorize = async () => {
    const known = identity.current();
    return {
      botToken: env.botToken,
      ...(known ? { botId: known.botId, botUserId: known.botUserId } : {}),
    };
  };
  const clientOptions = slackClientOptions({ apiUrl: env.apiUrl, logger: slackLogger });
  const receivers = buildReceivers(env, clientOptions, slackLogger, customRoutes);
  const app = new App({
    receiver: receivers.http ?? receivers.socket,
    authorize,
    clientOptions,
    convoStore: false,
    logger: slackLogger,
  });

  app.error(async (error) => {
    logger.error({ err: error }, 'Slack listener failed');
  });
  // Work after an ack waits for the receiver's other requests to be answered (250 ms at most), and for
  // 5 ms without a new one: a few milliseconds on a reply, against Slack's 3 s for the ack.
  const ackGate = createAckGate({ maxDeferMs: 250, quietMs: 5 });
  registerListeners(app, {
    handlers: deps.handlers,
    afterAcks: () => ackGate.afterAcks(),
    firstDelivery: createRedeliveryFilter({ redis, keys, logger, ttlSeconds: deps.dedupTtlSeconds ?? 3_600 }),
    responses,
    chat,
    channel: config.slack.channel,
    logger,
    onAlertAction: deps.onAlertAction,
  });

  let health: HealthServer | undefined;
  if (separateHealth) {
    health = await startHealthServer({
      deps: healthDeps,
      port: env.healthPort ?? env.port,
      host: env.healthHost ?? env.host,
      logger,
    });
    logger.info({ port: health.port }, 'serving /livez, /readyz, /healthz and /metrics');
  }
  let port = health?.port ?? env.port;
  if (receivers.http) {
    const server = await receivers.http.start(
      env.host === undefined ? env.port : { port: env.port, host: env.host },
      {},
    );
    port = (server.address() as AddressInfo).port;
    ackGate.watch(server);
    logger.info({ port }, 'Slack HTTP receiver listening on POST /slack/events');
  } else if (receivers.socket) {
    socketBox.watch = watchSocketMode({
      client: receivers.socket.client,
      clock,
      logger,
      registry: deps.registry,
      reconnectDelaysMs: deps.socketReconnectDelaysMs,
    });
    await app.start();
    logger.info({}, 'Slack Socket Mode connected');
  }

  return {
    port,
    healthPort: health?.port ?? port,
    mode: receivers.socket ? 'socket' : 'http',
    async stop() {
      socketBox.watch?.stop();
      await app.stop();
      responses.close();
      await health?.close();
    },
  };
}
