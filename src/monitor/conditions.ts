/**
 * What a node's probes mean: pure functions from the previous track of a node and one probe observation to
 * the next track. No I/O and no clock: the observation carries its time.
 *
 * Every condition is a latch with a raise criterion and a clear criterion. Raising waits for its
 * criterion to hold for a while (`for`, `stall`, `failures`); clearing counts healthy probes instead of
 * waiting out a window, so a recovery is told within a few probes (`clearProbes`, default 3: about two
 * intervals, 6 s with the defaults) while the clear thresholds stay stricter than the raise thresholds
 * (hysteresis): a node that hovers at a threshold keeps one incident open instead of flapping.
 * - lagging: raised when lag > lagBlocks for `for`; cleared after `clearProbes` probes in a row with
 *   lag ≤ lagBlocks/2.
 * - stalled: raised when the height has not moved for `stall`; cleared after the height advanced at
 *   `clearProbes` probes while it kept moving (moved within the last stall/2 throughout): one lucky block
 *   does not clear it. When probes come faster than blocks, so that not every probe sees a new block,
 *   it also clears once it has kept moving for `for`, as before.
 * - down: raised after `failures` consecutive failed probes; cleared after two consecutive successes.
 * - isolated (active CNs only): raised when the node reports 0 CN peers for `for`; cleared after
 *   `clearProbes` probes in a row with CN peers.
 * A condition that clears while another one is pending keeps the incident open until the other is
 * raised (the incident changes condition) or dropped (it resolves): one incident, not two.
 * Standbys report lagging as `standby-lagging`: a standby that is behind cannot take over quickly.
 */
import type { NodeCondition } from './types.js';

export interface ConditionSettings {
  /** Probe interval: used to estimate when a height changed between two probes. */
  readonly intervalMs: number;
  readonly lagBlocks: number;
  readonly forMs: number;
  readonly stallMs: number;
  readonly failures: number;
  /** Healthy probes in a row that clear a lagging, stalled or isolated node. Default 3. */
  readonly clearProbes?: number;
}

export const DEFAULT_CLEAR_PROBES = 3;

export interface Latch {
  readonly active: boolean;
  /** When the raised condition began (its raise criterion first held). */
  readonly since?: number;
  /** When the criterion that would flip the latch began holding continuously. */
  readonly pendingSince?: number;
  /** Healthy probes counted since `pendingSince` while a raised latch is clearing. */
  readonly clearCount?: number;
}

export interface NodeTrack {
  readonly height?: number;
  /** Estimated time at which the current height was reached. */
  readonly heightChangedAt?: number;
  /** Time of the last probe with a result (success or failure). */
  readonly lastProbeAt?: number;
  readonly lastSuccessAt?: number;
  /** Message of the last failed probe; cleared by a success. */
  readonly lastError?: string;
  readonly cnPeers?: number;
  /** Reference height minus height, when both were known at the last successful probe. */
  readonly lag?: number;
  readonly consecutiveFailures: number;
  readonly consecutiveSuccesses: number;
  /** Time of the first failure of the current failure streak. */
  readonly failingSince?: number;
  readonly latches: {
    readonly lagging: Latch;
    readonly stalled: Latch;
    readonly down: Latch;
    readonly isolated: Latch;
  };
  readonly condition: NodeCondition;
  /** When the current condition began. */
  readonly conditionSince?: number;
}

export type Observation =
  | {
      readonly at: number;
      readonly ok: true;
      readonly height: number;
      readonly cnPeers?: number;
    }
  | { readonly at: number; readonly ok: false; readonly error: string };

export interface EvaluateContext {
  /** The role the node serves now: `cn` also for a standby that took over a CN role. */
  readonly role: 'cn' | 'standby' | 'pn';
  /** Highest height of the healthy reference nodes in this round, when any answered. */
  readonly referenceHeight?: number;
  readonly settings: ConditionSettings;
}

const IDLE: Latch = { active: false };

/** NodeTrack while evaluate builds it; returned as a NodeTrack (readonly) once finished. */
type Draft = { -readonly [K in keyof NodeTrack]: NodeTrack[K] };

/** The previous latches object when nothing changed: a steady node keeps one object, not one per probe. */
function latchesOf(prev: NodeTrack['latches'], next: NodeTrack['latches']): NodeTrack['latches'] {
  return prev.lagging === next.lagging &&
    prev.stalled === next.stalled &&
    prev.down === next.down &&
    prev.isolated === next.isolated
    ? prev
    : next;
}

