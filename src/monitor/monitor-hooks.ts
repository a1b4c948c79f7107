/**
 * What the monitor tells, and asks, the rest of the application, without knowing it: both are optional
 * and wired in src/app/create-cellops.ts.
 * - AlertEscalation: the leader reports its open alerts every round and their end, and escalation
 *   (src/escalation/monitor-escalation.ts) pages the on-call for those nobody acknowledges.
 * - ExpectedDisturbances: nodes a run is working on (stopping kcnd for a key swap, restarting a machine).
 *   The monitor opens no alert for what the run causes; it notes it in the run's thread instead, and
 *   watches the node afresh when the run lets go of it.
 */
import type { MessageRef } from '../ports/chat.js';
import type { IncidentRecord, MuteRecord } from './incidents.js';

export interface AlertEscalation {
  /**
   * An alert is open (called by the leader every round for each open alert, so it is idempotent, and a
   * new leader or a restarted bot catches up). `posted`: the alert was posted in this very round.
   */
  alertOpen(
    record: IncidentRecord,
    state: { readonly mute?: MuteRecord; readonly posted: boolean },
  ): Promise<void>;
  /** The alert was resolved (the node recovered) or closed. */
  alertClosed(record: IncidentRecord): Promise<void>;
}

export interface ExpectedDisturbance {
  readonly runId: string;
  /** The step that began working on the node. */
  readonly stepTitle: string;
  /** The run's thread, where the monitor says what it sees instead of alerting. */
  readonly thread?: MessageRef;
}

export interface ExpectedDisturbances {
  /** Nodes (inventory names) runs are working on now, read by the leader once per round. */
  current(): Promise<ReadonlyMap<string, ExpectedDisturbance>>;
}
