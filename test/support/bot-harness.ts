/**
 * A whole bot for end-to-end tests: the real Bolt HTTP receiver, the real engine on a real Redis (store,
 * lock, notifications), the run presenter and the Slack Chat adapter pointed at the Web API stand-in, and
 * a test `failover` runbook whose steps touch nothing (fake ports). Several bots may share one Redis, as
 * replicas do.
 */
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { startSlackApp, type SlackAppHandle } from '../../src/bot/slack-app.js';
import { createSlackChat, createSlackWebClient } from '../../src/bot/slack-chat.js';
import {
  createRedisMessageRefStore,
  createRunPresenter,
  type RunPresenter,
} from '../../src/bot/run-presenter.js';
import { createCommandHandlers } from '../../src/commands/handlers.js';
import type { CellopsConfig } from '../../src/config/config.js';
import { createRedisKeys } from '../../src/infra/redis-keys.js';
import { createSystemClock } from '../../src/infra/system-clock.js';
import { createRedisLock } from '../../src/locks/redis-lock.js';
import type { Logger } from '../../src/ports/logger.js';
import { createApprovalPolicy } from '../../src/runbooks/approval-policy.js';
import { createEngine } from '../../src/runbooks/engine/engine.js';
import { failoverParamsSchema, CELL_LOCK, type FailoverParams } from '../../src/runbooks/failover-params.js';
import { createRedisRunStore } from '../../src/runbooks/engine/redis-run-store.js';
import type { Engine, RunbookDefinition, RunbookPorts } from '../../src/runbooks/types.js';
import { closeRedis, testRedis } from './redis-client.js';
import type { SlackStandIn } from './slack-stand-in.js';

export const SIGNING_SECRET = 'e2e-signing-secret-0123456789abcdef';
export const BOT_TOKEN = 'xoxb-e2e-bot-token';

/** A failover-shaped runbook: a read-only preflight, two destructive steps, a check. Nothing is touched. */
export function testFailoverRunbook(): RunbookDefinition<FailoverParams> {
  const step = (id: string, title: string, destructive: boolean, readOnly = false) => ({
    id,
    title,
    describe: ({ params }: { params: FailoverParams }) =>
      `${title.toLowerCase()} for ${params.cn} (test step)`,
    destructive,
    ...(readOnly ? { readOnly: true } : {}),
    run: async (ctx: { output(line: string): void; params: FailoverParams }) => {
      ctx.output(`${id} done on ${ctx.params.cn}`);
    },
  });
  return {
    id: 'failover',
    version: 1,
    title: 'Test failover',
    params: failoverParamsSchema,
    lockKey: () => CELL_LOCK,
    node: (params) => params.cn,
    summary: (params) => `failover ${params.cn}`,
    steps: () => [
      step('preflight', 'Preflight', false, true),
      step('fence', 'Fence the old active', true),
      step('swap', 'Install the nodekey on the standby', true),
      step('verify', 'Verify the standby signs', false),
    ],
  };
}

export interface TestBot {
  /** POST /slack/events (HTTP mode). */
  readonly url: string;
  /** Where /livez, /readyz, /healthz and /metrics are served. */
  readonly healthUrl: string;
  readonly engine: Engine;
  readonly presenter: RunPresenter;
  readonly app: SlackAppHandle;
  readonly redis: Redis;
  close(): Promise<void>;
}

export async function startTestBot(options: {
  readonly redisUrl: string;
  readonly config: CellopsConfig;
  readonly slack: SlackStandIn;
  readonly ownerId: string;
  readonly logger: Logger;
  /** Socket Mode with this app-level token (see ./socket-mode-stand-in.ts); default the HTTP receiver. */
  readonly appToken?: string;
  /** Serve the probes and /metrics on a port of their own (0: any free one), as HEALTH_PORT does. */
  readonly healthPort?: number;
  /** Prometheus text for /metrics. */
  readonly metrics?: () => Promise<string>;
  /** Where the Socket Mode gauges go. */
  readonly registry?: Registry;
  /** Socket Mode: waits before reconnection attempts in a row. */
  readonly socketReconnectDelaysMs?: readonly number[];
}): Promise<TestBot> {
  const { config, logger } = options;
  const redis = testRedis(options.redisUrl);
  const keys = createRedisKeys(config.redisPrefix);
  const clock = createSystemClock();
  const client = createSlackWebClient(BOT_TOKEN, { apiUrl: options.slack.apiUrl, timeoutMs: 2_000 });
  const chat = createSlackChat({ client, redis, keys, clock, logger });
  const policy = createApprovalPolicy({ slack: config.slack, directory: chat });
  // The presenter is the engine's observer, so it reaches the engine through this box, filled below.
  const built: { engine?: Engine } = {};
  const presenter = createRunPresenter({
    chat,
    refs: createRedisMessageRefStore(redis, keys),
    config,
    clock,
    logger,
    recordThread: async (runId, ref) => built.engine?.setThread(runId, ref),
  });
  const engine = createEngine({
    store: createRedisRunStore({ redis, keys, logger }),
    lock: createRedisLock({ redis, keys, clock, logger }),
    runbooks: [testFailoverRunbook()],
    // The test runbook's steps use no port.
    ports: { clock } as unknown as RunbookPorts,
    config,
    policy,
    observer: presenter,
    clock,
    logger,
    ownerId: options.ownerId,
    options: { pollMs: 500 },
  });
  built.engine = engine;
  const app = await startSlackApp({
    env: {
      botToken: BOT_TOKEN,
      signingSecret: SIGNING_SECRET,
      apiUrl: options.slack.apiUrl,
      port: 0,
      host: '127.0.0.1',
      ...(options.appToken === undefined ? {} : { appToken: options.appToken }),
      ...(options.healthPort === undefined ? {} : { healthPort: options.healthPort }),
    },
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
    ...(options.registry === undefined ? {} : { registry: options.registry }),
    ...(options.socketReconnectDelaysMs === undefined
      ? {}
      : { socketReconnectDelaysMs: options.socketReconnectDelaysMs }),
    config,
    handlers: createCommandHandlers({
      config,
      engine,
      policy,
      chat,
      clock,
      logger: logger.child({ component: 'slack' }),
      runbooks: ['failover'],
    }),
    redis,
    logger,
    chat,
    clock,
  });
  return {
    url: `http://127.0.0.1:${app.port}/slack/events`,
    healthUrl: `http://127.0.0.1:${app.healthPort}`,
    engine,
    presenter,
    app,
    redis,
    close: async () => {
      await app.stop();
      await engine.close();
      await presenter.idle();
      await closeRedis(redis);
    },
  };
}