export function initialTrack(): NodeTrack {
  return {
    consecutiveFailures: 0,
    consecutiveSuccesses: 0,
    latches: { lagging: IDLE, stalled: IDLE, down: IDLE, isolated: IDLE },
    condition: 'unknown',
  };
}

/**
 * The track of a node first seen with an incident already open (after a restart or a change of leader):
 * the condition's latch starts raised, so the incident ends only when its clear criterion has held for
 * the usual time, not at the first probe of a monitor that has no history yet.
 */
export function seededTrack(
  condition: NodeCondition | 'check-failed' | 'no-standby',
  since: number,
): NodeTrack {
  const base = initialTrack();
  const raised: Latch = { active: true, since };
  const latch =
    condition === 'lagging' || condition === 'standby-lagging'
      ? 'lagging'
      : condition === 'stalled' || condition === 'down' || condition === 'isolated'
        ? condition
        : undefined;
  if (!latch || condition === 'check-failed' || condition === 'no-standby') return base;
  return { ...base, latches: { ...base.latches, [latch]: raised }, condition, conditionSince: since };
}

/**
 * Moves a latch one observation forward. `raise` / `clear` say whether the raise / clear criterion holds
 * now. A lowered latch is raised once `raise` has held for `raiseForMs`; `raisedSince` lets a criterion
 * that already carries its own history (a stall, a failure streak) date the condition back. A raised latch
 * is cleared once `clear` has held without a break for `clearProbes` observations that `count` (default:
 * every observation counts), or for `clearForMs` when that is given.
 */
export function stepLatch(
  latch: Latch,
  now: number,
  criteria: {
    readonly raise: boolean;
    readonly clear: boolean;
    readonly raiseForMs: number;
    readonly clearProbes: number;
    readonly count?: boolean;
    readonly clearForMs?: number;
    readonly raisedSince?: number;
  },
): Latch {
  if (!latch.active) {
    if (!criteria.raise) return IDLE;
    const pendingSince = latch.pendingSince ?? criteria.raisedSince ?? now;
    if (now - pendingSince >= criteria.raiseForMs) return { active: true, since: pendingSince };
    return { active: false, pendingSince };
  }
  const since = latch.since ?? now;
  if (!criteria.clear) return { active: true, since };
  const pendingSince = latch.pendingSince ?? now;
  const clearCount = (latch.clearCount ?? 0) + (criteria.count === false ? 0 : 1);
  if (clearCount >= criteria.clearProbes) return IDLE;
  if (criteria.clearForMs !== undefined && now - pendingSince >= criteria.clearForMs) return IDLE;
  return { active: true, since, pendingSince, clearCount };
}

