/**
 * The monitor: every interval it probes the cell's nodes, works out each node's condition
 * (src/monitor/conditions.ts) and keeps one Slack alert per incident in step with it.
 *
 * The life of an incident:
 * 1. A node's condition turns from healthy to lagging, stalled, down, isolated or standby-lagging. The
 *    replica that creates the incident record (SET NX) posts one channel message: node, condition, lag,
 *    since when, and the Start failover / Mute 30m / Acknowledge buttons.
 * 2. While it lasts, changes worth telling (lag growing by another `lagBlocks`, condition changed,
 *    acknowledged, muted, mute expired) are queued on the record, coalesced by topic, and posted in the
 *    thread at most once per `threadIntervalMs` (default one minute). The parent message is edited when
 *    its content changes (edits are not posts and do not notify).
 * 3. When the node is healthy again, the thread gets "Recovered after 4m12s" and the parent is edited to
 *    "Resolved after 4m12s" without buttons; the record is deleted.
 * A mute silences new incidents and updates of a node until it ends; its end is said in the thread.
 *
 * Only the holder of the monitor lease probes and writes (see src/monitor/incidents.ts); any replica
 * answers MonitorControl calls, which change the shared record and let the leader post.
 *
 * Role awareness: when the cell state says a CN role is served by another machine (after a failover),
 * that machine is probed as the CN, under the role's name; it is not watched as a standby any more, and
 * the fenced old machine is not watched at all.
 *
 * Protection: every round the leader also works out each CN's protection (protection.ts: standby ready or
 * not, backup, image) from the roles, the standby's probes and the last readiness check, shows it in the
 * view and keeps a "no standby" alert per CN (protection-alerts.ts). Roles recorded by a run show in
 * `/cell status` at once: the cell state's roles version is compared on every status request.
 *
 * This file holds the tick and status; the control API is in monitor-control.ts, and the steps of a tick
 * are modules of their own, each taking its state explicitly: who is probed (subjects.ts), the probe
 * round and the tracks (probe-round.ts), the alert upkeep (alert-reconcile.ts over alert-lifecycle.ts),
 * the saved view (cell-view.ts) and the readiness checks (check-schedule.ts).
 */
import { randomBytes } from 'node:crypto';
import type { CellopsConfig } from '../config/config.js';
import type { CellState } from '../ports/cell-state.js';
import type { Chat } from '../ports/chat.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { NodeRpc } from '../ports/node-rpc.js';
import { checkSubject } from './alert-lifecycle.js';
import { closeUnwatched, reconcileAlerts } from './alert-reconcile.js';
import { acknowledgeNode, checkFailed, checkPassed, muteNode, unmuteNode } from './monitor-control.js';
import { buildView, restateView, sameMutes, unknownView, withMutes } from './cell-view.js';
import { runDueChecks } from './check-schedule.js';
import type { IncidentStore, MuteRecord } from './incidents.js';
import type { MonitorMetrics } from './metrics.js';
import { probeRound, updateTracks } from './probe-round.js';
import { createProbeScheduler } from './probe-scheduler.js';
import { gatherProtection, protectionSubject, reconcileProtection } from './protection-alerts.js';
import { cnRoleNames, referenceTargets, resolveSubjects, sameSubjects } from './subjects.js';
import type { CellView, MonitorControl } from './types.js';
import type { AlertEscalation, ExpectedDisturbances } from './monitor-hooks.js';
import type { MonitorContext, MonitorState } from './monitor-context.js';

export type { MonitorContext, MonitorState } from './monitor-context.js';
import { initialExpected, refreshExpected } from './run-expected.js';

export interface MonitorOptions {
  /**
   * Probes running at once. Default: an eighth of the probed endpoints, at least 16 and at most 256, so
   * a round of a large cell still fits in half an interval at tens of milliseconds per probe.
   */
  readonly concurrency?: number;
  /** Timeout of one probe. Default half the interval, so a round never outlasts the interval. */
  readonly probeTimeoutMs?: number;
  /** At most one thread message per incident this often. Default 60 s. */
  readonly threadIntervalMs?: number;
  /** Lease time-to-live: how long a dead leader blocks the others. Default 3 intervals, at least 5 s. */
  readonly leaseTtlMs?: number;
  /** An incident record without its message after this long is taken to be orphaned. Default 60 s. */
  readonly orphanAfterMs?: number;
  /**
   * The view other replicas answer `/cell status` from is saved at once when a condition, a mute or a
   * role changes, and otherwise (heights, lag, probe times) at most this often. Default 5 s, at least one
   * interval: a cell of 1,000 nodes makes a view of a few hundred kB, not worth writing every second.
   */
  readonly viewSaveIntervalMs?: number;
}

