/**
 * The application, built once: approval policy, run presenter, engine, monitor and command handlers wired
 * together over the ports and stores the caller chose. The production entry point (src/main.ts) gives it
 * SSH, EC2, Slack and Redis; the sandbox (src/sandbox/start-sandbox.ts) gives it a simulated cell, the
 * web console and Redis or memory. Starting and stopping stay with the caller, which owns the adapters.
 */
import type { CellopsConfig } from '../config/config.js';
import type { Chat } from '../ports/chat.js';
import type { Logger } from '../ports/logger.js';
import type { RateLimiter } from '../ports/rate-limiter.js';
import { createMemoryRateLimiter } from '../infra/memory-rate-limiter.js';
import type { RunLock } from '../locks/types.js';
import type { AnyRunbook, Engine, RunbookPorts, RunObserver } from '../runbooks/types.js';
import type { RunStore } from '../runbooks/engine/run-store.js';
import {
  createApprovalPolicy,
  type ApprovalPolicy,
  type UsergroupDirectory,
} from '../runbooks/approval-policy.js';
import { createEngine, type EngineOptions } from '../runbooks/engine/engine.js';
import { createRunbooks } from '../runbooks/registry.js';
import { checkRunbook } from '../runbooks/check.js';
import { readinessCheckStarter } from '../runbooks/readiness.js';
import { createMonitor, type Monitor, type MonitorOptions } from '../monitor/monitor.js';
import type { IncidentStore } from '../monitor/incidents.js';
import { createMonitorMetrics, type MonitorMetrics } from '../monitor/metrics.js';
import { createFencedWatch } from '../monitor/fenced-watch.js';
import { createRunPresenter, type MessageRefStore, type RunPresenter } from '../bot/run-presenter.js';
import { createCommandHandlers, type CommandDeps, type CommandHandlers } from '../commands/handlers.js';
import { createRunMetrics } from './run-metrics.js';
import { runDisturbances } from '../runbooks/run-disturbances.js';
import type { ExpectedDisturbance, ExpectedDisturbances } from '../monitor/monitor-hooks.js';
import { createEscalation, type Escalation, type EscalationSetup } from './create-escalation.js';
import { createReportSource } from '../report/gather-report.js';

/** The window of config runs.dryRunsPerMinute. */
export const DRY_RUN_WINDOW_MS = 60_000;

/** Where runs, the lock, incidents and message refs are kept (Redis in production, Redis or memory in the sandbox). */
export interface CellopsStores {
  readonly runs: RunStore;
  readonly lock: RunLock;
  readonly incidents: IncidentStore;
  readonly refs: MessageRefStore;
  /** Dry runs per user; default: counted in this process (config runs.dryRunsPerMinute). */
  readonly dryRuns?: RateLimiter;
}

export interface CellopsDeps {
  readonly config: CellopsConfig;
  /** Shell, cloud, RPC, clock and cell state: what runbooks and the monitor touch. */
  readonly ports: RunbookPorts;
  /** Where runs and alerts are posted; its usergroup directory answers the approval policy. */
  readonly chat: Chat & UsergroupDirectory;
  readonly stores: CellopsStores;
  readonly logger: Logger;
  /** The engine's owner id of this process (unique per process). */
  readonly ownerId: string;
  /** This replica's id in the monitor's lease. */
  readonly replicaId: string;
  /** Default: every runbook of the registry. */
  readonly runbooks?: readonly AnyRunbook[];
  /** Told of every run event after the presenter (the sandbox's drills). */
  readonly observer?: RunObserver;
  /** The monitor starts the readiness `check` runbook when a check is due and reports its outcome. */
  readonly readinessChecks?: boolean;
  /** Enables `/cell drill failover|switchover <cn>` (sandbox only). */
  readonly sandbox?: boolean;
  readonly drill?: CommandDeps['drill'];
  /** Where the command handlers log refusals and failures. Default: `logger`. */
  readonly commandLogger?: Logger;
  readonly engineOptions?: EngineOptions;
  readonly monitorOptions?: MonitorOptions;
  /** Pages the on-call for alerts and approvals nobody answers (config.escalation and the pagers). */
  readonly escalation?: EscalationSetup;
}

export interface Cellops {
  readonly policy: ApprovalPolicy;
  readonly presenter: RunPresenter;
  readonly engine: Engine;
  readonly monitor: Monitor;
  readonly metrics: MonitorMetrics;
  /** What slash commands and button clicks call, under Bolt and in the sandbox console alike. */
  readonly handlers: CommandHandlers;
  /** Present when `deps.escalation` is: the caller starts it after the engine and stops it before. */
  readonly escalation?: Escalation;
}

