/**
 * What the readiness conditions of `check` (check.ts) look at besides the shared node helpers: the
 * standby they are about, where kcnd reads static-nodes.json, the CN's address, and the wording of a
 * condition that does not apply to the CN's mode.
 */
import type { CnContext, CnPlan } from './failover-params.js';
import type { NodeInventoryEntry } from '../config/config.js';
import {
  cnTargetOf,
  resolveStandby,
  standbyLayout,
  type CnTarget,
  type StandbyTarget,
} from './cell-nodes.js';
import { keyFileAddress } from './key-files.js';
import { mapHostError, type NodeOps } from './node-ops.js';
import { InputError, ReadinessCheckError } from '../errors.js';

/**
 * The CN's machines as recorded now (standbyLayout: the roles the last failover, rebuild or hand change
 * recorded, else the configuration's layout): the one serving it and its standby. A CN with no standby
 * recorded — right after a failover — fails the check saying how to get one; the monitor files that
 * under the CN's "no standby" alert (only standby steps failed).
 */
export async function recordedStandbyOf(ctx: CnContext): Promise<StandbyTarget> {
  const t = cnTargetOf(ctx);
  const layout = await standbyLayout(ctx.config, ctx.ports.state, t.role);
  if (layout.standby === undefined) {
    const since = layout.recorded ? ` since run ${layout.recorded.runId}` : '';
    throw new ReadinessCheckError(
      `${t.role} has no standby — run /cell rebuild-standby ${t.role} (it is served by ${layout.active}${since} and no machine stands by for it).`,
    );
  }
  try {
    return resolveStandby(ctx.config, t.role, { active: layout.active, standby: layout.standby });
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    throw new ReadinessCheckError(
      `the recorded roles of ${t.role} (served by ${layout.active}, standby ${layout.standby}) do not fit the configuration: ${error.message} Record them again with /cell roles ${t.role} set.`,
    );
  }
}

/**
 * Plan text of a condition about the standby: not applicable in snapshot mode. The plan cannot read the
 * recorded roles, so it names the configured standby and says the run follows the recorded one.
 */
export function describeStandbyCondition(
  ctx: CnPlan,
  text: (t: CnTarget, standby: NodeInventoryEntry) => string,
): string {
  const t = cnTargetOf(ctx);
  if (t.failover.mode !== 'standby') return 'Not applicable: no standby in snapshot mode.';
  const configured = t.failover.standby ? ctx.config.nodes[t.failover.standby] : undefined;
  const follows = `On the standby recorded for ${t.role} when the check runs (fails with "no standby" when none is)`;
  if (!configured) return `${follows}.`;
  return `${follows}; for the configured ${configured.name}: ${text(t, configured)}`;
}

export const isStandbyMode = async (ctx: CnContext): Promise<boolean> =>
  cnTargetOf(ctx).failover.mode === 'standby';

/**
 * Standby mode with a standby recorded: the later standby conditions are skipped without one, since the
 * first (standby-own-key) already failed saying "no standby" and how to get one.
 */
export const hasRecordedStandby = async (ctx: CnContext): Promise<boolean> =>
  (await isStandbyMode(ctx)) &&
  (await standbyLayout(ctx.config, ctx.ports.state, ctx.params.cn)).standby !== undefined;

/** Runs `fn`, turning "cannot reach the host" into a failed check naming it. */
export function reaching<T>(fn: () => Promise<T>): Promise<T> {
  return mapHostError(fn, (error) => new ReadinessCheckError(error.message));
}

/** Both locations kcnd reads static-nodes.json from; the one directly in DATA_DIR wins. */
export function staticNodesPaths(dataDir: string): string[] {
  const base = dataDir.replace(/\/+$/, '');
  return [`${base}/static-nodes.json`, `${base}/klay/static-nodes.json`];
}

/** The address of the CN's identity: the recorded backup, else the backup file. */
export async function cnAddress(ctx: CnContext, ops: NodeOps, t: CnTarget): Promise<string | undefined> {
  const recorded = await ctx.ports.state.nodekeyBackup(t.role);
  if (recorded) return recorded.nodeAddress;
  return keyFileAddress(ops, t.backupHost.host, t.backupPath);
}