export interface MonitorDeps {
  readonly config: Pick<CellopsConfig, 'monitor' | 'nodes' | 'slack'>;
  readonly rpc: NodeRpc;
  readonly chat: Chat;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly store: IncidentStore;
  readonly state: CellState;
  /** Starts the readiness `check` runbook for a CN; rejecting counts as a failed check. */
  readonly startCheck?: (cn: string) => Promise<void>;
  readonly metrics?: MonitorMetrics;
  /**
   * Looked at by the lease holder at the end of every tick, each throttling itself: the watch of fenced
   * machines (fenced-watch.ts). A failing watcher is logged, never fatal to the tick.
   */
  readonly watchers?: readonly { tick(): Promise<void> }[];
  /** Identity of this replica in the lease. Default: random. */
  readonly replicaId?: string;
  readonly options?: MonitorOptions;
  /** Told of every open and resolved alert (paging the on-call). */
  readonly escalation?: AlertEscalation;
  /** Nodes runs are working on: no alert for what the run causes. */
  readonly expected?: ExpectedDisturbances;
}

export interface Monitor extends MonitorControl {
  /** Starts the probe loop (one tick every interval). */
  start(): void;
  /** Stops the loop, aborts running probes and gives up the lease. */
  stop(): Promise<void>;
  /** One round: lease, probes, conditions, alerts, scheduled checks. Concurrent calls share one round. */
  tick(): Promise<void>;
  /**
   * A readiness check of `cn` failed: opens (or updates) its check incident; `failedSteps` (the check's
   * step ids) also feed the CN's protection, and failures that only say "no standby" go to that alert.
   */
  reportCheckFailure(cn: string, message: string, failedSteps?: readonly string[]): Promise<void>;
  /** A readiness check of `cn` passed: resolves its check incident, if any. */
  reportCheckSuccess(cn: string): Promise<void>;
  /** Whether this replica held the lease at its last tick. */
  isLeader(): boolean;
}

export function createMonitor(deps: MonitorDeps): Monitor {
  const ctx = monitorContext(deps, (cn, message) => monitor.reportCheckFailure(cn, message));
  const { clock, logger, scheduler, store, replicaId } = ctx;
  const intervalMs = deps.config.monitor.intervalMs;
  const st: MonitorState = {
    leader: false,
    subjects: [],
    roles: new Map(),
    rolesVersion: undefined,
    protection: [],
    checkOutcomes: new Map(),
    tracks: new Map(),
    checkDue: new Map(),
    reference: undefined,
    viewSavedAt: undefined,
    viewMutes: new Map(),
    expected: initialExpected(),
  };
  let current: Promise<void> | undefined;
  let loop: Promise<void> | undefined;
  let controller: AbortController | undefined;

  const monitor: Monitor = {
    start() {
      if (loop) return;
      const abort = new AbortController();
      controller = abort;
      loop = (async () => {
        while (!abort.signal.aborted) {
          const began = clock.now();
          try {
            await monitor.tick();
          } catch (error) {
            logger.error({ err: error }, 'monitor tick failed');
          }
          try {
            await clock.sleep(Math.max(0, intervalMs - (clock.now() - began)), abort.signal);
          } catch {
            return;
          }
        }
      })();
    },

    async stop() {
      controller?.abort();
      scheduler.abortAll();
      await loop;
      await current?.catch(() => undefined);
      loop = undefined;
      controller = undefined;
      if (st.leader) {
        st.leader = false;
        await store.releaseLease(replicaId).catch((error: unknown) => {
          logger.warn({ err: error }, 'could not release the monitor lease');
        });
      }
    },

    tick() {
      current ??= doTick(ctx, st).finally(() => {
        current = undefined;
      });
      return current;
    },

    isLeader: () => st.leader,
    status: () => cellStatus(ctx, st, () => monitor.tick()),
    mute: (node, durationMs, user) => muteNode(ctx, node, durationMs, user),
    unmute: (node, user) => unmuteNode(ctx, node, user),
    acknowledge: (node, user) => acknowledgeNode(ctx, node, user),
    reportCheckFailure: (cn, message, failedSteps) => checkFailed(ctx, st, cn, message, failedSteps),
    reportCheckSuccess: (cn) => checkPassed(ctx, st, cn),
  };
  return monitor;
}

