/**
 * The production entry point: the only place that builds real adapters (SSH, EC2, Slack, Redis);
 * src/app/create-cellops.ts wires the application over them. With no SLACK_BOT_TOKEN it starts the sandbox
 * instead (a simulated cell with a web console on loopback).
 *
 * Start-up order: environment → configuration (refuse to start on any problem) → Redis → ports → stores →
 * engine (which resumes runs whose owner died) → monitor → Slack. Shutdown reverses it on SIGINT/SIGTERM.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { collectDefaultMetrics } from 'prom-client';
import { readEnv, describeEnv, type EnvConfig } from './config/env.js';
import { loadConfigFile } from './config/load.js';
import type { CellopsConfig } from './config/config.js';
import { ConfigError, describeError } from './errors.js';
import type { Logger } from './ports/logger.js';
import type { Clock } from './ports/clock.js';
import type { RunbookPorts } from './runbooks/types.js';
import { createLogger, shouldPrettyPrint } from './infra/logger.js';
import { secretsFromEnv, setKnownSecrets } from './infra/redact.js';
import { createSystemClock } from './infra/system-clock.js';
import { createRedisKeys } from './infra/redis-keys.js';
import { createRedisCellState } from './infra/redis-cell-state.js';
import { createRedisRateLimiter } from './infra/redis-rate-limiter.js';
import { createRedisClient } from './infra/redis-client.js';
import { createCellShell } from './adapters/ssh/cell-shell.js';
import { createEc2Cloud } from './adapters/ec2/ec2-cloud.js';
import { createNodeRpc } from './adapters/rpc/node-rpc.js';
import { createRedisLock } from './locks/redis-lock.js';
import { createRedisRunStore } from './runbooks/engine/redis-run-store.js';
import { createRedisIncidentStore } from './monitor/incidents.js';
import { createSlackChat, createSlackWebClient } from './bot/slack-chat.js';
import { createRedisMessageRefStore } from './bot/run-presenter.js';
import { boltLogger } from './bot/bolt-logger.js';
import { startSlackApp } from './bot/slack-app.js';
import { createCellops, DRY_RUN_WINDOW_MS } from './app/create-cellops.js';
import { startSandbox } from './sandbox/start-sandbox.js';
import { readPagerSecrets } from './escalation/pager-env.js';
import { createPagers } from './adapters/pager/create-pagers.js';
import { createRedisEscalationStore } from './escalation/redis-escalation-store.js';
import type { Pager } from './ports/pager.js';

/** How often this replica looks for runs whose owner died. */
const RECOVER_EVERY_MS = 15_000;

export interface Running {
  stop(): Promise<void>;
}

/** Runs `fn` every `everyMs` until stopped, never overlapping itself. */
function every(
  clock: Clock,
  everyMs: number,
  fn: () => Promise<void>,
  logger: Logger,
  what: string,
): () => Promise<void> {
  const controller = new AbortController();
  const loop = (async () => {
    while (!controller.signal.aborted) {
      try {
        await fn();
      } catch (error) {
        logger.warn({ err: error }, `${what} failed; will try again`);
      }
      await clock.sleep(everyMs, controller.signal).catch(() => undefined);
    }
  })();
  return async () => {
    controller.abort(new Error('stopping'));
    await loop;
  };
}