/** The next track of a node after one probe. */
export function evaluate(prev: NodeTrack, obs: Observation, ctx: EvaluateContext): NodeTrack {
  const { settings } = ctx;
  const clearProbes = settings.clearProbes ?? DEFAULT_CLEAR_PROBES;
  const now = obs.at;
  if (!obs.ok) {
    const consecutiveFailures = prev.consecutiveFailures + 1;
    const failingSince = prev.consecutiveFailures > 0 ? (prev.failingSince ?? now) : now;
    const down = stepLatch(prev.latches.down, now, {
      raise: consecutiveFailures >= settings.failures,
      clear: false,
      raiseForMs: 0,
      clearProbes: 1,
      raisedSince: failingSince,
    });
    // Height, lag and peers are unknown while probes fail: their latches keep their state.
    return finish(
      prev,
      {
        ...prev,
        lastProbeAt: now,
        lastError: obs.error,
        consecutiveFailures,
        consecutiveSuccesses: 0,
        failingSince,
        latches: down === prev.latches.down ? prev.latches : { ...prev.latches, down },
      },
      ctx.role,
    );
  }

  const consecutiveSuccesses = prev.consecutiveSuccesses + 1;
  const down = stepLatch(prev.latches.down, now, {
    raise: false,
    clear: consecutiveSuccesses >= 2,
    raiseForMs: 0,
    clearProbes: 1,
  });

  // The height changed somewhere between the previous successful probe and this one: take the middle
  // of that window, so a stall is dated as well as the probe interval allows and a few milliseconds of
  // timer jitter cannot push detection to the next probe. Rounded down to a whole millisecond: this time
  // becomes a stall's `since` and the incident's `openedAt`, which the Redis store checks to be whole
  // epoch milliseconds; probes an odd number of ms apart (a late round, then one on time) would otherwise
  // give a record that is quarantined as soon as it is read, so every round posted the alert again.
  let heightChangedAt = prev.heightChangedAt ?? now;
  if (prev.height === undefined) heightChangedAt = now;
  else if (obs.height !== prev.height) {
    const previousAt = prev.lastSuccessAt ?? now;
    const half = Math.floor(Math.min(now - previousAt, settings.intervalMs) / 2);
    heightChangedAt = Math.max(previousAt, now - half);
  }
  const unchangedMs = now - heightChangedAt;
  const stalled = stepLatch(prev.latches.stalled, now, {
    raise: unchangedMs >= settings.stallMs,
    clear: unchangedMs <= settings.stallMs / 2,
    raiseForMs: 0,
    clearProbes,
    // Only a probe that sees a new block counts as healthy: a stalled node must keep producing.
    count: prev.height !== undefined && obs.height > prev.height,
    clearForMs: settings.forMs,
    raisedSince: heightChangedAt,
  });

  const lag = ctx.referenceHeight === undefined ? undefined : Math.max(0, ctx.referenceHeight - obs.height);
  const lagging =
    lag === undefined
      ? prev.latches.lagging
      : stepLatch(prev.latches.lagging, now, {
          raise: lag > settings.lagBlocks,
          clear: lag <= Math.floor(settings.lagBlocks / 2),
          raiseForMs: settings.forMs,
          clearProbes,
        });

  const isolated =
    ctx.role !== 'cn' || obs.cnPeers === undefined
      ? ctx.role !== 'cn'
        ? IDLE
        : prev.latches.isolated
      : stepLatch(prev.latches.isolated, now, {
          raise: obs.cnPeers === 0,
          clear: obs.cnPeers > 0,
          raiseForMs: settings.forMs,
          clearProbes,
        });

  return finish(
    prev,
    {
      height: obs.height,
      heightChangedAt,
      lastProbeAt: now,
      lastSuccessAt: now,
      ...(obs.cnPeers === undefined ? {} : { cnPeers: obs.cnPeers }),
      ...(lag === undefined ? {} : { lag }),
      consecutiveFailures: 0,
      consecutiveSuccesses,
      latches: latchesOf(prev.latches, { lagging, stalled, down, isolated }),
      condition: prev.condition,
    },
    ctx.role,
  );
}

/**
 * Picks the condition to show, most severe first, and dates it. `next` is the new track evaluate just
 * built (nobody else holds it): it is completed in place rather than copied once more.
 */
function finish(prev: NodeTrack, next: Draft, role: EvaluateContext['role']): NodeTrack {
  const { latches } = next;
  let condition: NodeCondition = 'unknown';
  let since: number | undefined;
  let raised: Latch | undefined;
  if (latches.down.active) {
    condition = 'down';
    raised = latches.down;
  } else if (latches.stalled.active) {
    condition = 'stalled';
    raised = latches.stalled;
  } else if (latches.isolated.active) {
    condition = 'isolated';
    raised = latches.isolated;
  } else if (latches.lagging.active) {
    condition = role === 'standby' ? 'standby-lagging' : 'lagging';
    raised = latches.lagging;
  }
  if (raised) {
    since = raised.since;
  } else if (isAlerting(prev.condition) && (latches.lagging.pendingSince ?? latches.isolated.pendingSince)) {
    // Cleared while another condition is on its way up (a stalled node that moves again but is still far
    // behind): keep the incident open until that one is raised or dropped, rather than resolve it and
    // open a new one a few seconds later.
    condition = prev.condition;
    since = prev.conditionSince;
  } else if (next.lastSuccessAt === undefined) {
    // Never answered, not yet down: nothing known.
    since = prev.condition === 'unknown' ? prev.conditionSince : next.lastProbeAt;
  } else {
    condition = 'healthy';
    since = prev.condition === 'healthy' ? prev.conditionSince : next.lastProbeAt;
  }
  if (condition === prev.condition && prev.conditionSince !== undefined) since = prev.conditionSince;
  next.condition = condition;
  if (since !== undefined) next.conditionSince = since;
  return next;
}

/** Does this condition call for an alert? */
export function isAlerting(condition: NodeCondition): boolean {
  return condition !== 'healthy' && condition !== 'unknown';
}

/**
 * The reference height: the highest of the healthy reference nodes (PNs that answered this round and are
 * not stalled, and the extra reference endpoints that answered).
 */
export function referenceHeight(
  candidates: readonly { readonly height?: number; readonly healthy: boolean }[],
): number | undefined {
  let best: number | undefined;
  for (const candidate of candidates) {
    if (!candidate.healthy || candidate.height === undefined) continue;
    if (best === undefined || candidate.height > best) best = candidate.height;
  }
  return best;
}
