/**
 * The Bolt app: receives slash commands and button clicks, acknowledges them at once, and hands the work
 * to the plain handlers of src/commands. Nothing a command or a click needs lives in this process's
 * memory (run state, approvals and message refs are in Redis), so any replica may receive any request.
 *
 * - Socket Mode when an app token is given, else Bolt's HTTPReceiver on `port` (`POST /slack/events`).
 *   `GET /healthz` and `GET /metrics` are served in both modes.
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
import { App, HTTPReceiver, LogLevel } from '@slack/bolt';
import type { Redis } from 'ioredis';
import type { CellopsConfig } from '../config/config.js';
import type { Chat } from '../ports/chat.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import { createRedisKeys } from '../infra/redis-keys.js';
import { createSystemClock } from '../infra/system-clock.js';
import type { CommandHandlers } from '../commands/handlers.js';
import { boltLogger } from './bolt-logger.js';
import { healthRoutes, type HealthReport } from './health-routes.js';
import { createRedeliveryFilter } from './redelivery.js';
import { createResponseUrlPoster } from './response-url.js';
import { createSlackChat, createSlackWebClient, slackClientOptions } from './slack-chat.js';
import { createSlackIdentity } from './slack-identity.js';
import { registerListeners, type AlertAction } from './slack-listeners.js';

export interface SlackAppEnv {
  /** SLACK_BOT_TOKEN (xoxb-…). */
  readonly botToken: string;
  /** SLACK_SIGNING_SECRET: verifies every HTTP request. */
  readonly signingSecret: string;
  /** SLACK_APP_TOKEN (xapp-…): present, Socket Mode; absent, the HTTP receiver. */
  readonly appToken?: string | undefined;
  /** SLACK_API_URL: base URL of the Web API (default Slack's own); tests point it at a stand-in. */
  readonly apiUrl?: string | undefined;
  /** PORT: the HTTP receiver (or, in Socket Mode, /healthz and /metrics). 0 picks a free port. */
  readonly port: number;
  /** Address to listen on. Default: all interfaces. */
  readonly host?: string | undefined;
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
}

export interface SlackAppHandle {
  /** The HTTP port actually listened on (useful with port 0). */
  readonly port: number;
  readonly mode: 'http' | 'socket';
  stop(): Promise<void>;
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
      'Slack auth.test failed at start; the bot keeps running, /healthz reports it and retries',
    );
  }

  const customRoutes = healthRoutes({
    redis,
    identity,
    logger,
    metrics: deps.metrics,
    healthy: deps.healthy,
  });
  const authorize = async () => {
    const known = identity.current();
    return {
      botToken: env.botToken,
      ...(known ? { botId: known.botId, botUserId: known.botUserId } : {}),
    };
  };
  const clientOptions = slackClientOptions({ apiUrl: env.apiUrl, logger: slackLogger });
  const socket = env.appToken !== undefined && env.appToken !== '';
  const receiver = socket
    ? undefined
    : new HTTPReceiver({
        signingSecret: env.signingSecret,
        endpoints: '/slack/events',
        customRoutes,
        logger: slackLogger,
        processBeforeResponse: false,
      });
  const app = socket
    ? new App({
        socketMode: true,
        appToken: env.appToken,
        authorize,
        customRoutes,
        installerOptions: { port: env.port },
        // Socket Mode writes 100 retries into clientOptions when unset; ours are explicit.
        clientOptions,
        convoStore: false,
        logger: slackLogger,
      })
    : new App({ receiver, authorize, clientOptions, convoStore: false, logger: slackLogger });

  app.error(async (error) => {
    logger.error({ err: error }, 'Slack listener failed');
  });
  registerListeners(app, {
    handlers: deps.handlers,
    firstDelivery: createRedeliveryFilter({ redis, keys, logger, ttlSeconds: deps.dedupTtlSeconds ?? 3_600 }),
    responses,
    chat,
    channel: config.slack.channel,
    logger,
    onAlertAction: deps.onAlertAction,
  });

  let port = env.port;
  if (receiver) {
    const server = await receiver.start(
      env.host === undefined ? env.port : { port: env.port, host: env.host },
      {},
    );
    port = (server.address() as AddressInfo).port;
    logger.info({ port }, 'Slack HTTP receiver listening on POST /slack/events');
  } else {
    await app.start();
    logger.info({ port }, 'Slack Socket Mode connected; /healthz and /metrics served over HTTP');
  }

  return {
    port,
    mode: socket ? 'socket' : 'http',
    async stop() {
      await app.stop();
      responses.close();
    },
  };
}