function monitorContext(
  deps: MonitorDeps,
  reportCheckFailure: (cn: string, message: string) => Promise<void>,
): MonitorContext {
  const { config, chat, clock, store, metrics } = deps;
  const logger = deps.logger.child({ component: 'monitor' });
  const options = deps.options ?? {};
  const intervalMs = config.monitor.intervalMs;
  const cnRoles = cnRoleNames(config.nodes);
  return {
    config,
    nodeNames: Object.keys(config.nodes),
    cnRoles,
    checkNames: cnRoles.map(checkSubject),
    protectionNames: cnRoles.map(protectionSubject),
    referenceTargets: referenceTargets(config.monitor.referenceEndpoints),
    cellState: deps.state,
    store,
    clock,
    logger,
    metrics,
    settings: {
      intervalMs,
      lagBlocks: config.monitor.lagBlocks,
      forMs: config.monitor.forMs,
      stallMs: config.monitor.stallMs,
      failures: config.monitor.failures,
    },
    scheduler: createProbeScheduler({
      rpc: deps.rpc,
      clock,
      timeoutMs: options.probeTimeoutMs ?? Math.max(1, Math.floor(intervalMs / 2)),
      startWithinMs: Math.max(1, Math.floor(intervalMs / 2)),
      concurrency:
        options.concurrency ??
        Math.min(
          256,
          Math.max(
            16,
            Math.ceil((Object.keys(config.nodes).length + config.monitor.referenceEndpoints.length) / 8),
          ),
        ),
    }),
    alerts: {
      store,
      chat,
      logger,
      channel: config.slack.channel,
      threadIntervalMs: options.threadIntervalMs ?? 60_000,
      orphanAfterMs: options.orphanAfterMs ?? 60_000,
      lagBlocks: config.monitor.lagBlocks,
      metrics,
      escalation: deps.escalation,
    },
    checks: {
      cnRoles,
      everyMs: config.monitor.checkIntervalMs,
      startCheck: deps.startCheck,
      reportFailure: reportCheckFailure,
      logger,
    },
    replicaId: deps.replicaId ?? randomBytes(8).toString('hex'),
    leaseTtlMs: options.leaseTtlMs ?? Math.max(3 * intervalMs, 5_000),
    viewSaveIntervalMs: Math.max(intervalMs, options.viewSaveIntervalMs ?? 5_000),
    watchers: deps.watchers ?? [],
    expected: deps.expected,
  };
}

