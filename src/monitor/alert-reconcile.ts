/**
 * The leader's alert upkeep after each probe round: every watched node's incident is brought in step with
 * its condition (opened, advanced, resolved), expired mutes are cleared and said in the thread, check
 * incidents get their thread upkeep, and alerts of nodes no longer watched under their own name are
 * closed. The steps of one incident's life are in src/monitor/alert-lifecycle.ts.
 */
import { isAlerting, type NodeTrack } from './conditions.js';
import {
  advanceIncident,
  alertState,
  checkSubject,
  openIncident,
  resolveIncident,
  tellEscalation,
  type AlertDeps,
} from './alert-lifecycle.js';
import type { IncidentKind, IncidentRecord, MuteRecord } from './incidents.js';
import type { MonitorMetrics } from './metrics.js';
import { trackOf, type Tracks } from './probe-round.js';
import type { Subject } from './subjects.js';
import { expectedFor, noteExpected, type ExpectedState } from './run-expected.js';

export interface ReconcileDeps extends AlertDeps {
  /** An incident record without its message after this long is taken to be orphaned. */
  readonly orphanAfterMs: number;
  /** Lag growth (in blocks) worth a thread note. */
  readonly lagBlocks: number;
  readonly metrics?: MonitorMetrics | undefined;
}

export interface AlertRound {
  readonly subjects: readonly Subject[];
  readonly tracks: Tracks;
  readonly cnRoles: readonly string[];
  /** Open incidents by subject (nodes and check subjects), read at the start of the round. */
  readonly records: ReadonlyMap<string, IncidentRecord>;
  readonly mutes: ReadonlyMap<string, MuteRecord>;
  readonly reference: number | undefined;
  readonly now: number;
  /** Nodes runs are working on: no new alert for them, a note in the run's thread instead. */
  readonly expected?: ExpectedState;
}

/** Brings every subject's and every CN check's incident in step; returns the mutes still live, by node. */
export async function reconcileAlerts(
  deps: ReconcileDeps,
  round: AlertRound,
): Promise<Map<string, MuteRecord>> {
  const { logger, metrics } = deps;
  const { tracks, records, mutes, reference, now } = round;
  const liveMutes = new Map<string, MuteRecord>();
  const expiredMutes = new Set<string>();
  for (const subject of round.subjects) {
    const mute = mutes.get(subject.node ?? subject.name);
    const record = records.get(subject.name);
    const track = trackOf(tracks, subject.name);
    // The common case at scale, a healthy node without alert or mute, has nothing to reconcile.
    if (record || mute || isAlerting(track.condition)) {
      try {
        const { live, expired } = await reconcile(
          deps,
          subject,
          track,
          record,
          mute,
          reference,
          now,
          round.expected,
        );
        if (live) liveMutes.set(subject.name, live);
        if (expired) expiredMutes.add(subject.name);
      } catch (error) {
        logger.error({ node: subject.name, err: error }, 'alert upkeep failed');
      }
    }
    metrics?.setAlertState(subject.name, alertState(record, liveMutes.get(subject.name)));
    if (record?.message && isAlerting(track.condition))
      await stillOpen(deps, record, liveMutes.get(subject.name));
  }
  for (const cn of round.cnRoles) {
    const record = records.get(checkSubject(cn));
    if (!record) continue;
    try {
      await reconcileCheck(deps, cn, liveMutes.get(cn), expiredMutes.has(cn), now);
    } catch (error) {
      logger.error({ node: cn, err: error }, 'check alert upkeep failed');
    }
    if (record.message) await stillOpen(deps, record, liveMutes.get(cn));
  }
  return liveMutes;
}

/** Tells escalation an alert is still open, as read at the start of the round (acknowledged, muted…). */
async function stillOpen(
  deps: ReconcileDeps,
  record: IncidentRecord,
  mute: MuteRecord | undefined,
): Promise<void> {
  await tellEscalation(deps, record, (e) =>
    e.alertOpen(record, { ...(mute ? { mute } : {}), posted: false }),
  );
}

/**
 * A node that is no longer probed under its own name (a standby now serving its CN's role, a fenced old
 * active) cannot recover in our eyes, so its open alert would stay open for ever: close it and say why.
 */
export async function closeUnwatched(
  deps: AlertDeps,
  nodes: readonly string[],
  subjects: readonly Subject[],
  now: number,
): Promise<void> {
  const watched = new Set(subjects.map((s) => s.name));
  const unwatched = nodes.filter((name) => !watched.has(name));
  if (unwatched.length === 0) return;
  const open = await deps.store.getMany(unwatched);
  for (const [node, record] of open) {
    const role = subjects.find((s) => s.servedBy === node)?.name;
    const why = role
      ? `${node} now serves ${role} and is watched as ${role}; this alert about it as ${record.kind === 'standby-lagging' ? 'a standby' : 'itself'} is closed.`
      : `${node} is no longer watched (its role moved in a failover); this alert is closed.`;
    try {
      await resolveIncident(deps, node, undefined, now, why);
    } catch (error) {
      deps.logger.error({ node, err: error }, 'could not close the alert of an unwatched node');
    }
  }
}

async function reconcile(
  deps: ReconcileDeps,
  subject: Subject,
  track: NodeTrack,
  record: IncidentRecord | undefined,
  mute: MuteRecord | undefined,
  reference: number | undefined,
  now: number,
  expected: ExpectedState | undefined,
): Promise<{ live?: MuteRecord; expired: boolean }> {
  const { store } = deps;
  let liveMute = mute;
  let muteNote: string | undefined;
  if (mute && mute.until <= now) {
    liveMute = undefined;
    if (await store.clearMute(subject.node ?? subject.name, mute)) {
      muteNote = `:bell: Mute by <@${mute.by}> expired; alerts for ${subject.node ?? subject.name} are on again.`;
    }
  }
  const muted = liveMute !== undefined;
  const result = { ...(liveMute ? { live: liveMute } : {}), expired: muteNote !== undefined };

  if (record && !record.message && now - record.createdAt > deps.orphanAfterMs) {
    // Its creator died between creating the record and posting: start over.
    await store.remove(record.subject, record.version);
    return result;
  }

  const condition = track.condition;
  if (!record) {
    if (!isAlerting(condition) || muted) return result;
    const byRun = expected && expectedFor(expected, subject);
    if (expected && byRun) {
      await noteExpected(deps, expected, byRun.node, byRun.why, condition);
      return result;
    }
    await openIncident(
      deps,
      {
        subject: subject.name,
        node: subject.node ?? subject.name,
        ...(subject.node && subject.standbyOf ? { standbyOf: subject.standbyOf } : {}),
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
    await resolveIncident(deps, subject.name, liveMute, now);
    return result;
  }

  await advanceIncident(deps, subject.name, liveMute, now, (cur) => {
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
        if (track.lag >= reported + deps.lagBlocks) {
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
  deps: AlertDeps,
  cn: string,
  mute: MuteRecord | undefined,
  muteExpired: boolean,
  now: number,
): Promise<void> {
  await advanceIncident(deps, checkSubject(cn), mute, now, (cur) =>
    muteExpired
      ? {
          ...cur,
          pending: { ...cur.pending, mute: `:bell: Mute expired; alerts for ${cn} are on again.` },
          parentStale: true,
        }
      : cur,
  );
}
