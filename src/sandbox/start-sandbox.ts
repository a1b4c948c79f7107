/**
 * The sandbox (`npm start` with no SLACK_BOT_TOKEN): the real engine, monitor, command handlers and run
 * presenter over a simulated Core Cell in this process, shown in a Slack-like web console on loopback.
 *
 * 1. State goes where openSandboxStore finds room: REDIS_URL if it answers, else an own redis-server, else
 *    memory. Keys carry a per-process prefix, so runs and roles of an earlier sandbox never mix in.
 * 2. The cell (sim-cell-seed.ts) is seeded healthy, with its nodekey backups and image recorded.
 * 3. The console posts slash commands, button clicks and faults; they go to the same handlers Slack's
 *    receiver calls, and their replies are shown ephemeral or in the channel as Slack would.
 * 4. The monitor probes the simulated nodes on the real clock and posts alerts; the engine runs the real
 *    runbooks against the simulated hosts and EC2; the presenter posts runs exactly as to Slack.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { EnvConfig } from '../config/env.js';
import type { CellopsConfig } from '../config/config.js';
import { formatDuration } from '../config/duration.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { CellState } from '../ports/cell-state.js';
import type { MessageRef } from '../ports/chat.js';
import { createSystemClock } from '../infra/system-clock.js';
import { createRedisKeys } from '../infra/redis-keys.js';
import { createMemoryCellState } from '../infra/memory-cell-state.js';
import { createRedisCellState } from '../infra/redis-cell-state.js';
import { createMemoryLock } from '../locks/memory-lock.js';
import { createRedisLock } from '../locks/redis-lock.js';
import type { EngineOptions } from '../runbooks/engine/engine.js';
import { createMemoryRunStore } from '../runbooks/engine/memory-run-store.js';
import { createRedisRunStore } from '../runbooks/engine/redis-run-store.js';
import type { Engine, RunRecord } from '../runbooks/types.js';
import type { MonitorOptions } from '../monitor/monitor.js';
import { createMemoryIncidentStore, createRedisIncidentStore } from '../monitor/incidents.js';
import { createMemoryMessageRefStore, createRedisMessageRefStore } from '../bot/run-presenter.js';
import { renderNotice } from '../views/cell.js';
import { renderRunResult } from '../views/run.js';
import { escapeText, mention } from '../views/kit.js';
import { createCellops, type Cellops, type CellopsStores } from '../app/create-cellops.js';
import { createConsoleChat, type ConsoleChat } from './console-chat.js';
import { createConsoleHandlers } from './console-handlers.js';
import { startConsoleServer, type ConsoleHandlers } from './console-server.js';
import { openSandboxStore, type SandboxStore } from './sandbox-redis.js';
import {
  createSandboxCell,
  generateSandboxKeys,
  recordSandboxState,
  SANDBOX_USERGROUPS,
  SANDBOX_USERS,
  sandboxConfig,
  type SandboxCell,
  type SandboxMonitorSettings,
} from './sim-cell-seed.js';
import type { SimDelays } from './sim-cloud.js';
import { createDrills, type Drills } from './drill.js';
import type { Pager } from '../ports/pager.js';
import { createSandboxPager, type SandboxPager } from './sandbox-pager.js';
import type { SandboxConfigOptions } from './sim-cell-seed.js';

export interface StartSandboxOptions {
  /** REDIS_URL and whether it was set (see openSandboxStore). */
  readonly env: Pick<EnvConfig, 'redisUrl' | 'redisUrlSet'>;
  readonly logger: Logger;
  /** Console port on 127.0.0.1. Default 3000; 0 picks a free one. */
  readonly port?: number;
  /** `memory` skips Redis altogether (tests). Default `auto`: REDIS_URL, own redis-server, memory. */
  readonly store?: 'auto' | 'memory';
  /** Default: the real clock. */
  readonly clock?: Clock;
  /** Monitor settings as in cellops.yaml; default the documented defaults (3s, 10 blocks, 10s, 15s, 3). */
  readonly monitor?: SandboxMonitorSettings;
  readonly monitorOptions?: MonitorOptions;
  readonly engineOptions?: EngineOptions;
  /** Block time of the simulated chain. Default 1000 ms. */
  readonly blockMs?: number;
  /** Simulated EC2 durations. */
  readonly cloudDelays?: Partial<SimDelays>;
  /** How often the simulated EC2's waits look again. Default 1 s. */
  readonly cloudPollMs?: number;
  /** How long a drill leaves each approval request up before its approver clicks. Default 1.5 s. */
  readonly drillApprovalDelayMs?: number;
  /** Escalation delays as in cellops.yaml; default short ones (30s, 1m, 2m). */
  readonly escalation?: SandboxConfigOptions['escalation'];
  /** Pagers besides the recording one of the Pager panel (tests point real adapters at stand-ins). */
  readonly pagers?: readonly Pager[];
}

