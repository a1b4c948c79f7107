/**
 * The monitor's control API on any replica (src/monitor/types.ts MonitorControl, plus the readiness
 * reports): mute, unmute, acknowledge, and the outcome of a readiness check. Each changes the shared
 * incident records; the leader posts what follows.
 */
import { formatDuration } from '../config/duration.js';
import { InputError } from '../errors.js';
import { currentRoles } from '../ports/cell-state.js';
import { checkSubject, openIncident, resolveIncident } from './alert-lifecycle.js';
import { updateIncident, type IncidentRecord } from './incidents.js';
import type { MonitorContext, MonitorState } from './monitor-context.js';
import { noteCheckOnProtection, protectionSubject } from './protection-alerts.js';
import { lacksStandby, protectionOf, STANDBY_CHECK_STEPS, type CnProtection } from './protection.js';

export async function muteNode(
  ctx: MonitorContext,
  node: string,
  durationMs: number,
  user: string,
): Promise<{ until: number }> {
  knownNode(ctx, node);
  if (!Number.isFinite(durationMs) || durationMs <= 0) {
    throw new InputError(`a mute needs a positive duration, e.g. 30m`);
  }
  const now = ctx.clock.now();
  const until = now + durationMs;
  await ctx.store.setMute(node, { until, by: user, at: now });
  await noteOnIncidents(ctx, node, 'mute', `:no_bell: Muted for ${formatDuration(durationMs)} by <@${user}>`);
  ctx.logger.info({ node, user, until }, 'alerts muted');
  return { until };
}

export async function unmuteNode(ctx: MonitorContext, node: string, user: string): Promise<void> {
  knownNode(ctx, node);
  if (!(await ctx.store.clearMute(node))) throw new InputError(`${node} is not muted`);
  await noteOnIncidents(ctx, node, 'mute', `:bell: Unmuted by <@${user}>`);
  ctx.logger.info({ node, user }, 'alerts unmuted');
}

export async function acknowledgeNode(ctx: MonitorContext, node: string, user: string): Promise<void> {
  const { store } = ctx;
  knownNode(ctx, node);
  const now = ctx.clock.now();
  let open = 0;
  for (const subject of subjectsOf(ctx, node)) {
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
  ctx.logger.info({ node, user }, 'alert acknowledged');
}

export async function checkFailed(
  ctx: MonitorContext,
  st: MonitorState,
  cn: string,
  message: string,
  failedSteps: readonly string[] = [],
): Promise<void> {
  const { store } = ctx;
  knownNode(ctx, cn);
  const now = ctx.clock.now();
  st.checkOutcomes.set(cn, { failedSteps, failures: [message] });
  const mute = (await store.getMutes([cn])).get(cn);
  const muted = mute !== undefined && mute.until > now;
  const protection = await protectionNow(ctx, st, cn);
  const onlyStandby = failedSteps.length > 0 && failedSteps.every((id) => STANDBY_CHECK_STEPS.includes(id));
  if (onlyStandby && protection && lacksStandby(protection)) {
    if (!muted) await noteCheckOnProtection(ctx.alerts, protection, message, now);
    return;
  }
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
  if (muted) {
    ctx.logger.info({ node: cn }, 'readiness check failed while muted; no alert');
    return;
  }
  await openIncident(
    ctx.alerts,
    { subject, node: cn, kind: 'check-failed', openedAt: now, detail: message },
    now,
  );
}

/** The CN's protection as the leader last worked it out, else from the recorded roles alone. */
async function protectionNow(
  ctx: MonitorContext,
  st: MonitorState,
  cn: string,
): Promise<CnProtection | undefined> {
  const known = st.protection.find((p) => p.cn === cn);
  if (known) return known;
  const roles = await currentRoles(ctx.cellState, ctx.config, cn);
  const mode = ctx.config.nodes[cn]?.failover?.mode;
  return protectionOf({
    roles,
    mode,
    standbyCondition: undefined,
    backup: undefined,
    image: undefined,
    check: undefined,
  });
}

export async function checkPassed(ctx: MonitorContext, st: MonitorState, cn: string): Promise<void> {
  knownNode(ctx, cn);
  st.checkOutcomes.set(cn, { failedSteps: [], failures: [] });
  const now = ctx.clock.now();
  const mute = (await ctx.store.getMutes([cn])).get(cn);
  await resolveIncident(ctx.alerts, checkSubject(cn), mute, now);
}

function knownNode(ctx: MonitorContext, node: string): void {
  if (!ctx.config.nodes[node]) {
    throw new InputError(`unknown node "${node}"; known nodes: ${[...ctx.nodeNames].sort().join(', ')}`);
  }
}

/** Subjects of a node's open incidents: its condition incident and, for a CN, its check and protection ones. */
function subjectsOf(ctx: MonitorContext, node: string): string[] {
  return ctx.config.nodes[node]?.role === 'cn'
    ? [node, checkSubject(node), protectionSubject(node), `standby:${node}`]
    : [node];
}

async function noteOnIncidents(
  ctx: MonitorContext,
  node: string,
  topic: string,
  note: string,
  extra: (cur: IncidentRecord) => Partial<IncidentRecord> = () => ({}),
): Promise<number> {
  let touched = 0;
  for (const subject of subjectsOf(ctx, node)) {
    const stored = await updateIncident(ctx.store, subject, (cur) => ({
      ...cur,
      ...extra(cur),
      pending: { ...cur.pending, [topic]: note },
      parentStale: true,
    }));
    if (stored) touched++;
  }
  return touched;
}
