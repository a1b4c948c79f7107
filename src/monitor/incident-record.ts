/**
 * The records the incident store keeps: one per incident (a node condition, a failed readiness check, a
 * CN without a standby) and one per mute. Their schemas, checked on every read, are in incident-schemas.ts.
 */
import type { MessageRef } from '../ports/chat.js';
import type { NodeCondition } from './types.js';

/** What an incident is about: a node condition, a failed readiness check, or a CN without a standby. */
export type IncidentKind = Exclude<NodeCondition, 'healthy' | 'unknown'> | 'check-failed' | 'no-standby';

/**
 * Every kind, for the schema records are read back with: a kind the monitor writes but the schema does
 * not know would be quarantined on the next read, and the alert posted again. A Record so that a kind
 * added to the type cannot be left out here.
 */
const KINDS: Record<IncidentKind, true> = {
  lagging: true,
  stalled: true,
  down: true,
  isolated: true,
  'standby-lagging': true,
  'check-failed': true,
  'no-standby': true,
};
export const INCIDENT_KINDS = Object.keys(KINDS) as [IncidentKind, ...IncidentKind[]];

export interface IncidentRecord {
  /** Unique per incident; part of the buttons' value. */
  readonly id: string;
  /**
   * Store key: the node (the CN role name for CNs), `check:<cn>` for a failed readiness check,
   * `protection:<cn>` for a CN without a standby.
   */
  readonly subject: string;
  /** The node (CN role) the incident is about. */
  readonly node: string;
  /** Inventory name of the machine serving the role when it is not the node itself. */
  readonly servedBy?: string;
  /** A CN's own machine standing by: the CN role it stands by for (its subject is `standby:<node>`). */
  readonly standbyOf?: string;
  readonly kind: IncidentKind;
  /** When the condition began (epoch ms). */
  readonly openedAt: number;
  /** When the record was created (epoch ms): an old record without a message is an orphan. */
  readonly createdAt: number;
  /** The channel message; absent only between creating the record and posting. */
  readonly message?: MessageRef;
  readonly height?: number;
  readonly lag?: number;
  readonly referenceHeight?: number;
  /** Lag last reported in the message or thread, to tell "lag growing" from noise. */
  readonly reportedLag?: number;
  /** Last probe error or the failed check's message. */
  readonly detail?: string;
  readonly acknowledgedBy?: string;
  readonly acknowledgedAt?: number;
  /** Last thread post (or the parent post): thread updates are at most one per minute. */
  readonly lastPostAt?: number;
  /** Updates waiting for the next thread post, keyed by topic so a newer one replaces an older one. */
  readonly pending: Readonly<Record<string, string>>;
  /** The parent message must be edited (condition, acknowledgement or mute changed). */
  readonly parentStale?: boolean;
  /** Incremented on every change; compare-and-set token. */
  readonly version: number;
}

export interface MuteRecord {
  /** Epoch ms at which the mute ends. */
  readonly until: number;
  /** Slack user id of who muted. */
  readonly by: string;
  readonly at: number;
}
