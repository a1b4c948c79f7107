/**
 * The leader's upkeep of the "no standby" alerts, one incident per CN under `protection:<cn>` with the
 * usual lifecycle (src/monitor/alert-lifecycle.ts): opened when a standby-mode CN has no standby recorded,
 * told in its thread when a standby is recorded but not ready yet, resolved once that standby is ready.
 * A standby that is recorded and lagging has its own alert (standby-lagging) under its name.
 * The protection itself is worked out here too, from the roles, the tracks and the cell state's records.
 */
import type { CellState, CnRoles } from '../ports/cell-state.js';
import type { Logger } from '../ports/logger.js';
import type { NodeInventoryEntry } from '../config/config.js';
import { advanceIncident, openIncident, resolveIncident, type AlertDeps } from './alert-lifecycle.js';
import type { IncidentRecord, MuteRecord } from './incidents.js';
import { trackOf, type Tracks } from './probe-round.js';
import { lacksStandby, protectionOf, type CheckOutcome, type CnProtection } from './protection.js';
import type { Subject } from './subjects.js';

/** Store key of a CN's "no standby" incident. */
export function protectionSubject(cn: string): string {
  return `protection:${cn}`;
}

/** Each CN role's protection now, reading its backup and image records (all at once). */
export async function gatherProtection(input: {
  readonly nodes: Readonly<Record<string, NodeInventoryEntry>>;
  readonly cnRoles: readonly string[];
  readonly roles: ReadonlyMap<string, CnRoles>;
  readonly subjects: readonly Subject[];
  readonly tracks: Tracks;
  readonly checks: ReadonlyMap<string, CheckOutcome>;
  readonly state: CellState;
  readonly logger: Logger;
}): Promise<CnProtection[]> {
  const { state, logger } = input;
  const out = await Promise.all(
    input.cnRoles.map(async (cn) => {
      const roles = input.roles.get(cn);
      if (!roles) return undefined;
      const standby = input.subjects.find((s) => s.standbyOf === cn);
      const [backup, image] = await Promise.all([
        state.nodekeyBackup(cn).catch((error: unknown) => {
          logger.warn({ node: cn, err: error }, 'could not read the backup record');
          return undefined;
        }),
        state.image(cn).catch(() => undefined),
      ]);
      return protectionOf({
        roles,
        mode: input.nodes[cn]?.failover?.mode,
        standbyCondition: standby ? trackOf(input.tracks, standby.name).condition : undefined,
        backup,
        image,
        check: input.checks.get(cn),
      });
    }),
  );
  return out.filter((p): p is CnProtection => p !== undefined);
}

/** Brings every CN's "no standby" incident in step with its protection. */
export async function reconcileProtection(
  deps: AlertDeps,
  round: {
    readonly protection: readonly CnProtection[];
    readonly records: ReadonlyMap<string, IncidentRecord>;
    readonly mutes: ReadonlyMap<string, MuteRecord>;
    readonly now: number;
  },
): Promise<void> {
  const { records, mutes, now } = round;
  for (const p of round.protection) {
    const subject = protectionSubject(p.cn);
    const mute = mutes.get(p.cn);
    const live = mute && mute.until > now ? mute : undefined;
    try {
      await reconcileOne(deps, p, subject, records.get(subject), live, now);
    } catch (error) {
      deps.logger.error({ node: p.cn, err: error }, 'protection alert upkeep failed');
    }
  }
}

async function reconcileOne(
  deps: AlertDeps,
  p: CnProtection,
  subject: string,
  record: IncidentRecord | undefined,
  mute: MuteRecord | undefined,
  now: number,
): Promise<void> {
  if (!record) {
    if (!lacksStandby(p) || mute) return;
    await openIncident(deps, noStandbyFields(p, subject, now), now);
    return;
  }
  if (p.standbyState === 'ready' || p.mode !== 'standby') {
    const why =
      p.mode === 'standby'
        ? `:white_check_mark: Protected again: ${p.standby ?? ''} is ready as ${p.cn}'s standby (roles recorded by run ${p.rolesRunId}).`
        : `${p.cn} no longer fails over to a standby; this alert is closed.`;
    await resolveIncident(deps, subject, mute, now, why);
    return;
  }
  // Still no standby: only the thread upkeep (notes queued by a readiness check are posted when due).
  if (lacksStandby(p)) {
    await advanceIncident(deps, subject, mute, now, (cur) => cur);
    return;
  }
  // A standby is recorded but not ready yet: say so once, keep the alert open until it is.
  const detail = `Standby ${p.standby ?? ''} recorded by run ${p.rolesRunId}; waiting for it to be ready (now ${p.standbyState ?? 'unknown'}).`;
  await advanceIncident(deps, subject, mute, now, (cur) =>
    cur.detail === detail
      ? cur
      : { ...cur, detail, pending: { ...cur.pending, standby: detail }, parentStale: true },
  );
}

function noStandbyFields(
  p: CnProtection,
  subject: string,
  now: number,
): Omit<IncidentRecord, 'id' | 'pending' | 'version' | 'createdAt'> {
  const served = p.servedBy === p.cn ? p.cn : `${p.cn} is served by ${p.servedBy}`;
  const since = p.rolesRunId === 'config' ? '' : ` since run ${p.rolesRunId}`;
  return {
    subject,
    node: p.cn,
    ...(p.servedBy === p.cn ? {} : { servedBy: p.servedBy }),
    kind: 'no-standby',
    openedAt: p.rolesSince > 0 ? p.rolesSince : now,
    detail: `${served}${since} and no machine stands by for it. Make one its standby with /cell rebuild-standby ${p.cn}, or record one set up by hand with /cell roles ${p.cn} set served-by=<node> standby=<node>.`,
  };
}

/**
 * A readiness check that failed only on standby conditions while the CN has no standby tells nothing
 * new: it goes into the "no standby" thread (opening it if need be) instead of an alert of its own.
 */
export async function noteCheckOnProtection(
  deps: AlertDeps,
  p: CnProtection,
  message: string,
  now: number,
): Promise<void> {
  const subject = protectionSubject(p.cn);
  const note = `Readiness check: ${message}`;
  const existing = await deps.store.get(subject);
  if (!existing) {
    await openIncident(deps, noStandbyFields(p, subject, now), now);
    return;
  }
  await advanceIncident(deps, subject, undefined, now, (cur) => ({
    ...cur,
    pending: { ...cur.pending, check: note },
  }));
}