export interface Sandbox {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly config: CellopsConfig;
  /** Where state is kept: `redis` or `memory`, and in words. */
  readonly store: { readonly kind: SandboxStore['kind']; readonly description: string };
  readonly cell: SandboxCell;
  readonly engine: Engine;
  /** Roles, backups and images as cellops records them. */
  readonly state: CellState;
  readonly chat: ConsoleChat;
  readonly handlers: ConsoleHandlers;
  stop(): Promise<void>;
}

interface Stores extends CellopsStores {
  readonly state: CellState;
  readonly redis?: Redis;
}

function storesFor(store: SandboxStore, config: CellopsConfig, clock: Clock, logger: Logger): Stores {
  if (store.kind === 'redis') {
    const { redis } = store;
    const keys = createRedisKeys(config.redisPrefix);
    return {
      redis,
      runs: createRedisRunStore({ redis, keys, logger, retentionMs: config.runs.retentionMs }),
      lock: createRedisLock({ redis, keys, clock, logger }),
      state: createRedisCellState({ redis, keys, logger }),
      incidents: createRedisIncidentStore({ redis, keys, clock, logger }),
      refs: createRedisMessageRefStore(redis, keys, 1, logger),
    };
  }
  return {
    runs: createMemoryRunStore({ clock }),
    lock: createMemoryLock({ clock, logger }),
    state: createMemoryCellState(),
    incidents: createMemoryIncidentStore({ clock }),
    refs: createMemoryMessageRefStore(),
  };
}

async function openStore(options: StartSandboxOptions, clock: Clock): Promise<SandboxStore> {
  if (options.store === 'memory') {
    return {
      kind: 'memory',
      description: 'in-memory stores (asked for by the caller)',
      stop: async () => undefined,
    };
  }
  return openSandboxStore({ redisUrl: options.env.redisUrl, redisUrlSet: options.env.redisUrlSet, clock });
}

/** Deletes this sandbox's keys from a Redis that outlives it (REDIS_URL). */
async function removeKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}

function drillReportIntro(run: RunRecord, drill: { injected?: string }): string {
  return (
    `:stopwatch: *Drill report* — ${escapeText(run.summary)}, requested by ${mention(run.requester)}` +
    `${drill.injected ? ` (the drill began by having ${escapeText(drill.injected)})` : ''}. ` +
    'Approvals were given by the sandbox approvers; the step times below are what a real run reports. ' +
    'Press *Reset cell* to put the cell back and run it again.'
  );
}

function welcomeNotice(config: CellopsConfig, store: SandboxStore, blockMs: number): string {
  return [
    `:test_tube: *SANDBOX* — a simulated Core Cell *${escapeText(config.cell)}* runs in this process: cn1 (active) with its standby cn1s, cn2 (cloud style, snapshot mode), and pn1, pn2 producing ${formatDuration(blockMs)} blocks. No Slack workspace, no real nodes.`,
    `State is kept in ${escapeText(store.description)}.`,
    'Try `/cell status`, stall cn1 on the left and watch the alert, `/failover cn1`, or `/cell drill failover cn1`; after a failover `/cell rebuild-standby cn1` protects cn1 again, and `/failover cn1 --switchover` (or `/cell drill switchover cn1`) moves it back with both machines healthy. Stop cn2 and `/failover cn2` replaces it with a new instance from its image and a snapshot of pn1. Switch the user on the left to approve as someone else (four-eyes is on).',
  ].join('\n');
}

/** The engine, monitor and handlers over the simulated cell, with the drills as a second run observer. */
function buildApp(
  options: StartSandboxOptions,
  env: {
    config: CellopsConfig;
    cell: SandboxCell;
    chat: ConsoleChat;
    stores: Stores;
    clock: Clock;
    logger: Logger;
    sandboxId: string;
    say: (mrkdwn: string) => Promise<MessageRef>;
    pager: SandboxPager;
  },
): { app: Cellops; drills: Drills } {
  const { config, cell, chat, stores, clock, logger } = env;
  const channel = config.slack.channel;
  // The drills observe the engine's runs, and they reach the engine through this box, filled below.
  const late: { app?: Cellops } = {};
  const drills = createDrills({
    config,
    engine: () => {
      if (!late.app) throw new Error('the sandbox engine is not ready yet');
      return late.app.engine;
    },
    state: stores.state,
    directory: chat,
    sim: () => cell.current().sim,
    clock,
    logger,
    ...(options.drillApprovalDelayMs === undefined ? {} : { approvalDelayMs: options.drillApprovalDelayMs }),
    onFinished: async (run, drill) => {
      const result = renderRunResult(run, clock.now());
      await chat.post({
        channel,
        text: `Drill report: ${result.text}`,
        blocks: [renderNotice(drillReportIntro(run, drill)).blocks[0] ?? {}, ...result.blocks],
      });
    },
  });
  const app = createCellops({
    config,
    ports: { shell: cell.shell, cloud: cell.cloud, rpc: cell.rpc, clock, state: stores.state },
    chat,
    stores,
    logger,
    ownerId: `sandbox:${process.pid}:${env.sandboxId}`,
    replicaId: `sandbox-${env.sandboxId}`,
    observer: drills,
    sandbox: true,
    drill: async (cn, user, what) => {
      const run = await drills.start(cn, user, what);
      await env.say(
        `:stopwatch: *Drill* by ${mention(user)}: ${what === 'switchover' ? 'switching over' : 'failing over'} *${escapeText(cn)}* (run \`${escapeText(run.id)}\`)` +
          ' with approvals given automatically by the sandbox approvers. The run thread shows each step; a drill report follows at the end.',
      );
      return run;
    },
    ...(options.engineOptions === undefined ? {} : { engineOptions: options.engineOptions }),
    ...(options.monitorOptions === undefined ? {} : { monitorOptions: options.monitorOptions }),
    ...(config.escalation
      ? {
          escalation: {
            settings: config.escalation,
            pagers: [env.pager.pager, ...(options.pagers ?? [])],
            // A pager stand-in that fails in a test should fail fast.
            retry: { attempts: 3, baseMs: 100, maxMs: 1_000 },
          },
        }
      : {}),
  });
  late.app = app;
  return { app, drills };
}

