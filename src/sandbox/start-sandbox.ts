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
import { describeError, InputError } from '../errors.js';
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
import type { RunLock } from '../locks/types.js';
import { createEngine, type EngineOptions } from '../runbooks/engine/engine.js';
import { createApprovalPolicy } from '../runbooks/approval-policy.js';
import { createMemoryRunStore } from '../runbooks/engine/memory-run-store.js';
import { createRedisRunStore } from '../runbooks/engine/redis-run-store.js';
import type { RunStore } from '../runbooks/engine/run-store.js';
import { createRunbooks } from '../runbooks/registry.js';
import type { Engine, RunStatus } from '../runbooks/types.js';
import { createMonitor, type MonitorOptions } from '../monitor/monitor.js';
import {
  createMemoryIncidentStore,
  createRedisIncidentStore,
  type IncidentStore,
} from '../monitor/incidents.js';
import { createMonitorMetrics } from '../monitor/metrics.js';
import { ALERT_ACTIONS } from '../monitor/types.js';
import {
  createMemoryMessageRefStore,
  createRedisMessageRefStore,
  createRunPresenter,
  type MessageRefStore,
} from '../bot/run-presenter.js';
import { RUN_ACTIONS } from '../bot/action-ids.js';
import { renderNotice } from '../bot/blocks/cell.js';
import { renderRunResult } from '../bot/blocks/run.js';
import { escapeText, mention } from '../bot/blocks/kit.js';
import { formatDuration } from '../config/duration.js';
import { createCommandHandlers, type CommandHandlers } from '../commands/handlers.js';
import type { Reply } from '../commands/reply.js';
import { createConsoleChat, type ConsoleChat } from './console-chat.js';
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
import { applyFault, isSandboxFault } from './faults.js';
import { createDrills, type Drills } from './drill.js';

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

const ACTIVE: readonly RunStatus[] = ['pending', 'running', 'waiting-approval', 'paused'];

interface Stores {
  readonly runs: RunStore;
  readonly lock: RunLock;
  readonly state: CellState;
  readonly incidents: IncidentStore;
  readonly refs: MessageRefStore;
}

