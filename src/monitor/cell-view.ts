/**
 * The cell view `/cell status` answers from: built by the leader from its tracks, saved for the other
 * replicas, and always shown with the mutes read fresh.
 */
import type { CellopsConfig } from '../config/config.js';
import type { NodeTrack } from './conditions.js';
import type { MuteRecord } from './incidents.js';
import { trackOf, type Tracks } from './probe-round.js';
import type { CnProtection } from './protection.js';
import type { ResolvedCell, Subject } from './subjects.js';
import type { CellView, NodeView } from './types.js';

export function buildView(
  subjects: readonly Subject[],
  tracks: Tracks,
  reference: number | undefined,
  mutes: ReadonlyMap<string, MuteRecord>,
  now: number,
  extra: { readonly protection?: readonly CnProtection[]; readonly rolesVersion?: number | undefined } = {},
): CellView {
  return {
    ...(reference === undefined ? {} : { referenceHeight: reference }),
    nodes: subjects.map((s) => nodeView(s, trackOf(tracks, s.name), mutes.get(s.name), now)),
    ...(extra.protection === undefined ? {} : { protection: extra.protection }),
    ...(extra.rolesVersion === undefined ? {} : { rolesVersion: extra.rolesVersion }),
    at: now,
  };
}

/**
 * A saved view re-cut to roles recorded after it was saved (on a replica that does not probe): a row whose
 * subject is still served by the same machine keeps what was seen; a new one is unknown until probed, and
 * the protection follows the new roles (a new standby's readiness is not known yet).
 */
export function restateView(view: CellView, resolved: ResolvedCell): CellView {
  const nodes = resolved.subjects.map((s): NodeView => {
    const seen = view.nodes.find(
      (n) => n.node === s.name && n.servedBy === s.servedBy && n.standbyOf === s.standbyOf,
    );
    return (
      seen ?? {
        node: s.name,
        role: s.role,
        ...(s.servedBy ? { servedBy: s.servedBy } : {}),
        ...(s.standbyOf ? { standbyOf: s.standbyOf } : {}),
        condition: 'unknown',
      }
    );
  });
  const protection = view.protection?.map((p): CnProtection => {
    const roles = resolved.roles.get(p.cn);
    if (!roles || (roles.servedBy === p.servedBy && roles.standby === p.standby)) return p;
    const { standby: _old, standbyState: _state, ...rest } = p;
    return {
      ...rest,
      servedBy: roles.servedBy,
      ...(roles.standby === undefined ? {} : { standby: roles.standby }),
      ...(p.mode === 'standby' ? { standbyState: roles.standby === undefined ? 'none' : 'unknown' } : {}),
      rolesRunId: roles.runId,
      rolesSince: roles.since,
    };
  });
  return {
    ...view,
    nodes,
    ...(protection === undefined ? {} : { protection }),
    ...(resolved.rolesVersion === undefined ? {} : { rolesVersion: resolved.rolesVersion }),
  };
}

/** Before any view was saved: every configured node, condition unknown. */
export function unknownView(nodes: CellopsConfig['nodes'], now: number): CellView {
  return {
    at: now,
    nodes: Object.values(nodes).map((n) => ({ node: n.name, role: n.role, condition: 'unknown' as const })),
  };
}

/** The view with the mutes of `mutes` (live at `now`) in place of those it was saved with. */
export function withMutes(view: CellView, mutes: ReadonlyMap<string, MuteRecord>, now: number): CellView {
  return {
    ...view,
    nodes: view.nodes.map((n) => {
      const { mutedUntil: _stale, ...rest } = n;
      const mute = mutes.get(n.node);
      return mute && mute.until > now ? { ...rest, mutedUntil: mute.until } : rest;
    }),
  };
}

/** Same live mutes (by node and end). */
export function sameMutes(a: ReadonlyMap<string, MuteRecord>, b: ReadonlyMap<string, MuteRecord>): boolean {
  if (a.size !== b.size) return false;
  for (const [node, mute] of a) if (b.get(node)?.until !== mute.until) return false;
  return true;
}

function nodeView(subject: Subject, track: NodeTrack, mute: MuteRecord | undefined, now: number): NodeView {
  return {
    node: subject.name,
    role: subject.role,
    ...(subject.servedBy ? { servedBy: subject.servedBy } : {}),
    ...(subject.standbyOf ? { standbyOf: subject.standbyOf } : {}),
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
