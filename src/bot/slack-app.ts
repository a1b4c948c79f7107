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
 *   here, once at start in a try/catch (and again from /healthz until it works).
 * - Listeners ack first, let the other requests already received be acked, then work (`acknowledged`);
 *   answers go through `response_url` (ephemeral unless the reply says otherwise; posted by
 *   ./response-url.ts rather than Bolt's respond(), see there why), falling back to chat.postEphemeral.
 * - A redelivered request (Socket Mode retries unacked envelopes, possibly to another replica) is
 *   acked, then recognised by its trigger id (a click by user, action_ts and action id) in Redis and
 *   dropped, so it is never handled twice; the Redis round trip is after the ack, never before it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  App,
  HTTPReceiver,
  LogLevel,
  webApi,
  type BlockAction,
  type ButtonAction,
  type CustomRoute,
} from '@slack/bolt';
import type { Redis } from 'ioredis';
import type { CellopsConfig } from '../config/config.js';
import type { Chat } from '../ports/chat.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { Engine } from '../runbooks/types.js';
import type { MonitorControl } from '../monitor/types.js';
import { createRedisKeys, type RedisKeys } from '../infra/redis-keys.js';
import { createSystemClock } from '../infra/system-clock.js';
import { redactSecrets } from '../infra/redact.js';
import { createCommandHandlers, type CommandHandlers, type CommandPolicy } from '../commands/handlers.js';
import type { Reply } from '../commands/reply.js';
import { ALERT_ACTIONS, RUN_ACTIONS } from '../views/action-ids.js';
import { boltLogger } from './bolt-logger.js';
import { createResponseUrlPoster } from './response-url.js';
import { createSlackChat, createSlackWebClient, slackClientOptions } from './slack-chat.js';

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

export interface AlertAction {
  readonly action: 'startFailover' | 'mute' | 'acknowledge';
  readonly node: string;
  readonly incident?: string | undefined;
  readonly user: string;
  readonly channel: string;
  /** The alert message clicked, when Slack says. */
  readonly messageTs?: string | undefined;
}

export interface SlackAppDeps {
  readonly env: SlackAppEnv;
  readonly config: CellopsConfig;
  readonly engine: Engine;
  /** The engine's approval policy (who may start, abort, resume, mute). */
  readonly policy: CommandPolicy;
  /** Absent when the monitor is not running; commands that need it say so. */
  readonly monitor?: MonitorControl | undefined;
  readonly redis: Redis;
  readonly logger: Logger;
  /** Prometheus text for GET /metrics; without it /metrics answers 404. */
  readonly metrics?: () => Promise<string>;
  /** Extra health checks (Redis and Slack auth are always checked). */
  readonly healthy?: () => Promise<{ ok: boolean; details: Record<string, unknown> }>;
  /** Called after an alert button was handled, e.g. for the monitor to edit its alert message. */
  readonly onAlertAction?: (action: AlertAction) => Promise<void>;
  /** The Chat adapter (for permalinks and ephemeral fallbacks). Default: one built over the bot token. */
  readonly chat?: Chat;
  readonly clock?: Clock;
  /** Runbook ids the engine has (commands for missing ones say so). Default: assume all. */
  readonly runbooks?: readonly string[];
  /** Sandbox: enables `/cell drill`. */
  readonly sandbox?: boolean;
  readonly drill?: Parameters<typeof createCommandHandlers>[0]['drill'];
  /** How long a delivery is remembered to drop Slack redeliveries. Default 1 h. */
  readonly dedupTtlSeconds?: number;
}

export interface SlackAppHandle {
  /** The HTTP port actually listened on (useful with port 0). */
  readonly port: number;
  readonly mode: 'http' | 'socket';
  /** The plain handlers behind the listeners (the sandbox console drives the same ones). */
  readonly handlers: CommandHandlers;
  stop(): Promise<void>;
}

interface BotIdentity {
  readonly botId: string;
  readonly botUserId: string;
  readonly teamId?: string;
}

const COMMANDS = { failover: '/failover', cell: '/cell' } as const;

