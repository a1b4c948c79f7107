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
 */
import { randomBytes } from 'node:crypto';
import type { CellopsConfig, NodeRole } from '../config/config.js';
import { formatDuration } from '../config/duration.js';
import { describeError, InputError } from '../errors.js';
import type { CellState } from '../ports/cell-state.js';
import type { Chat } from '../ports/chat.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { NodeEndpoint, NodeRpc } from '../ports/node-rpc.js';
import {
  renderAlertMessage,
  renderResolvedMessage,
  renderThreadUpdate,
  recoveredNote,
  type AlertView,
} from '../views/alert.js';
import {
  evaluate,
  initialTrack,
  isAlerting,
  seededTrack,
  referenceHeight,
  type ConditionSettings,
  type NodeTrack,
  type Observation,
} from './conditions.js';
import {
  updateIncident,
  type IncidentKind,
  type IncidentRecord,
  type IncidentStore,
  type MuteRecord,
} from './incidents.js';
import type { AlertState, MonitorMetrics } from './metrics.js';
import { createProbeScheduler, type ProbeOutcome } from './probe-scheduler.js';
import type { CellView, MonitorControl, NodeView } from './types.js';

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
  /** Identity of this replica in the lease. Default: random. */
  readonly replicaId?: string;
  readonly options?: MonitorOptions;
}

export interface Monitor extends MonitorControl {
  /** Starts the probe loop (one tick every interval). */
  start(): void;
  /** Stops the loop, aborts running probes and gives up the lease. */
  stop(): Promise<void>;
  /** One round: lease, probes, conditions, alerts, scheduled checks. Concurrent calls share one round. */
  tick(): Promise<void>;
  /** A readiness check of `cn` failed: opens (or updates) its check incident. */
  reportCheckFailure(cn: string, message: string): Promise<void>;
  /** A readiness check of `cn` passed: resolves its check incident, if any. */
  reportCheckSuccess(cn: string): Promise<void>;
  /** Whether this replica held the lease at its last tick. */
  isLeader(): boolean;
}

interface Subject {
  /** The node, or the CN role name. */
  readonly name: string;
  readonly role: NodeRole;
  readonly endpoint: NodeEndpoint;
  readonly servedBy?: string;
}

interface Tracked {
  /** Replaced after every probe; the holder is kept while the same machine serves the node. */
  track: NodeTrack;
  readonly servedBy?: string;
}

/** Store key of a node's failed-readiness-check incident. */
export function checkSubject(cn: string): string {
  return `check:${cn}`;
}

