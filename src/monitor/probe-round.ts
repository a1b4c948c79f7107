/**
 * One probe round of the monitor: every subject and reference endpoint is probed (src/monitor/probe-
 * scheduler.ts), the reference height is worked out from the answers, and each subject's track
 * (src/monitor/conditions.ts) is stepped with its observation. This is the hot path of a large cell:
 * nothing is allocated per probe beyond the observation and the new track (the metrics skip unchanged
 * gauges themselves).
 */
import type { Logger } from '../ports/logger.js';
import type { NodeEndpoint } from '../ports/node-rpc.js';
import {
  evaluate,
  initialTrack,
  referenceHeight,
  seededTrack,
  type ConditionSettings,
  type NodeTrack,
  type Observation,
} from './conditions.js';
import type { IncidentRecord } from './incidents.js';
import type { MonitorMetrics } from './metrics.js';
import type { ProbeOutcome, ProbeScheduler } from './probe-scheduler.js';
import type { Subject } from './subjects.js';

export interface Tracked {
  /** Replaced after every probe; the holder is kept while the same machine serves the node. */
  track: NodeTrack;
  readonly servedBy?: string;
}

/** The history of every watched subject, by subject name; kept by the leader between rounds. */
export type Tracks = Map<string, Tracked>;

export interface ProbeRound {
  /** One outcome per subject, in order, then one per reference target. */
  readonly outcomes: readonly ProbeOutcome[];
  readonly reference: number | undefined;
}

export interface TrackUpdate {
  readonly subjects: readonly Subject[];
  readonly outcomes: readonly ProbeOutcome[];
  /** Open incidents by subject: a subject seen for the first time starts from its open incident. */
  readonly records: ReadonlyMap<string, IncidentRecord>;
  readonly reference: number | undefined;
  readonly settings: ConditionSettings;
  readonly metrics: MonitorMetrics | undefined;
  readonly logger: Logger;
}

export function trackOf(tracks: Tracks, name: string): NodeTrack {
  return tracks.get(name)?.track ?? initialTrack();
}

/** Probes the subjects and the reference targets, and works out the reference height from the answers. */
export async function probeRound(
  scheduler: ProbeScheduler,
  subjects: readonly Subject[],
  referenceTargets: readonly NodeEndpoint[],
  tracks: Tracks,
  metrics: MonitorMetrics | undefined,
): Promise<ProbeRound> {
  const targets = [...subjects.map((s) => s.endpoint), ...referenceTargets];
  const outcomes = await scheduler.round(targets);
  // Reference: PNs that answered and are not stalled, plus the extra endpoints that answered.
  const candidates: { height?: number; healthy: boolean }[] = [];
  outcomes.forEach((outcome, i) => {
    if (outcome.kind !== 'ok') return;
    const subject = subjects[i];
    if (subject && subject.role !== 'pn') return;
    const healthy = subject ? !trackOf(tracks, subject.name).latches.stalled.active : true;
    candidates.push({ height: outcome.health.height, healthy });
  });
  const reference = referenceHeight(candidates);
  if (reference !== undefined) metrics?.setReferenceHeight(reference);
  return { outcomes, reference };
}

/**
 * Steps every subject's track with its outcome of the round and sets its gauges. Returns whether any
 * subject's condition changed (the saved view is then out of date).
 */
export function updateTracks(tracks: Tracks, update: TrackUpdate): boolean {
  const { outcomes, records, reference, settings, metrics, logger } = update;
  let conditionChanged = false;
  update.subjects.forEach((subject, i) => {
    const outcome = outcomes[i];
    if (!outcome) return;
    if (outcome.kind !== 'skipped') {
      metrics?.observeProbe(subject.name, outcome.latencyMs, outcome.kind === 'ok');
    }
    const previous = tracks.get(subject.name);
    // A new machine behind the role starts a fresh history.
    let prev = previous && previous.servedBy === subject.servedBy ? previous.track : undefined;
    if (!prev) {
      // An incident about the machine that served before says nothing of the one serving now.
      const open = records.get(subject.name);
      prev =
        open && open.servedBy === subject.servedBy ? seededTrack(open.kind, open.openedAt) : initialTrack();
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
      conditionChanged = true;
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
  return conditionChanged;
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