export async function startBot(
  env: EnvConfig & { botToken: string },
  config: CellopsConfig,
  logger: Logger,
): Promise<Running> {
  const clock = createSystemClock();
  // Pager secrets are read before anything starts: a missing one is a ConfigError and the bot does not start.
  const pagers: Pager[] | undefined = config.escalation
    ? createPagers(config.escalation, readPagerSecrets(config.escalation, process.env), { clock })
    : undefined;
  const redis = createRedisClient(env.redisUrl, process.env, { logger });
  const keys = createRedisKeys(config.redisPrefix);
  const ownerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;

  const shell = createCellShell({ ssh: config.ssh, logger: logger.child({ component: 'ssh' }) });
  const ports: RunbookPorts = {
    shell,
    cloud: createEc2Cloud({
      ...(config.aws.region === undefined ? {} : { region: config.aws.region }),
      clock,
      logger,
    }),
    rpc: createNodeRpc({ shell, attachCommand: config.ssh.attachCommand, logger }),
    clock,
    state: createRedisCellState({ redis, keys, logger }),
  };

  const client = createSlackWebClient(env.botToken, { apiUrl: env.slackApiUrl, logger: boltLogger(logger) });
  const chat = createSlackChat({ client, redis, keys, clock, logger });
  const { engine, presenter, monitor, metrics, handlers, escalation } = createCellops({
    config,
    ports,
    chat,
    stores: {
      runs: createRedisRunStore({ redis, keys, logger, retentionMs: config.runs.retentionMs }),
      lock: createRedisLock({ redis, keys, clock, logger }),
      incidents: createRedisIncidentStore({ redis, keys, clock, logger }),
      refs: createRedisMessageRefStore(redis, keys, 30, logger),
      dryRuns: createRedisRateLimiter({
        redis,
        key: (user) => keys.dryRuns(user),
        limit: config.runs.dryRunsPerMinute,
        windowMs: DRY_RUN_WINDOW_MS,
      }),
    },
    logger,
    ownerId,
    replicaId: ownerId,
    readinessChecks: true,
    // Command refusals and failures are logged with the Slack requests that caused them.
    commandLogger: logger.child({ component: 'slack' }),
    ...(config.escalation && pagers
      ? {
          escalation: {
            settings: config.escalation,
            pagers,
            store: createRedisEscalationStore({ redis, keys, logger }),
          },
        }
      : {}),
  });
  await escalation?.start();

  // Process metrics (CPU, memory, event loop lag, GC, handles) next to the bot's own.
  collectDefaultMetrics({ register: metrics.registry });
  const app = await startSlackApp({
    env: {
      botToken: env.botToken,
      signingSecret: env.signingSecret ?? '',
      appToken: env.appToken,
      apiUrl: env.slackApiUrl,
      port: env.port,
      healthPort: env.healthPort,
      healthHost: env.healthHost,
    },
    config,
    handlers,
    redis,
    logger,
    chat,
    clock,
    metrics: () => metrics.render(),
    registry: metrics.registry,
  });

  const stopRecovery = every(
    clock,
    RECOVER_EVERY_MS,
    () => engine.recover(),
    logger,
    'resuming orphaned runs',
  );
  monitor.start();
  logger.info(
    { port: app.port, mode: app.mode, cell: config.cell, nodes: Object.keys(config.nodes) },
    'cellops is running',
  );

  return {
    stop: async () => {
      logger.info({}, 'cellops is stopping; runs stay in Redis and resume on the next start or replica');
      await monitor.stop();
      await escalation?.stop();
      await stopRecovery();
      await app.stop();
      await engine.close();
      await presenter.idle();
      await shell.close();
      redis.disconnect();
    },
  };
}

/** Runs `start`; a ConfigError prints its problems and what to do, and the process exits without starting. */
async function refuseOnConfigError<T>(start: () => Promise<T>, hint: string): Promise<T> {
  try {
    return await start();
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) process.stderr.write(`${problem}\n`);
      process.stderr.write(`cellops did not start: ${hint}\n`);
      process.exit(1);
    }
    throw error;
  }
}

async function main(): Promise<void> {
  let env: EnvConfig;
  try {
    env = readEnv(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) process.stderr.write(`${problem}\n`);
      process.exit(1);
    }
    throw error;
  }
  const pretty = shouldPrettyPrint(process.env, process.stdout.isTTY === true, env.botToken === undefined);
  const logger = createLogger({ level: env.logLevel, pretty });
  logger.info(describeEnv(env), 'cellops starting');

  let running: Running;
  if (env.botToken === undefined) {
    const sandbox = await startSandbox({ env, logger, port: env.port });
    logger.info(
      { url: sandbox.url, store: sandbox.store.description },
      `SANDBOX: open ${sandbox.url} (no SLACK_BOT_TOKEN set)`,
    );
    process.stdout.write(`\ncellops sandbox: open ${sandbox.url}\n  state: ${sandbox.store.description}\n\n`);
    running = sandbox;
  } else {
    const botToken = env.botToken;
    const config = await refuseOnConfigError(
      () => loadConfigFile(env.configPath),
      'fix the configuration above (check it with: npm run cellops -- check-config)',
    );
    // The exact values of the secrets this process holds are scrubbed wherever they would appear, even
    // where they have no recognisable shape (a signing secret is just hex).
    setKnownSecrets(secretsFromEnv(process.env, config.ssh.passphraseEnv));
    running = await refuseOnConfigError(
      () => startBot({ ...env, botToken }, config, logger),
      'set the variables above or change escalation in the configuration',
    );
  }

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  process.on('unhandledRejection', (reason) => {
    process.stderr.write(`cellops: unhandled rejection: ${describeError(reason)}\n`);
  });
  main().catch((error: unknown) => {
    process.stderr.write(`cellops failed to start: ${describeError(error)}\n`);
    process.exit(1);
  });
}