/** One round: lease, subjects, probes, conditions, alerts, the saved view, scheduled checks. */
async function doTick(ctx: MonitorContext, st: MonitorState): Promise<void> {
  if (!(await holdLease(ctx, st))) return;
  const { store, logger, metrics } = ctx;
  const previousSubjects = st.subjects;
  const resolved = await resolveSubjects(ctx.config, ctx.cnRoles, ctx.cellState, logger);
  const subjects = resolved.subjects;
  let viewChanged = !sameSubjects(previousSubjects, subjects) || resolved.rolesVersion !== st.rolesVersion;
  st.subjects = subjects;
  st.roles = resolved.roles;
  st.rolesVersion = resolved.rolesVersion;
  await refreshExpected(ctx.expected, st.expected, st.tracks, subjects, logger);
  const { outcomes, reference } = await probeRound(
    ctx.scheduler,
    subjects,
    ctx.referenceTargets,
    st.tracks,
    metrics,
  );
  st.reference = reference;
  const now = ctx.clock.now();

  const names = subjects.map((s) => s.name);
  const [records, mutes] = await Promise.all([
    store.getMany([...names, ...ctx.checkNames, ...ctx.protectionNames]),
    store.getMutes([...new Set([...names, ...ctx.cnRoles])]),
  ]);
  const update = { subjects, outcomes, records, reference, settings: ctx.settings, metrics, logger };
  if (updateTracks(st.tracks, update)) viewChanged = true;

  await closeUnwatched(ctx.alerts, ctx.nodeNames, subjects, now);
  const liveMutes = await reconcileAlerts(ctx.alerts, {
    subjects,
    tracks: st.tracks,
    cnRoles: ctx.cnRoles,
    records,
    mutes,
    reference,
    now,
    expected: st.expected,
  });

  const protection = await gatherProtection({
    nodes: ctx.config.nodes,
    cnRoles: ctx.cnRoles,
    roles: st.roles,
    subjects,
    tracks: st.tracks,
    checks: st.checkOutcomes,
    state: ctx.cellState,
    logger,
  });
  if (JSON.stringify(protection) !== JSON.stringify(st.protection)) viewChanged = true;
  st.protection = protection;
  await reconcileProtection(ctx.alerts, { protection, records, mutes, now });

  if (!sameMutes(st.viewMutes, liveMutes)) viewChanged = true;
  if (viewChanged || st.viewSavedAt === undefined || now - st.viewSavedAt >= ctx.viewSaveIntervalMs) {
    try {
      await store.saveView(viewOf(st, liveMutes, now));
      st.viewSavedAt = now;
      st.viewMutes = liveMutes;
    } catch (error) {
      logger.warn({ err: error }, 'could not save the monitor view');
    }
  }
  runDueChecks(ctx.checks, st.checkDue, now);
  for (const watcher of ctx.watchers) {
    await watcher.tick().catch((error: unknown) => {
      logger.error({ err: error }, 'a monitor watcher failed');
    });
  }
}

/** Takes or renews the lease; a replica that does not hold it forgets what it kept as the leader. */
async function holdLease(ctx: MonitorContext, st: MonitorState): Promise<boolean> {
  const { logger, replicaId } = ctx;
  const wasLeader = st.leader;
  try {
    st.leader = await ctx.store.acquireLease(replicaId, ctx.leaseTtlMs);
  } catch (error) {
    logger.error({ err: error }, 'monitor lease unavailable; not probing this round');
    st.leader = false;
  }
  if (!st.leader) {
    if (wasLeader) logger.warn({ replica: replicaId }, 'lost the monitor lease');
    st.tracks.clear();
    st.expected.expected = new Map();
    st.expected.noted.clear();
    st.checkDue.clear();
    st.viewSavedAt = undefined;
    return false;
  }
  if (!wasLeader) logger.info({ replica: replicaId }, 'took the monitor lease');
  return true;
}

/** The view a leader builds from what it keeps. */
function viewOf(st: MonitorState, mutes: ReadonlyMap<string, MuteRecord>, now: number): CellView {
  return buildView(st.subjects, st.tracks, st.reference, mutes, now, {
    protection: st.protection,
    rolesVersion: st.rolesVersion,
  });
}

/**
 * `/cell status`. Roles recorded since the view was worked out are shown at once: the leader runs a round
 * on the new roles first (so the machine now serving is probed), another replica shows the saved view
 * re-cut to the new roles, with what was not probed yet as unknown.
 */
async function cellStatus(
  ctx: MonitorContext,
  st: MonitorState,
  tick: () => Promise<void>,
): Promise<CellView> {
  const version = await ctx.cellState.rolesVersion().catch(() => undefined);
  // Two rounds at most: one may have begun before the roles changed.
  for (let i = 0; i < 2 && st.leader && version !== undefined && version !== st.rolesVersion; i++)
    await tick();
  const now = ctx.clock.now();
  const mutes = await ctx.store.getMutes(ctx.nodeNames);
  let view: CellView | undefined;
  if (st.leader && st.subjects.length > 0) view = viewOf(st, mutes, now);
  else {
    view = await ctx.store.loadView();
    if (view && version !== undefined && view.rolesVersion !== version) {
      const resolved = await resolveSubjects(ctx.config, ctx.cnRoles, ctx.cellState, ctx.logger);
      view = restateView(view, resolved);
    }
  }
  // Mutes are read fresh: a mute set a moment ago shows at once.
  return withMutes(view ?? unknownView(ctx.config.nodes, now), mutes, now);
}
