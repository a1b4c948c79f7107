/**
 * The three steps of an incident's Slack life, each safe against other replicas through the record's
 * compare-and-set (src/monitor/incidents.ts):
 * - open: the replica that creates the record posts the channel message;
 * - advance: changes are queued on the record and posted in the thread at most once per interval, the
 *   parent edited when stale;
 * - resolve: the replica that deletes the record tells the thread and edits the parent to "Resolved".
 */
import type { Chat } from '../ports/chat.js';
import type { Logger } from '../ports/logger.js';
import {
  renderAlertMessage,
  renderResolvedMessage,
  renderThreadUpdate,
  recoveredNote,
  type AlertView,
} from '../views/alert.js';
import { updateIncident, type IncidentRecord, type IncidentStore, type MuteRecord } from './incidents.js';
import type { AlertState } from './metrics.js';
import type { AlertEscalation } from './monitor-hooks.js';

export interface AlertDeps {
  readonly store: IncidentStore;
  readonly chat: Chat;
  readonly logger: Logger;
  /** The channel alerts are posted in. */
  readonly channel: string;
  /** At most one thread message per incident this often. */
  readonly threadIntervalMs: number;
  /** Told of every alert posted, still open and resolved (paging). */
  readonly escalation?: AlertEscalation | undefined;
}

/** Tells escalation; its failure is logged and never stops the monitor. */
export async function tellEscalation(
  deps: Pick<AlertDeps, 'escalation' | 'logger'>,
  record: IncidentRecord,
  tell: (escalation: AlertEscalation) => Promise<void>,
): Promise<void> {
  if (!deps.escalation) return;
  try {
    await tell(deps.escalation);
  } catch (error) {
    deps.logger.error({ node: record.node, incident: record.id, err: error }, 'escalation failed');
  }
}

/** Store key of a node's failed-readiness-check incident. */
export function checkSubject(cn: string): string {
  return `check:${cn}`;
}

/** The alert-state gauge value of a node: a live mute wins, then the record's acknowledgement. */
export function alertState(record: IncidentRecord | undefined, mute: MuteRecord | undefined): AlertState {
  if (mute) return 'muted';
  if (!record) return 'none';
  return record.acknowledgedBy ? 'acknowledged' : 'open';
}

/** Creates the record and, if this replica won, posts the channel message. */
export async function openIncident(
  deps: AlertDeps,
  fields: Omit<IncidentRecord, 'id' | 'pending' | 'version' | 'createdAt'>,
  now: number,
): Promise<void> {
  const { store, chat, logger, channel } = deps;
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
    logger.error({ node: record.node, err: error }, 'could not post the alert; will retry');
    await store.remove(record.subject, record.version);
    return;
  }
  logger.info({ node: record.node, kind: record.kind, incident: record.id }, 'alert posted');
  const message = ref;
  const stored = await updateIncident(store, record.subject, (cur) =>
    cur.id === record.id ? { ...cur, message, lastPostAt: now } : undefined,
  );
  if (!stored) {
    // The record went between creating it and noting its message (resolved by another path, or unreadable
    // when read back): nothing will edit this message, and the next round may post another. Say so.
    logger.error(
      { node: record.node, incident: record.id, message: ref.ts },
      'alert posted but its incident record is gone; the message will not be updated',
    );
    return;
  }
  await tellEscalation(deps, stored, (e) => e.alertOpen(stored, { posted: true }));
}

/** Deletes the record (compare-and-set) and, if this replica did, tells the thread and edits the parent. */
export async function resolveIncident(
  deps: AlertDeps,
  subject: string,
  mute: MuteRecord | undefined,
  now: number,
  reason?: string,
): Promise<void> {
  const { store, chat, logger, channel } = deps;
  for (let attempt = 0; attempt < 8; attempt++) {
    const record = await store.get(subject);
    if (!record) return;
    if (!(await store.remove(subject, record.version))) continue;
    await tellEscalation(deps, record, (e) => e.alertClosed(record));
    if (!record.message) return;
    const lasted = now - record.openedAt;
    const notes = [...Object.values(record.pending), reason ?? recoveredNote(lasted)];
    logger.info({ node: record.node, kind: record.kind, lastedMs: lasted }, 'incident resolved');
    try {
      await chat.post({ channel, threadTs: record.message.ts, ...renderThreadUpdate(notes) });
      await chat.update(record.message, renderResolvedMessage(alertView(record, mute, now), now));
    } catch (error) {
      logger.error({ node: record.node, err: error }, 'could not post the resolution');
    }
    return;
  }
}

/**
 * Applies `change` to the record, then claims what is due (thread notes once per interval, a stale
 * parent) in the same compare-and-set, and only then posts: a lost race never posts twice.
 */
export async function advanceIncident(
  deps: AlertDeps,
  subject: string,
  mute: MuteRecord | undefined,
  now: number,
  change: (cur: IncidentRecord) => IncidentRecord,
): Promise<void> {
  const { store, chat, logger, channel, threadIntervalMs } = deps;
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
    logger.error({ node: stored.node, err: error }, 'could not update the alert');
  }
}

function alertView(record: IncidentRecord, mute: MuteRecord | undefined, now: number): AlertView {
  const live = mute && mute.until > now ? mute : undefined;
  return {
    incidentId: record.id,
    node: record.node,
    ...(record.servedBy ? { servedBy: record.servedBy } : {}),
    ...(record.standbyOf ? { standbyOf: record.standbyOf } : {}),
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

function sameRecord(a: IncidentRecord, b: IncidentRecord): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