export function createMonitor(deps: MonitorDeps): Monitor {
  const { config, rpc, chat, clock, store, state, metrics } = deps;
  const logger = deps.logger.child({ component: 'monitor' });
  const settings: ConditionSettings = {
    intervalMs: config.monitor.intervalMs,
    lagBlocks: config.monitor.lagBlocks,
    forMs: config.monitor.forMs,
    stallMs: config.monitor.stallMs,
    failures: config.monitor.failures,
  };
  const options = deps.options ?? {};
  const intervalMs = config.monitor.intervalMs;
  const probeTimeoutMs = options.probeTimeoutMs ?? Math.max(1, Math.floor(intervalMs / 2));
  const threadIntervalMs = options.threadIntervalMs ?? 60_000;
  const leaseTtlMs = options.leaseTtlMs ?? Math.max(3 * intervalMs, 5_000);
  const orphanAfterMs = options.orphanAfterMs ?? 60_000;
  const viewSaveIntervalMs = Math.max(intervalMs, options.viewSaveIntervalMs ?? 5_000);
  const replicaId = deps.replicaId ?? randomBytes(8).toString('hex');
  const channel = config.slack.channel;
  const scheduler = createProbeScheduler({
    rpc,
    clock,
    timeoutMs: probeTimeoutMs,
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
  });
  const referenceTargets: NodeEndpoint[] = config.monitor.referenceEndpoints.map((url, i) => {
    const name = `reference-${i + 1}`;
    const host = { name, address: safeHost(url) };
    return { name, host, metricsUrl: url, rpcUrl: url, dataDir: '', binary: 'kpn' };
  });
  const cnRoles = Object.values(config.nodes)
    .filter((n) => n.role === 'cn')
    .map((n) => n.name);

  const tracks = new Map<string, Tracked>();
  const checkDue = new Map<string, number>();
  let subjects: Subject[] = [];
  let reference: number | undefined;
  let leader = false;
  /** When the view was last saved, and the mutes it showed; undefined: save at the next tick. */
  let viewSavedAt: number | undefined;
  let viewMutes: ReadonlyMap<string, MuteRecord> = new Map();
  let current: Promise<void> | undefined;
  let loop: Promise<void> | undefined;
  let controller: AbortController | undefined;

  async function resolveSubjects(): Promise<Subject[]> {
    const serving = new Set<string>();
    const out: Subject[] = [];
    // All roles asked at once: one round of requests to the state store per tick, not one per CN.
    const assignments = await Promise.all(
      cnRoles.map(async (name) => {
        try {
          return await state.role(name);
        } catch (error) {
          logger.warn({ node: name, error: describeError(error) }, 'cell state unreadable; using config');
          return undefined;
        }
      }),
    );
    let index = 0;
    for (const node of Object.values(config.nodes)) {
      if (node.role !== 'cn') continue;
      const assignment = assignments[index++];
      if (!assignment || assignment.servedBy === node.name) {
        out.push({ name: node.name, role: 'cn', endpoint: node.endpoint });
        continue;
      }
      const machine = config.nodes[assignment.servedBy];
      serving.add(assignment.servedBy);
      let endpoint: NodeEndpoint = node.endpoint;
      if (machine) endpoint = machine.endpoint;
      else if (assignment.address) {
        const host = { name: assignment.servedBy, address: assignment.address };
        const hostForUrl = assignment.address.includes(':') ? `[${assignment.address}]` : assignment.address;
        endpoint = {
          name: assignment.servedBy,
          host,
          metricsUrl: `http://${hostForUrl}:61001/metrics`,
          dataDir: node.dataDir,
          binary: 'kcn',
        };
      }
      out.push({ name: node.name, role: 'cn', endpoint, servedBy: assignment.servedBy });
    }
    for (const node of Object.values(config.nodes)) {
      if (node.role === 'cn' || serving.has(node.name)) continue;
      out.push({ name: node.name, role: node.role, endpoint: node.endpoint });
    }
    return out;
  }

  function trackOf(name: string): NodeTrack {
    return tracks.get(name)?.track ?? initialTrack();
  }

  function observationOf(outcome: ProbeOutcome): Observation | undefined {
    if (outcome.kind === 'skipped') return undefined;
    if (outcome.kind === 'failed') return { at: outcome.at, ok: false, error: outcome.error };
    return {
      at: outcome.at,
      ok: true,
      height: outcome.health.height,
      ...(outcome.health.cnPeers === undefined ? {} : { cnPeers: outcome.health.cnPeers }),
    };
  }

  function nodeView(subject: Subject, mute: MuteRecord | undefined, now: number): NodeView {
    const track = trackOf(subject.name);
    return {
      node: subject.name,
      role: subject.role,
      ...(subject.servedBy ? { servedBy: subject.servedBy } : {}),
      ...(track.height === undefined ? {} : { height: track.height }),
      ...(track.lag === undefined ? {} : { lag: track.lag }),
      ...(track.cnPeers === undefined ? {} : { cnPeers: track.cnPeers }),
      condition: track.condition,
      ...(track.conditionSince === undefined ? {} : { since: track.conditionSince }),
      ...(track.lastProbeAt === undefined ? {} : { lastProbeAt: track.lastProbeAt }),
      ...(track.lastError === undefined ? {} : { lastError: track.lastError }),
      ...(mute && mute.until > now ? { mutedUntil: mute.until } : {}),
    };
  }

  function alertView(record: IncidentRecord, mute: MuteRecord | undefined, now: number): AlertView {
    const live = mute && mute.until > now ? mute : undefined;
    return {
      incidentId: record.id,
      node: record.node,
      ...(record.servedBy ? { servedBy: record.servedBy } : {}),
      kind: record.kind,
      openedAt: record.openedAt,
      ...(record.height === undefined ? {} : { height: record.height }),
      ...(record.lag === undefined ? {} : { lag: record.lag }),
      ...(record.referenceHeight === undefined ? {} : { referenceHeight: record.referenceHeight }),
      ...(record.detail === undefined ? {} : { detail: record.detail }),
      ...(record.acknowledgedBy === undefined ? {} : { acknowledgedBy: record.acknowledgedBy }),
      ...(record.acknowledgedAt === undefined ? {} : { acknowledgedAt: record.acknowledgedAt }),
      ...(live ? { mutedUntil: live.until, mutedBy: live.by } : {}),
    };
  }

  /** Creates the record and, if this replica won, posts the channel message. */
  async function openIncident(
    fields: Omit<IncidentRecord, 'id' | 'pending' | 'version' | 'createdAt'>,
    now: number,
  ): Promise<void> {
    const record: IncidentRecord = {
      ...fields,
      id: `${fields.subject.replace(':', '-')}-${now.toString(36)}`,
      createdAt: now,
      pending: {},
      version: 1,
    };
    if (!(await store.create(record))) return;
    let ref;
    try {
      ref = await chat.post({ channel, ...renderAlertMessage(alertView(record, undefined, now)) });
    } catch (error) {
      logger.error(
        { node: record.node, error: describeError(error) },
        'could not post the alert; will retry',
      );
      await store.remove(record.subject, record.version);
      return;
    }
    logger.info({ node: record.node, kind: record.kind, incident: record.id }, 'alert posted');
    const message = ref;
    await updateIncident(store, record.subject, (cur) =>
      cur.id === record.id ? { ...cur, message, lastPostAt: now } : undefined,
    );
  }

  /** Deletes the record (compare-and-set) and, if this replica did, tells the thread and edits the parent. */
  async function resolveIncident(
    subject: string,
    mute: MuteRecord | undefined,
    now: number,
    reason?: string,
  ): Promise<void> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const record = await store.get(subject);
      if (!record) return;
      if (!(await store.remove(subject, record.version))) continue;
      if (!record.message) return;
      const lasted = now - record.openedAt;
      const notes = [...Object.values(record.pending), reason ?? recoveredNote(lasted)];
      logger.info({ node: record.node, kind: record.kind, lastedMs: lasted }, 'incident resolved');
      try {
        await chat.post({ channel, threadTs: record.message.ts, ...renderThreadUpdate(notes) });
        await chat.update(record.message, renderResolvedMessage(alertView(record, mute, now), now));
      } catch (error) {
        logger.error({ node: record.node, error: describeError(error) }, 'could not post the resolution');
      }
      return;
    }
  }

  /**
   * Applies `change` to the record, then claims what is due (thread notes once per interval, a stale
   * parent) in the same compare-and-set, and only then posts: a lost race never posts twice.
   */
  async function advanceIncident(
    subject: string,
    mute: MuteRecord | undefined,
    now: number,
    change: (cur: IncidentRecord) => IncidentRecord,
  ): Promise<void> {
    let notes: string[] = [];
    let editParent = false;
    const stored = await updateIncident(store, subject, (cur) => {
      let next = change(cur);
      notes = [];
      editParent = false;
      if (!next.message) return sameRecord(next, cur) ? undefined : next;
      const pending = Object.values(next.pending);
      if (pending.length > 0 && now - (next.lastPostAt ?? 0) >= threadIntervalMs) {
        notes = pending;
        next = { ...next, pending: {}, lastPostAt: now };
      }
      if (next.parentStale) {
        editParent = true;
        next = { ...next, parentStale: false };
      }
      return sameRecord(next, cur) ? undefined : next;
    });
    if (!stored?.message) return;
    try {
      if (notes.length > 0) {
        await chat.post({ channel, threadTs: stored.message.ts, ...renderThreadUpdate(notes) });
      }
      if (editParent) await chat.update(stored.message, renderAlertMessage(alertView(stored, mute, now)));
    } catch (error) {
      logger.error({ node: stored.node, error: describeError(error) }, 'could not update the alert');
    }
  }

  async function reconcile(
    subject: Subject,
    record: IncidentRecord | undefined,
    mute: MuteRecord | undefined,
    now: number,
  ): Promise<{ live?: MuteRecord; expired: boolean }> {
    const track = trackOf(subject.name);
    let liveMute = mute;
    let muteNote: string | undefined;
    if (mute && mute.until <= now) {
      liveMute = undefined;
      if (await store.clearMute(subject.name, mute)) {
        muteNote = `:bell: Mute by <@${mute.by}> expired; alerts for ${subject.name} are on again.`;
      }
    }
    const muted = liveMute !== undefined;
    const result = { ...(liveMute ? { live: liveMute } : {}), expired: muteNote !== undefined };

    if (record && !record.message && now - record.createdAt > orphanAfterMs) {
      // Its creator died between creating the record and posting: start over.
      await store.remove(record.subject, record.version);
      return result;
    }

    const condition = track.condition;
    if (!record) {
      if (!isAlerting(condition) || muted) return result;
      await openIncident(
        {
          subject: subject.name,
          node: subject.name,
          ...(subject.servedBy ? { servedBy: subject.servedBy } : {}),
          kind: condition as IncidentKind,
          openedAt: track.conditionSince ?? now,
          ...(track.height === undefined ? {} : { height: track.height }),
          ...(track.lag === undefined ? {} : { lag: track.lag, reportedLag: track.lag }),
          ...(reference === undefined ? {} : { referenceHeight: reference }),
          ...(condition === 'down' && track.lastError ? { detail: track.lastError } : {}),
        },
        now,
      );
      return result;
    }

    if (condition === 'healthy') {
      await resolveIncident(subject.name, liveMute, now);
      return result;
    }

    await advanceIncident(subject.name, liveMute, now, (cur) => {
      let next: IncidentRecord = cur;
      const pending: Record<string, string> = { ...cur.pending };
      if (muteNote) {
        pending.mute = muteNote;
        next = { ...next, parentStale: true };
      }
      if (isAlerting(condition)) {
        const kind = condition as IncidentKind;
        if (kind !== cur.kind) {
          if (!muted) pending.condition = `Condition changed: *${cur.kind}* → *${kind}*`;
          next = { ...next, kind, parentStale: true };
        }
        if (track.lag !== undefined && !muted) {
          const reported = cur.reportedLag ?? 0;
          if (track.lag >= reported + settings.lagBlocks) {
            pending.lag = `Lag growing: ${track.lag} blocks (was ${reported})`;
            next = { ...next, reportedLag: track.lag };
          }
        }
        next = {
          ...next,
          ...(track.height === undefined ? {} : { height: track.height }),
          ...(track.lag === undefined ? {} : { lag: track.lag }),
          ...(reference === undefined ? {} : { referenceHeight: reference }),
          ...(kind === 'down' && track.lastError ? { detail: track.lastError } : {}),
        };
      }
      return { ...next, pending };
    });
    return result;
  }

  /** Thread upkeep of a check incident: mute expiry, coalesced notes. */
  async function reconcileCheck(
    cn: string,
    mute: MuteRecord | undefined,
    muteExpired: boolean,
    now: number,
  ): Promise<void> {
    await advanceIncident(checkSubject(cn), mute, now, (cur) =>
      muteExpired
        ? {
            ...cur,
            pending: { ...cur.pending, mute: `:bell: Mute expired; alerts for ${cn} are on again.` },
            parentStale: true,
          }
        : cur,
    );
  }

  function runChecks(now: number): void {
    const every = config.monitor.checkIntervalMs;
    if (!deps.startCheck || every <= 0) return;
    for (const cn of cnRoles) {
      const due = checkDue.get(cn) ?? now + every;
      if (!checkDue.has(cn)) checkDue.set(cn, due);
      if (now < due) continue;
      checkDue.set(cn, now + every);
      logger.info({ node: cn }, 'starting the scheduled readiness check');
      deps
        .startCheck(cn)
        .catch((error: unknown) =>
          monitor
            .reportCheckFailure(cn, `the readiness check could not start: ${describeError(error)}`)
            .catch((e: unknown) =>
              logger.error({ node: cn, error: describeError(e) }, 'check report failed'),
            ),
        );
    }
  }

  async function takeLease(): Promise<boolean> {
    try {
      return await store.acquireLease(replicaId, leaseTtlMs);
    } catch (error) {
      logger.error({ error: describeError(error) }, 'monitor lease unavailable; not probing this round');
      return false;
    }
  }

  async function doTick(): Promise<void> {
    const wasLeader = leader;
    leader = await takeLease();
    if (!leader) {
      if (wasLeader) logger.warn({ replica: replicaId }, 'lost the monitor lease');
      tracks.clear();
      checkDue.clear();
      viewSavedAt = undefined;
      return;
    }
    if (!wasLeader) logger.info({ replica: replicaId }, 'took the monitor lease');

    const previousSubjects = subjects;
    subjects = await resolveSubjects();
    let viewChanged = !sameSubjects(previousSubjects, subjects);
    const targets = [...subjects.map((s) => s.endpoint), ...referenceTargets];
    const outcomes = await scheduler.round(targets);
    const now = clock.now();

    // Reference: PNs that answered and are not stalled, plus the extra endpoints that answered.
    const candidates: { height?: number; healthy: boolean }[] = [];
    outcomes.forEach((outcome, i) => {
      if (outcome.kind !== 'ok') return;
      const subject = subjects[i];
      if (subject && subject.role !== 'pn') return;
      const healthy = subject ? !trackOf(subject.name).latches.stalled.active : true;
      candidates.push({ height: outcome.health.height, healthy });
    });
    reference = referenceHeight(candidates);
    if (reference !== undefined) metrics?.setReferenceHeight(reference);

    const names = subjects.map((s) => s.name);
    const checkNames = cnRoles.map(checkSubject);
    const [records, mutes] = await Promise.all([
      store.getMany([...names, ...checkNames]),
      store.getMutes(names),
    ]);

    subjects.forEach((subject, i) => {
      const outcome = outcomes[i];
      if (!outcome) return;
      if (outcome.kind !== 'skipped') {
        metrics?.observeProbe(subject.name, outcome.latencyMs, outcome.kind === 'ok');
      }
      const previous = tracks.get(subject.name);
      // A new machine behind the role starts a fresh history.
      let prev = previous && previous.servedBy === subject.servedBy ? previous.track : undefined;
      if (!prev) {
        const open = records.get(subject.name);
        prev = open ? seededTrack(open.kind, open.openedAt) : initialTrack();
      }
      const obs = observationOf(outcome);
      const track = obs
        ? evaluate(prev, obs, {
            role: subject.role,
            ...(reference === undefined ? {} : { referenceHeight: reference }),
            settings,
          })
        : prev;
      if (track.condition !== prev.condition) {
        viewChanged = true;
        logger.info(
          { node: subject.name, from: prev.condition, to: track.condition, lag: track.lag },
          'node condition changed',
        );
      }
      if (previous && previous.servedBy === subject.servedBy) previous.track = track;
      else tracks.set(subject.name, { track, ...(subject.servedBy ? { servedBy: subject.servedBy } : {}) });
      if (metrics) {
        if (track.height !== undefined) metrics.setHeight(subject.name, track.height);
        if (track.lag !== undefined) metrics.setLag(subject.name, track.lag);
        metrics.setCondition(subject.name, track.condition);
      }
    });

    await closeUnwatched(new Set(names), now);

    const liveMutes = new Map<string, MuteRecord>();
    const expiredMutes = new Set<string>();
    for (const subject of subjects) {
      const mute = mutes.get(subject.name);
      const record = records.get(subject.name);
      // The common case at scale, a healthy node without alert or mute, has nothing to reconcile.
      if (record || mute || isAlerting(trackOf(subject.name).condition)) {
        try {
          const { live, expired } = await reconcile(subject, record, mute, now);
          if (live) liveMutes.set(subject.name, live);
          if (expired) expiredMutes.add(subject.name);
        } catch (error) {
          logger.error({ node: subject.name, error: describeError(error) }, 'alert upkeep failed');
        }
      }
      metrics?.setAlertState(subject.name, alertState(record, liveMutes.get(subject.name)));
    }
    for (const cn of cnRoles) {
      if (!records.has(checkSubject(cn))) continue;
      try {
        await reconcileCheck(cn, liveMutes.get(cn), expiredMutes.has(cn), now);
      } catch (error) {
        logger.error({ node: cn, error: describeError(error) }, 'check alert upkeep failed');
      }
    }

    if (!sameMutes(viewMutes, liveMutes)) viewChanged = true;
    if (viewChanged || viewSavedAt === undefined || now - viewSavedAt >= viewSaveIntervalMs) {
      try {
        await store.saveView(buildView(liveMutes, now));
        viewSavedAt = now;
        viewMutes = liveMutes;
      } catch (error) {
        logger.warn({ error: describeError(error) }, 'could not save the monitor view');
      }
    }
    runChecks(now);
  }

  /**
   * A node that is no longer probed under its own name (a standby now serving its CN's role, a fenced old
   * active) cannot recover in our eyes, so its open alert would stay open for ever: close it and say why.
   */
  async function closeUnwatched(watched: ReadonlySet<string>, now: number): Promise<void> {
    const unwatched = Object.keys(config.nodes).filter((name) => !watched.has(name));
    if (unwatched.length === 0) return;
    const open = await store.getMany(unwatched);
    for (const [node, record] of open) {
      const role = subjects.find((s) => s.servedBy === node)?.name;
      const why = role
        ? `${node} now serves ${role} and is watched as ${role}; this alert about it as ${record.kind === 'standby-lagging' ? 'a standby' : 'itself'} is closed.`
        : `${node} is no longer watched (its role moved in a failover); this alert is closed.`;
      try {
        await resolveIncident(node, undefined, now, why);
      } catch (error) {
        logger.error({ node, error: describeError(error) }, 'could not close the alert of an unwatched node');
      }
    }
  }

  function buildView(mutes: ReadonlyMap<string, MuteRecord>, now: number): CellView {
    return {
      ...(reference === undefined ? {} : { referenceHeight: reference }),
      nodes: subjects.map((s) => nodeView(s, mutes.get(s.name), now)),
      at: now,
    };
  }

  function knownNode(node: string): void {
    if (!config.nodes[node]) {
      throw new InputError(
        `unknown node "${node}"; known nodes: ${Object.keys(config.nodes).sort().join(', ')}`,
      );
    }
  }

  /** Subjects of a node's open incidents: its condition incident and, for a CN, its check incident. */
  function subjectsOf(node: string): string[] {
    return config.nodes[node]?.role === 'cn' ? [node, checkSubject(node)] : [node];
  }

  async function noteOnIncidents(
    node: string,
    topic: string,
    note: string,
    extra: (cur: IncidentRecord) => Partial<IncidentRecord> = () => ({}),
  ): Promise<number> {
    let touched = 0;
    for (const subject of subjectsOf(node)) {
      const stored = await updateIncident(store, subject, (cur) => ({
        ...cur,
        ...extra(cur),
        pending: { ...cur.pending, [topic]: note },
        parentStale: true,
      }));
      if (stored) touched++;
    }
    return touched;
  }

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
            logger.error({ error: describeError(error) }, 'monitor tick failed');
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
      if (leader) {
        leader = false;
        await store.releaseLease(replicaId).catch((error: unknown) => {
          logger.warn({ error: describeError(error) }, 'could not release the monitor lease');
        });
      }
    },

    tick() {
      current ??= doTick().finally(() => {
        current = undefined;
      });
      return current;
    },

    isLeader: () => leader,

    async status() {
      const now = clock.now();
      const names = Object.keys(config.nodes);
      const mutes = await store.getMutes(names);
      let view: CellView | undefined;
      if (leader && subjects.length > 0) view = buildView(mutes, now);
      else view = await store.loadView();
      if (!view) {
        view = {
          at: now,
          nodes: Object.values(config.nodes).map((n) => ({
            node: n.name,
            role: n.role,
            condition: 'unknown' as const,
          })),
        };
      }
      // Mutes are read fresh: a mute set a moment ago shows at once.
      return {
        ...view,
        nodes: view.nodes.map((n) => {
          const { mutedUntil: _stale, ...rest } = n;
          const mute = mutes.get(n.node);
          return mute && mute.until > now ? { ...rest, mutedUntil: mute.until } : rest;
        }),
      };
    },

    async mute(node, durationMs, user) {
      knownNode(node);
      if (!Number.isFinite(durationMs) || durationMs <= 0) {
        throw new InputError(`a mute needs a positive duration, e.g. 30m`);
      }
      const now = clock.now();
      const until = now + durationMs;
      await store.setMute(node, { until, by: user, at: now });
      await noteOnIncidents(node, 'mute', `:no_bell: Muted for ${formatDuration(durationMs)} by <@${user}>`);
      logger.info({ node, user, until }, 'alerts muted');
      return { until };
    },

    async unmute(node, user) {
      knownNode(node);
      if (!(await store.clearMute(node))) throw new InputError(`${node} is not muted`);
      await noteOnIncidents(node, 'mute', `:bell: Unmuted by <@${user}>`);
      logger.info({ node, user }, 'alerts unmuted');
    },

    async acknowledge(node, user) {
      knownNode(node);
      const now = clock.now();
      let open = 0;
      for (const subject of subjectsOf(node)) {
        const record = await store.get(subject);
        if (!record) continue;
        open++;
        if (record.acknowledgedBy === user) continue;
        await updateIncident(store, subject, (cur) =>
          cur.acknowledgedBy === user
            ? undefined
            : {
                ...cur,
                acknowledgedBy: user,
                acknowledgedAt: now,
                pending: { ...cur.pending, [`ack:${user}`]: `:eyes: Acknowledged by <@${user}>` },
                parentStale: true,
              },
        );
      }
      if (open === 0) throw new InputError(`${node} has no open alert to acknowledge`);
      logger.info({ node, user }, 'alert acknowledged');
    },

    async reportCheckFailure(cn, message) {
      knownNode(cn);
      const now = clock.now();
      const subject = checkSubject(cn);
      const existing = await store.get(subject);
      if (existing) {
        await updateIncident(store, subject, (cur) => ({
          ...cur,
          detail: message,
          pending: { ...cur.pending, check: `Readiness check failed again: ${message}` },
          parentStale: true,
        }));
        return;
      }
      const mute = (await store.getMutes([cn])).get(cn);
      if (mute && mute.until > now) {
        logger.info({ node: cn }, 'readiness check failed while muted; no alert');
        return;
      }
      await openIncident({ subject, node: cn, kind: 'check-failed', openedAt: now, detail: message }, now);
    },

    async reportCheckSuccess(cn) {
      knownNode(cn);
      const now = clock.now();
      const mute = (await store.getMutes([cn])).get(cn);
      await resolveIncident(checkSubject(cn), mute, now);
    },
  };
  return monitor;
}

function alertState(record: IncidentRecord | undefined, mute: MuteRecord | undefined): AlertState {
  if (mute) return 'muted';
  if (!record) return 'none';
  return record.acknowledgedBy ? 'acknowledged' : 'open';
}

/** Same nodes watched, served by the same machines. */
function sameSubjects(a: readonly Subject[], b: readonly Subject[]): boolean {
  return a.length === b.length && a.every((s, i) => s.name === b[i]?.name && s.servedBy === b[i]?.servedBy);
}

/** Same live mutes (by node and end). */
function sameMutes(a: ReadonlyMap<string, MuteRecord>, b: ReadonlyMap<string, MuteRecord>): boolean {
  if (a.size !== b.size) return false;
  for (const [node, mute] of a) if (b.get(node)?.until !== mute.until) return false;
  return true;
}

function sameRecord(a: IncidentRecord, b: IncidentRecord): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function safeHost(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}