function storesFor(
  store: SandboxStore,
  config: CellopsConfig,
  clock: Clock,
  logger: Logger,
): Stores & { redis?: Redis } {
  if (store.kind === 'redis') {
    const { redis } = store;
    const keys = createRedisKeys(config.redisPrefix);
    return {
      redis,
      runs: createRedisRunStore({ redis, keys, logger }),
      lock: createRedisLock({ redis, keys, clock, logger }),
      state: createRedisCellState({ redis, keys }),
      incidents: createRedisIncidentStore({ redis, keys, clock }),
      refs: createRedisMessageRefStore(redis, keys, 1),
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

/** Deletes this sandbox's keys from a Redis that outlives it (REDIS_URL). */
async function removeKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}

/** Splits `/failover cn1 --dry-run` into the command and its text. */
function splitCommand(input: string): { command: string; text: string } {
  const trimmed = input.trim();
  const space = trimmed.search(/\s/);
  if (space < 0) return { command: trimmed.toLowerCase(), text: '' };
  return { command: trimmed.slice(0, space).toLowerCase(), text: trimmed.slice(space + 1).trim() };
}

export async function startSandbox(options: StartSandboxOptions): Promise<Sandbox> {
  const clock = options.clock ?? createSystemClock();
  const logger = options.logger.child({ component: 'sandbox', sandbox: true });
  const sandboxId = randomBytes(4).toString('hex');
  const config = sandboxConfig({
    redisPrefix: `cellops:sandbox:${sandboxId}:`,
    ...(options.monitor === undefined ? {} : { monitor: options.monitor }),
  });
  const channel = config.slack.channel;

  const store: SandboxStore =
    options.store === 'memory'
      ? {
          kind: 'memory',
          description: 'in-memory stores (asked for by the caller)',
          stop: async () => undefined,
        }
      : await openSandboxStore({
          redisUrl: options.env.redisUrl,
          redisUrlSet: options.env.redisUrlSet,
          clock,
        });
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
  const policy = createApprovalPolicy({ slack: config.slack, directory: chat });
  const say = async (mrkdwn: string, threadTs?: string): Promise<MessageRef> =>
    chat.post({ channel, ...(threadTs === undefined ? {} : { threadTs }), ...renderNotice(mrkdwn) });

  // The engine is built with the presenter and the drills as its observer, and they need the engine.
  const late: { engine?: Engine } = {};
  const engineNow = (): Engine => {
    if (!late.engine) throw new Error('the sandbox engine is not ready yet');
    return late.engine;
  };
  const presenter = createRunPresenter({
    chat,
    refs: stores.refs,
    config,
    clock,
    logger,
    recordThread: (runId, ref) => engineNow().setThread(runId, ref),
  });
  const drills: Drills = createDrills({
    config,
    engine: engineNow,
    state: stores.state,
    directory: chat,
    sim: () => cell.current().sim,
    clock,
    logger,
    ...(options.drillApprovalDelayMs === undefined ? {} : { approvalDelayMs: options.drillApprovalDelayMs }),
    onFinished: async (run, drill) => {
      const result = renderRunResult(run, clock.now());
      const intro =
        `:stopwatch: *Drill report* — ${escapeText(run.summary)}, requested by ${mention(run.requester)}` +
        `${drill.injected ? ` (the drill began by having ${escapeText(drill.injected)})` : ''}. ` +
        'Approvals were given by the sandbox approvers; the step times below are what a real run reports. ' +
        'Press *Reset cell* to put the cell back and run it again.';
      await chat.post({
        channel,
        text: `Drill report: ${result.text}`,
        blocks: [renderNotice(intro).blocks[0] ?? {}, ...result.blocks],
      });
    },
  });
  const engine = createEngine({
    store: stores.runs,
    lock: stores.lock,
    runbooks: createRunbooks(),
    ports: { shell: cell.shell, cloud: cell.cloud, rpc: cell.rpc, clock, state: stores.state },
    config,
    policy,
    observer: {
      onRunEvent: async (run, event) => {
        await presenter.onRunEvent(run, event);
        await drills.onRunEvent(run, event);
      },
    },
    clock,
    logger,
    ownerId: `sandbox:${process.pid}:${sandboxId}`,
    ...(options.engineOptions === undefined ? {} : { options: options.engineOptions }),
  });
  late.engine = engine;

  const metrics = createMonitorMetrics();
  const monitor = createMonitor({
    config,
    rpc: cell.rpc,
    chat,
    clock,
    logger,
    store: stores.incidents,
    state: stores.state,
    metrics,
    replicaId: `sandbox-${sandboxId}`,
    ...(options.monitorOptions === undefined ? {} : { options: options.monitorOptions }),
  });

  const commands: CommandHandlers = createCommandHandlers({
    config,
    engine,
    policy,
    monitor,
    chat,
    clock,
    logger,
    sandbox: true,
    runbooks: createRunbooks().map((r) => r.id),
    drill: async (cn, user) => {
      const run = await drills.start(cn, user);
      await say(
        `:stopwatch: *Drill* by ${mention(user)}: failing over *${escapeText(cn)}* (run \`${escapeText(run.id)}\`)` +
          ' with approvals given automatically by the sandbox approvers. The run thread shows each step; a drill report follows at the end.',
      );
      return run;
    },
  });

  const sendReply = async (user: string, reply: Reply | undefined, threadTs?: string): Promise<void> => {
    if (!reply) return;
    await chat.reply(
      channel,
      user,
      {
        text: reply.text,
        ...(reply.blocks === undefined ? {} : { blocks: reply.blocks }),
        ...(threadTs === undefined ? {} : { threadTs }),
      },
      reply.ephemeral,
    );
  };

  const knownUser = (user: string): void => {
    if (!SANDBOX_USERS.some((u) => u.id === user)) throw new InputError(`unknown sandbox user "${user}"`);
  };

  const resetCell = async (user: string): Promise<void> => {
    const active = (await engineNow().list(50)).filter((r) => ACTIVE.includes(r.status));
    const first = active[0];
    if (first) {
      await sendReply(user, {
        ...renderNotice(
          `:no_entry: Not reset: run \`${escapeText(first.id)}\` (${escapeText(first.summary)}) is ${first.status}. Abort it first with \`/cell abort ${escapeText(first.id)}\`.`,
        ),
        ephemeral: true,
      });
      return;
    }
    cell.reset();
    // The EC2 side is new too: cn2 on its own instance again, with the image and backups recorded as at start.
    await recordSandboxState(stores.state, keys, clock.now(), 'sandbox-reset');
    logger.info({ user }, 'SANDBOX: cell reset');
    await say(
      `:arrows_counterclockwise: ${mention(user)} reset the simulated cell: every node healthy, cn1 active with its standby cn1s again, cn2 on its own instance with its Elastic IP (same nodekeys, backups and image in place). Try again.`,
    );
  };

  const handlers: ConsoleHandlers = {
    async command(input, user) {
      knownUser(user);
      const { command, text } = splitCommand(input);
      const request = { user, channel, text };
      let reply: Reply;
      if (command === '/failover') reply = await commands.failover(request);
      else if (command === '/cell') reply = await commands.cell(request);
      else {
        reply = {
          ...renderNotice(
            `:grey_question: \`${escapeText(command || input)}\` is not a cellops command here. Try \`/cell help\`, \`/cell status\`, \`/failover cn1\` or \`/cell drill failover cn1\`.`,
          ),
          ephemeral: true,
        };
      }
      await sendReply(user, reply);
    },

    async action(input) {
      knownUser(input.user);
      const inThread = input.threadTs !== input.messageTs ? input.threadTs : undefined;
      switch (input.actionId) {
        case RUN_ACTIONS.approve:
        case RUN_ACTIONS.abort: {
          const decision = input.actionId === RUN_ACTIONS.approve ? 'approve' : 'abort';
          const reply = await commands.runAction({ user: input.user, decision, value: input.value });
          await sendReply(input.user, reply, inThread);
          return;
        }
        case ALERT_ACTIONS.startFailover:
        case ALERT_ACTIONS.mute:
        case ALERT_ACTIONS.acknowledge: {
          const action =
            input.actionId === ALERT_ACTIONS.startFailover
              ? 'startFailover'
              : input.actionId === ALERT_ACTIONS.mute
                ? 'mute'
                : 'acknowledge';
          const reply = await commands.alertAction({ user: input.user, channel, action, value: input.value });
          await sendReply(input.user, reply, inThread);
          return;
        }
        default:
          throw new InputError(`unknown action "${input.actionId}"`);
      }
    },

    async fault(node, fault, user) {
      knownUser(user);
      if (fault === 'reset') {
        await resetCell(user);
        return;
      }
      if (!isSandboxFault(fault)) throw new InputError(`unknown fault "${fault}"`);
      const outcome = applyFault(cell.current().sim, node, fault);
      logger.info({ node, fault, user, changed: outcome.changed }, `SANDBOX fault: ${outcome.text}`);
      if (!outcome.changed) {
        await sendReply(user, {
          ...renderNotice(`:information_source: ${escapeText(outcome.text)}`),
          ephemeral: true,
        });
        return;
      }
      await say(`:test_tube: ${mention(user)} injected a fault: ${escapeText(outcome.text)}`);
    },

    async health() {
      return {
        ok: true,
        details: { sandbox: true, store: store.kind, monitorLeader: monitor.isLeader() },
      };
    },

    async metrics() {
      return metrics.render();
    },
  };

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
    ...renderNotice(
      [
        `:test_tube: *SANDBOX* — a simulated Core Cell *${escapeText(config.cell)}* runs in this process: cn1 (active) with its standby cn1s, cn2 (cloud style, snapshot mode), and pn1, pn2 producing ${formatDuration(options.blockMs ?? 1_000)} blocks. No Slack workspace, no real nodes.`,
        `State is kept in ${escapeText(store.description)}.`,
        'Try `/cell status`, stall cn1 on the left and watch the alert, `/failover cn1`, or `/cell drill failover cn1`. Stop cn2 and `/failover cn2` replaces it with a new instance from its image and a snapshot of pn1. Switch the user on the left to approve as someone else (four-eyes is on).',
      ].join('\n'),
    ),
    text: `SANDBOX started; state is kept in ${store.description}`,
  });
  logger.info({ url: server.url }, `SANDBOX console at ${server.url} (loopback only)`);

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
      await monitor
        .stop()
        .catch((error: unknown) => logger.warn({ err: describeError(error) }, 'monitor stop'));
      await engineNow()
        .close()
        .catch((error: unknown) => logger.warn({ err: describeError(error) }, 'engine close'));
      await presenter.idle();
      await server.close();
      if (stores.redis) {
        await removeKeys(stores.redis, config.redisPrefix).catch((error: unknown) =>
          logger.warn({ err: describeError(error) }, 'could not remove the sandbox keys from Redis'),
        );
      }
      await store.stop();
      logger.info({}, 'SANDBOX stopped');
    },
  };
}