function toRespond(reply: Reply, replaceOriginal: boolean | undefined): Record<string, unknown> {
  const message: Record<string, unknown> = {
    response_type: reply.ephemeral ? 'ephemeral' : 'in_channel',
    text: reply.text,
    ...(reply.blocks === undefined ? {} : { blocks: reply.blocks }),
    ...(replaceOriginal === undefined ? {} : { replace_original: replaceOriginal }),
  };
  return message;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export async function startSlackApp(deps: SlackAppDeps): Promise<SlackAppHandle> {
  const { env, config, engine, redis } = deps;
  const logger = deps.logger.child({ component: 'slack' });
  const clock = deps.clock ?? createSystemClock();
  const keys: RedisKeys = createRedisKeys(config.redisPrefix);
  const slackLogger = boltLogger(logger, LogLevel.WARN);
  const client = createSlackWebClient(env.botToken, { apiUrl: env.apiUrl, logger: slackLogger });
  const chat = deps.chat ?? createSlackChat({ client, redis, keys, clock, logger });
  const dedupTtl = deps.dedupTtlSeconds ?? 3_600;
  const responses = createResponseUrlPoster();

  const handlers = createCommandHandlers({
    config,
    engine,
    policy: deps.policy,
    monitor: deps.monitor,
    chat,
    clock,
    logger,
    ...(deps.sandbox === undefined ? {} : { sandbox: deps.sandbox }),
    ...(deps.runbooks === undefined ? {} : { runbooks: deps.runbooks }),
    ...(deps.drill === undefined ? {} : { drill: deps.drill }),
  });

  // ---- identity: auth.test outside Bolt, never on the ack path ----
  let identity: BotIdentity | undefined;
  let authError: string | undefined;
  const authTest = async (): Promise<void> => {
    try {
      const result = (await client.apiCall('auth.test')) as {
        user_id?: string;
        bot_id?: string;
        team_id?: string;
      };
      if (!result.user_id || !result.bot_id) throw new Error('auth.test answered without user_id/bot_id');
      identity = {
        botId: result.bot_id,
        botUserId: result.user_id,
        ...(result.team_id ? { teamId: result.team_id } : {}),
      };
      authError = undefined;
    } catch (error) {
      authError =
        error instanceof webApi.WebAPIPlatformError
          ? `Slack refused the bot token (${String(error.data.error)}): check SLACK_BOT_TOKEN`
          : `Slack's Web API is not reachable (${redactSecrets(error instanceof Error ? error.message : String(error))}): check the network and SLACK_API_URL`;
      throw new Error(authError, { cause: error });
    }
  };
  try {
    await authTest();
    logger.info({ botUserId: identity?.botUserId }, 'Slack auth.test ok');
  } catch {
    logger.error(
      { problem: authError },
      'Slack auth.test failed at start; the bot keeps running, /healthz reports it and retries',
    );
  }

  // ---- dedup of redeliveries ----
  const firstDelivery = async (id: string | undefined, retryNum: number | undefined): Promise<boolean> => {
    if (!id) return true;
    try {
      const set = await redis.set(keys.dedup(`slack:${id}`), String(retryNum ?? 0), 'EX', dedupTtl, 'NX');
      if (set === null) logger.info({ delivery: id, retryNum }, 'dropped a redelivered Slack request');
      return set !== null;
    } catch (error) {
      // Better to risk a duplicate (the engine's decisions are atomic anyway) than to drop a command.
      logger.warn({ err: error }, 'could not check a Slack delivery for duplicates');
      return true;
    }
  };

  const reply = async (
    reply: Reply | undefined,
    responseUrl: string | undefined,
    fallback: { channel: string | undefined; user: string },
    replaceOriginal?: boolean,
  ): Promise<void> => {
    if (!reply) return;
    try {
      if (!responseUrl) throw new Error('the request came without a response_url');
      await responses.post(responseUrl, toRespond(reply, replaceOriginal));
    } catch (error) {
      logger.warn({ err: error }, 'response_url failed; answering with chat.postEphemeral');
      if (fallback.channel) {
        await chat
          .postEphemeral(fallback.channel, fallback.user, {
            text: reply.text,
            ...(reply.blocks ? { blocks: reply.blocks } : {}),
          })
          .catch((e: unknown) => logger.error({ err: e }, 'could not answer the user at all'));
      }
    }
  };

  // ---- health and metrics routes ----
  const withTimeout = async <T>(promise: Promise<T>, ms: number, what: string): Promise<T> => {
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
  };

  const health = async (): Promise<{ ok: boolean; details: Record<string, unknown> }> => {
    const details: Record<string, unknown> = {};
    let ok = true;
    try {
      await withTimeout(redis.ping(), 1_000, 'Redis');
      details.redis = 'ok';
    } catch (error) {
      ok = false;
      details.redis = redactSecrets(error instanceof Error ? error.message : String(error));
    }
    if (!identity) await withTimeout(authTest(), 3_000, 'Slack auth.test').catch(() => undefined);
    details.slack = identity ? 'ok' : (authError ?? 'auth.test has not succeeded');
    if (!identity) ok = false;
    if (deps.healthy) {
      try {
        const extra = await deps.healthy();
        Object.assign(details, extra.details);
        ok = ok && extra.ok;
      } catch (error) {
        ok = false;
        details.checks = redactSecrets(error instanceof Error ? error.message : String(error));
      }
    }
    return { ok, details };
  };

  const customRoutes: CustomRoute[] = [
    {
      path: '/healthz',
      method: ['GET'],
      handler: (_req: IncomingMessage, res: ServerResponse) => {
        void health().then(
          (result) => sendJson(res, result.ok ? 200 : 503, { ok: result.ok, ...result.details }),
          (error: unknown) => sendJson(res, 503, { ok: false, error: String(error) }),
        );
      },
    },
    {
      path: '/metrics',
      method: ['GET'],
      handler: (_req: IncomingMessage, res: ServerResponse) => {
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
            logger.warn({ err: error }, 'metrics failed');
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end('metrics failed\n');
          },
        );
      },
    },
  ];

  // ---- the app ----
  const authorize = async () => ({
    botToken: env.botToken,
    ...(identity ? { botId: identity.botId, botUserId: identity.botUserId } : {}),
  });
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

  /**
   * Every listener: ack, then one turn of the event loop, then dedup and work; true when the work ran.
   * Without that turn, in a burst (50 clicks at once) the later acks would queue behind the earlier
   * requests' Redis round trips, handlers and response_url posts, which continue as microtasks right
   * after `ack()`, before the event loop reads the next request. setImmediate runs after the I/O that is
   * already waiting, so every request that has arrived is acked first. A redelivery is acked and
   * dropped. Handlers answer their own errors (src/commands/handlers.ts renders them).
   */
  const acknowledged = async (
    ack: () => Promise<void>,
    delivery: {
      readonly id: string | undefined;
      readonly retryNum: number | undefined;
      /** Where the answer goes (Slack's response_url of this request). */
      readonly responseUrl: string | undefined;
      readonly fallback: { channel: string | undefined; user: string };
      /** Click answers are new ephemeral messages, never a replacement of the clicked message. */
      readonly replaceOriginal?: boolean;
    },
    work: () => Promise<Reply | undefined>,
  ): Promise<boolean> => {
    await ack();
    await nextTurn();
    if (!(await firstDelivery(delivery.id, delivery.retryNum))) return false;
    await reply(await work(), delivery.responseUrl, delivery.fallback, delivery.replaceOriginal);
    return true;
  };

  const command = (name: keyof typeof COMMANDS) =>
    app.command(COMMANDS[name], async ({ command: body, ack, context }) => {
      const request = { user: body.user_id, channel: body.channel_id, text: body.text ?? '' };
      await acknowledged(
        ack,
        {
          id: body.trigger_id,
          retryNum: context.retryNum,
          responseUrl: body.response_url,
          fallback: { channel: body.channel_id, user: body.user_id },
        },
        () => (name === 'failover' ? handlers.failover(request) : handlers.cell(request)),
      );
    });
  command('failover');
  command('cell');

  const clickDelivery = (body: BlockAction<ButtonAction>, action: ButtonAction): string =>
    `${body.user.id}:${action.action_ts}:${action.action_id}`;

  for (const [decision, actionId] of [
    ['approve', RUN_ACTIONS.approve],
    ['abort', RUN_ACTIONS.abort],
  ] as const) {
    app.action<BlockAction<ButtonAction>>(actionId, async ({ ack, body, action, context }) => {
      await acknowledged(
        ack,
        {
          id: clickDelivery(body, action),
          retryNum: context.retryNum,
          responseUrl: body.response_url,
          fallback: { channel: body.channel?.id, user: body.user.id },
          replaceOriginal: false,
        },
        () => handlers.runAction({ user: body.user.id, decision, value: action.value ?? '' }),
      );
    });
  }

  for (const [kind, actionId] of Object.entries(ALERT_ACTIONS) as [AlertAction['action'], string][]) {
    app.action<BlockAction<ButtonAction>>(actionId, async ({ ack, body, action, context }) => {
      const channel = body.channel?.id ?? config.slack.channel;
      const handled = await acknowledged(
        ack,
        {
          id: clickDelivery(body, action),
          retryNum: context.retryNum,
          responseUrl: body.response_url,
          fallback: { channel, user: body.user.id },
          replaceOriginal: false,
        },
        () => handlers.alertAction({ user: body.user.id, channel, action: kind, value: action.value ?? '' }),
      );
      if (handled && deps.onAlertAction) {
        let value: { node?: unknown; incident?: unknown } = {};
        try {
          value = JSON.parse(action.value ?? '{}') as typeof value;
        } catch {
          // the handler already told the user the value was bad
        }
        if (typeof value.node === 'string') {
          await deps
            .onAlertAction({
              action: kind,
              node: value.node,
              incident: typeof value.incident === 'string' ? value.incident : undefined,
              user: body.user.id,
              channel,
              messageTs: body.message?.ts,
            })
            .catch((error: unknown) => logger.warn({ err: error }, 'onAlertAction failed'));
        }
      }
    });
  }

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
    handlers,
    async stop() {
      await app.stop();
      responses.close();
    },
  };
}
