/**
 * The monitor's side of escalation: the leader reports each open alert every round (and its end), and
 * this turns those reports into policy inputs. Because the report repeats every round, a new monitor
 * leader or a restarted bot catches up by itself, and an Acknowledge clicked on any replica (it changes the
 * shared incident record) reaches the pager within one probe interval.
 */
import type { Chat } from '../ports/chat.js';
import type { IncidentRecord } from '../monitor/incidents.js';
import type { AlertEscalation } from '../monitor/monitor-hooks.js';
import type { EscalationPolicy } from './escalation-policy.js';
import type { AlertEntry, AlertFacts, NodeRoleName } from './policy.js';

export interface MonitorEscalationDeps {
  readonly policy: EscalationPolicy;
  readonly chat: Pick<Chat, 'permalink'>;
  /** The role of a node (or CN role name) in the inventory. */
  readonly roleOf: (node: string) => NodeRoleName | undefined;
}

function factsOf(record: IncidentRecord, role: NodeRoleName, threadUrl: string | undefined): AlertFacts {
  const lag = record.reportedLag ?? record.lag;
  return {
    id: record.id,
    node: record.node,
    role,
    condition: record.kind,
    since: record.openedAt,
    ...(lag === undefined ? {} : { lag }),
    ...(threadUrl === undefined ? {} : { threadUrl }),
    ...(record.servedBy === undefined ? {} : { servedBy: record.servedBy }),
    ...(record.detail === undefined ? {} : { detail: record.detail }),
    ...(record.message === undefined ? {} : { thread: record.message }),
  };
}

/** Worth telling the policy (and saving): a new condition, a reported lag, a new serving machine. */
function changed(known: AlertFacts, next: AlertFacts): boolean {
  return known.condition !== next.condition || known.lag !== next.lag || known.servedBy !== next.servedBy;
}

export function createMonitorEscalation(deps: MonitorEscalationDeps): AlertEscalation {
  const { policy } = deps;
  const entryOf = (id: string): AlertEntry | undefined =>
    policy.entries().find((e): e is AlertEntry => e.kind === 'alert' && e.facts.id === id);

  return {
    async alertOpen(record, { mute, posted }) {
      const role = deps.roleOf(record.node);
      if (role === undefined) return;
      const known = entryOf(record.id);
      if (!known) {
        const threadUrl = record.message ? await deps.chat.permalink(record.message) : undefined;
        // Posted now: the delay counts from the post. Otherwise this process did not see it open (a
        // restart, a new leader, a store that forgot it): count from now rather than page at once.
        await policy.alertOpened(factsOf(record, role, threadUrl), posted ? record.createdAt : undefined);
      } else {
        const next = factsOf(record, role, known.facts.threadUrl);
        if (changed(known.facts, next)) await policy.alertChanged(next);
      }
      const by = record.acknowledgedBy ?? mute?.by;
      if (by !== undefined && entryOf(record.id)?.state !== 'acknowledged') {
        await policy.alertAcknowledged(record.id, by);
      }
    },
    alertClosed: (record) => policy.alertResolved(record.id),
  };
}