/** The presenter first (people see the run), then escalation and the caller's extra observer. */
function observerOf(presenter: RunPresenter, others: readonly (RunObserver | undefined)[]): RunObserver {
  const rest = others.filter((o): o is RunObserver => o !== undefined);
  if (rest.length === 0) return presenter;
  return {
    onRunEvent: async (run, event) => {
      await presenter.onRunEvent(run, event);
      for (const observer of rest) await observer.onRunEvent(run, event);
    },
  };
}

/** What the unfinished runs are working on, from the run store: the same answer on every replica. */
function expectedFromRuns(
  runs: RunStore,
  runbooks: readonly AnyRunbook[],
  config: CellopsConfig,
): ExpectedDisturbances {
  return {
    async current() {
      const out = new Map<string, ExpectedDisturbance>();
      for (const id of await runs.activeRunIds()) {
        const run = await runs.loadRun(id);
        if (!run) continue;
        const runbook = runbooks.find((r) => r.id === run.runbook);
        for (const [node, why] of runDisturbances(run, runbook, config))
          if (!out.has(node)) out.set(node, why);
      }
      return out;
    },
  };
}

export function createCellops(deps: CellopsDeps): Cellops {
  const { config, ports, chat, stores, logger } = deps;
  const { clock } = ports;
  const policy = createApprovalPolicy({ slack: config.slack, directory: chat });

  // The presenter and the monitor's checks reach the engine and the monitor through this box: the engine
  // is built with the presenter as its observer, and the monitor's check reports back to the monitor.
  const late: { engine?: Engine; monitor?: Monitor } = {};
  const presenter = createRunPresenter({
    chat,
    refs: stores.refs,
    config,
    clock,
    logger,
    recordThread: async (runId, ref) => late.engine?.setThread(runId, ref),
  });
  const runbooks = deps.runbooks ?? createRunbooks();
  const metrics = createMonitorMetrics();
  const runMetrics = createRunMetrics({
    registry: metrics.registry,
    setRunStates: (counts) => metrics.setRunStates(counts),
    approvalTimeoutMs: config.slack.approvalTimeoutMs,
    clock,
  });
  const escalation =
    deps.escalation &&
    createEscalation({ setup: deps.escalation, config, chat, clock, logger, registry: metrics.registry });
  const engine = createEngine({
    store: stores.runs,
    lock: stores.lock,
    runbooks,
    ports,
    config,
    policy,
    observer: observerOf(presenter, [escalation?.runs, deps.observer, runMetrics]),
    clock,
    logger,
    ownerId: deps.ownerId,
    ...(deps.engineOptions === undefined ? {} : { options: deps.engineOptions }),
  });
  late.engine = engine;

  const monitor = createMonitor({
    config,
    rpc: ports.rpc,
    chat,
    clock,
    logger,
    store: stores.incidents,
    state: ports.state,
    metrics,
    replicaId: deps.replicaId,
    // After a failover the fenced machine stays watched: started again, kcnd back, its identity answering.
    watchers: [
      createFencedWatch({
        config,
        state: ports.state,
        rpc: ports.rpc,
        chat,
        clock,
        logger,
        cloud: ports.cloud,
        shell: ports.shell,
        runThread: async (runId) => (await late.engine?.get(runId))?.thread,
      }),
    ],
    expected: expectedFromRuns(stores.runs, runbooks, config),
    ...(escalation ? { escalation: escalation.alerts } : {}),
    ...(deps.readinessChecks
      ? {
          startCheck: readinessCheckStarter({
            runbook: checkRunbook,
            config,
            ports,
            logger,
            reporter: () => late.monitor,
          }),
        }
      : {}),
    ...(deps.monitorOptions === undefined ? {} : { options: deps.monitorOptions }),
  });
  late.monitor = monitor;

  const handlers = createCommandHandlers({
    config,
    engine,
    policy,
    monitor,
    state: ports.state,
    chat,
    clock,
    logger: deps.commandLogger ?? logger,
    runbooks: runbooks.map((r) => r.id),
    incidents: stores.incidents,
    reports: createReportSource({ store: stores.runs, clock, chain: { config, rpc: ports.rpc } }),
    dryRunLimiter:
      stores.dryRuns ??
      createMemoryRateLimiter({ clock, limit: config.runs.dryRunsPerMinute, windowMs: DRY_RUN_WINDOW_MS }),
    ...(deps.sandbox === undefined ? {} : { sandbox: deps.sandbox }),
    ...(deps.drill === undefined ? {} : { drill: deps.drill }),
  });

  return { policy, presenter, engine, monitor, metrics, handlers, ...(escalation ? { escalation } : {}) };
}
