/**
 * What the readiness conditions of `check` (check.ts) look at besides the shared node helpers: the
 * standby they are about, where kcnd reads static-nodes.json, the CN's address, and the wording of a
 * condition that does not apply to the CN's mode.
 */
import type { CnContext, CnPlan } from './failover-params.js';
import type { NodeInventoryEntry } from '../config/config.js';
import { cnTargetOf, type CnTarget } from './cell-nodes.js';
import { keyFileAddress } from './key-files.js';
import { mapHostError, type NodeOps } from './node-ops.js';
import { ReadinessCheckError } from '../errors.js';

/** The CN's standby; a standby-mode CN without one fails the check. */
export function standbyOf(ctx: CnPlan, t: CnTarget): NodeInventoryEntry {
  const name = t.failover.standby;
  const standby = name ? ctx.config.nodes[name] : undefined;
  if (!standby)
    throw new ReadinessCheckError(
      `${t.cn.name} has failover mode standby but no standby node configured (nodes.${t.cn.name}.failover.standby).`,
    );
  return standby;
}

/** Plan text of a condition about the standby: not applicable in snapshot mode. */
export function describeStandbyCondition(
  ctx: CnPlan,
  text: (t: CnTarget, standby: NodeInventoryEntry) => string,
): string {
  const t = cnTargetOf(ctx);
  if (t.failover.mode !== 'standby') return 'Not applicable: no standby in snapshot mode.';
  return text(t, standbyOf(ctx, t));
}

export const isStandbyMode = async (ctx: CnContext): Promise<boolean> =>
  cnTargetOf(ctx).failover.mode === 'standby';

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
  const recorded = await ctx.ports.state.nodekeyBackup(t.cn.name);
  if (recorded) return recorded.nodeAddress;
  return keyFileAddress(ops, t.backupHost.host, t.backupPath);
}