export async function startSandbox(options: StartSandboxOptions): Promise<Sandbox> {
  const clock = options.clock ?? createSystemClock();
  const logger = options.logger.child({ component: 'sandbox', sandbox: true });
  const sandboxId = randomBytes(4).toString('hex');
  const config = sandboxConfig({
    redisPrefix: `cellops:sandbox:${sandboxId}:`,
    ...(options.monitor === undefined ? {} : { monitor: options.monitor }),
    ...(options.escalation === undefined ? {} : { escalation: options.escalation }),
  });
  const channel = config.slack.channel;

  const store = await openStore(options, clock);
  logger.info(
    { store: store.kind, prefix: config.redisPrefix },
    `SANDBOX: state is kept in ${store.description}`,
  );
  const stores = storesFor(store, config, clock, logger);

  const keys = generateSandboxKeys();
  const cell = createSandboxCell({
    clock,
    keys,
    ...(options.blockMs === undefined ? {} : { blockMs: options.blockMs }),
    ...(options.cloudDelays === undefined ? {} : { cloudDelays: options.cloudDelays }),
    ...(options.cloudPollMs === undefined ? {} : { cloudPollMs: options.cloudPollMs }),
  });
  await recordSandboxState(stores.state, keys, clock.now());

  const chat = createConsoleChat({ clock, usergroups: SANDBOX_USERGROUPS });
  const say = async (mrkdwn: string, threadTs?: string): Promise<MessageRef> =>
    chat.post({ channel, ...(threadTs === undefined ? {} : { threadTs }), ...renderNotice(mrkdwn) });
  const pager = createSandboxPager();
  const { app, drills } = buildApp(options, {
    config,
    cell,
    chat,
    stores,
    clock,
    logger,
    sandboxId,
    say,
    pager,
  });
  const { engine, monitor, metrics, presenter, escalation } = app;

  const handlers = createConsoleHandlers({
    chat,
    channel,
    commands: app.handlers,
    engine,
    cell,
    state: stores.state,
    keys,
    clock,
    logger,
    say,
    health: async () => ({
      ok: true,
      details: { sandbox: true, store: store.kind, monitorLeader: monitor.isLeader() },
    }),
    metrics: async () => metrics.render(),
    ...(escalation
      ? { pager: async () => pager.panel(escalation.policy.entries(), escalation.settings) }
      : {}),
  });

  const page = {
    cell: config.cell,
    channel,
    users: SANDBOX_USERS.map((u) => ({ id: u.id, name: u.name, role: u.role })),
    faultNodes: ['cn1', 'cn1s', 'cn2', 'pn1'],
    cellActions: [{ fault: 'reset', label: 'Reset cell' }],
  };
  const server = await startConsoleServer({ chat, handlers, page, port: options.port ?? 3000, logger });

  await chat.post({
    channel,
    ...renderNotice(welcomeNotice(config, store, options.blockMs ?? 1_000)),
    text: `SANDBOX started; state is kept in ${store.description}`,
  });
  logger.info({ url: server.url }, `SANDBOX console at ${server.url} (loopback only)`);

  await escalation?.start();
  monitor.start();

  let stopped = false;
  return {
    url: server.url,
    port: server.port,
    config,
    store: { kind: store.kind, description: store.description },
    cell,
    engine,
    state: stores.state,
    chat,
    handlers,
    async stop() {
      if (stopped) return;
      stopped = true;
      drills.close();
      await monitor.stop().catch((error: unknown) => logger.warn({ err: error }, 'monitor stop'));
      await escalation?.stop().catch((error: unknown) => logger.warn({ err: error }, 'escalation stop'));
      await engine.close().catch((error: unknown) => logger.warn({ err: error }, 'engine close'));
      await presenter.idle();
      await server.close();
      if (stores.redis) {
        await removeKeys(stores.redis, config.redisPrefix).catch((error: unknown) =>
          logger.warn({ err: error }, 'could not remove the sandbox keys from Redis'),
        );
      }
      await store.stop();
      logger.info({}, 'SANDBOX stopped');
    },
  };
}
