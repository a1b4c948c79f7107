/**
 * The checks of the snapshot mode's preflight (failover-snapshot.ts), in the order it runs them: the
 * machine serving the CN now and its state, the CN really unhealthy, a machine image, the backup, a
 * healthy PN to snapshot, and the Elastic IP. Each records what later steps need, or throws what to fix.
 */
import { requireFactOf } from './shaped-facts.js';
import type { FailoverContext } from './failover-params.js';
import type { NodeInventoryEntry } from '../config/config.js';
import type { SnapshotFailoverTimings } from './failover-timings.js';
import type { SnapshotTarget } from './cell-nodes.js';
import { SNAPSHOT_FACTS, requireFact } from './failover-facts.js';
import { nodeIdFromKey, sameAddress } from './nodekey.js';
import { LINK_FACTS, linksText, pnLinks, strandedLinks } from './cn-links.js';
import { holderLine, readEipHolder, type EipHolder } from './eip-holder.js';
import { replacementEndpoint } from './replacement.js';
import { readBackupKeys } from './backup-keys.js';
import { ipOf, opsOf } from './node-ops.js';
import { InputError, SafetyGateError, describeError } from '../errors.js';
import { recordedRole } from './recorded-role.js';

/** The PNs' heights when the preflight looked (cell-nodes.ts pnReferenceHeight), with one answering. */
export interface PnHeights {
  readonly height: number;
  readonly heights: ReadonlyMap<string, number>;
}

/**
 * The machine that serves the role now: a replacement from an earlier failover, else the configured one.
 * Records its instance and address; it must have an instance, since stopping it is the fence.
 */
export async function locateFailedCn(ctx: FailoverContext, t: SnapshotTarget): Promise<string> {
  const { cn } = ctx.params;
  const role = await recordedRole(ctx, cn);
  const failedInstanceId = role?.instanceId ?? t.cn.instanceId;
  const failedHost = role?.address ?? t.cn.host.address;
  if (failedInstanceId === undefined)
    throw new SafetyGateError(
      `${cn} has no EC2 instance id (nodes.${cn}.instanceId), so it cannot be fenced by stopping it; mode snapshot needs one`,
    );
  const failedInfo = await ctx.ports.cloud.describeInstance(failedInstanceId);
  ctx.output(
    `${cn} runs on ${failedInstanceId} at ${failedHost}: ${failedInfo ? failedInfo.state : 'not found (already gone)'}`,
  );
  ctx.setFact(SNAPSHOT_FACTS.failedInstanceId, failedInstanceId);
  ctx.setFact(SNAPSHOT_FACTS.failedHost, failedHost);
  // A replacement an earlier failover launched is trusted by the keys pinned from its console then.
  if (role?.address !== undefined && role.hostKeys !== undefined)
    ctx.setFact(SNAPSHOT_FACTS.failedHostKeys, [...role.hostKeys]);
  return failedHost;
}

/** A healthy active must not be replaced by accident: that is a switchover and needs --force. */
export async function refuseIfHealthy(
  ctx: FailoverContext,
  t: SnapshotTarget,
  failedHost: string,
  reference: PnHeights,
  timings: SnapshotFailoverTimings,
): Promise<void> {
  const { cn } = ctx.params;
  const failedEndpoint =
    failedHost === t.cn.host.address
      ? t.cn.endpoint
      : replacementEndpoint(t.cn, failedHost, ctx.fact<readonly string[]>(SNAPSHOT_FACTS.failedHostKeys));
  try {
    const health = await ctx.ports.rpc.health(failedEndpoint, {
      timeoutMs: timings.probeMs,
      signal: ctx.signal,
    });
    const lag = reference.height - health.height;
    if (lag <= ctx.config.monitor.lagBlocks && !ctx.params.force)
      throw new SafetyGateError(
        `${cn} looks healthy (height ${health.height}, ${lag} blocks behind the PNs); a failover of a healthy CN is a switchover: run it with --force`,
      );
    ctx.output(`${cn} is ${lag} blocks behind the PNs${ctx.params.force ? ' (--force)' : ''}`);
  } catch (error) {
    if (error instanceof SafetyGateError) throw error;
    ctx.output(`${cn} does not answer (${describeError(error)})`);
  }
}

/** The machine image to launch from: pinned in the configuration, else the latest recorded; available. */
export async function checkImage(ctx: FailoverContext, t: SnapshotTarget): Promise<void> {
  const { cn } = ctx.params;
  const imageId = t.failover.imageId ?? (await ctx.ports.state.image(cn))?.imageId;
  if (imageId === undefined)
    throw new SafetyGateError(
      `no machine image of ${cn} is recorded: run \`/cell image ${cn}\` while it is healthy, or set nodes.${cn}.failover.imageId`,
    );
  const image = await ctx.ports.cloud.describeImage(imageId);
  if (image?.state !== 'available')
    throw new SafetyGateError(
      `machine image ${imageId} of ${cn} is ${image ? image.state : 'not found'}, not available`,
    );
  ctx.output(
    `image ${imageId} (${image.name ?? 'unnamed'}, created ${image.creationDate ?? '?'}) is available`,
  );
  ctx.setFact(SNAPSHOT_FACTS.imageId, imageId);
}

/** The backup is valid and, when recorded, unchanged. Records its address and checksum. */
export async function checkBackup(ctx: FailoverContext, t: SnapshotTarget): Promise<void> {
  const { cn } = ctx.params;
  // The key stays in this function's memory: validated, hashed, never logged.
  const { key, checksum, address, bls } = await readBackupKeys(opsOf(ctx), t);
  const backup = { path: t.backupPath, host: t.backupHost.name };
  const record = await ctx.ports.state.nodekeyBackup(cn);
  if (record) {
    if (record.checksum !== checksum || !sameAddress(record.nodeAddress, address))
      throw new SafetyGateError(
        `the nodekey backup ${backup.path} on ${backup.host} no longer matches the one recorded for ${cn} (address ${record.nodeAddress}); check the file before failing over`,
      );
    ctx.output(
      `nodekey backup valid: address ${address}, matches the record of ${new Date(record.at).toISOString()}`,
    );
  } else {
    ctx.output(
      `WARNING: no backup of ${cn} is recorded; the backup file derives address ${address} — make sure that is ${cn}'s`,
    );
  }
  ctx.output(
    bls === undefined
      ? `no bls-nodekey next to the backup: kcnd will derive ${cn}'s from the nodekey (right when its registered BLS key was derived, the default)`
      : `bls-nodekey backup found next to the nodekey backup; it will be installed with it`,
  );
  ctx.setFact(SNAPSHOT_FACTS.failedAddress, address);
  ctx.setFact(SNAPSHOT_FACTS.failedNodeId, nodeIdFromKey(key));
  ctx.setFact(SNAPSHOT_FACTS.backupChecksum, checksum);
}

/** The first of snapshotFrom that is a healthy PN with a known data volume; records it. */
export function choosePn(ctx: FailoverContext, t: SnapshotTarget, reference: PnHeights): void {
  let chosen: NodeInventoryEntry | undefined;
  for (const name of t.snapshotFrom) {
    const pn = ctx.config.nodes[name];
    if (!pn || pn.role !== 'pn') {
      ctx.output(`${name}: not a PN in the configuration, skipped`);
      continue;
    }
    if (pn.dataVolumeId === undefined) {
      ctx.output(`${name}: no dataVolumeId configured, skipped`);
      continue;
    }
    const height = reference.heights.get(name);
    if (height === undefined || reference.height - height > ctx.config.monitor.lagBlocks) {
      ctx.output(
        `${name}: ${height === undefined ? 'not answering' : `${reference.height - height} blocks behind`}, skipped`,
      );
      continue;
    }
    chosen = pn;
    break;
  }
  if (!chosen)
    throw new SafetyGateError(
      `none of ${t.snapshotFrom.join(', ')} is a healthy PN with a known data volume (nodes.<pn>.dataVolumeId)`,
    );
  const othersHealthy = [...reference.heights.entries()].filter(
    ([name, height]) => name !== chosen.name && reference.height - height <= ctx.config.monitor.lagBlocks,
  );
  ctx.output(
    othersHealthy.length === 0
      ? `WARNING: stopping kpnd on ${chosen.name} leaves the cell with no healthy PN until it is started again`
      : `snapshot source ${chosen.name} (${chosen.dataVolumeId}); healthy PNs while it is stopped: ${othersHealthy.map(([n]) => n).join(', ')}`,
  );
  ctx.setFact(SNAPSHOT_FACTS.pn, chosen.name);
  ctx.setFact(SNAPSHOT_FACTS.pnVolumeId, chosen.dataVolumeId!);
}

/** The Elastic IP exists and who holds it: a holder other than the failed CN's instance needs a confirmation later. */
export async function checkEip(ctx: FailoverContext, t: SnapshotTarget): Promise<EipHolder> {
  const move = {
    allocationId: t.allocationId,
    failedInstanceId: requireFactOf(ctx, SNAPSHOT_FACTS.failedInstanceId, 'instanceId'),
  };
  const holder = await readEipHolder(ctx, move);
  ctx.output(holderLine(move, holder));
  return holder;
}

/**
 * Which addresses the PNs dial the CN at (their static-nodes.json): recorded for the plan, with a warning
 * for any that will not follow the CN to the replacement (neither the Elastic IP nor failover.privateIp).
 */
export async function checkPnLinks(
  ctx: FailoverContext,
  t: SnapshotTarget,
  publicIp: string | undefined,
): Promise<void> {
  const nodeId = ctx.fact<string>(SNAPSHOT_FACTS.failedNodeId);
  if (nodeId === undefined) return;
  const links = await pnLinks(opsOf(ctx), ctx.config, nodeId);
  const text = linksText(links);
  ctx.setFact(LINK_FACTS.pnLinks, text);
  ctx.output(`the PNs dial ${t.cn.name} at: ${text}`);
  const movable = [publicIp, t.failover.privateIp ? ipOf(t.failover.privateIp.address) : undefined].filter(
    (a): a is string => a !== undefined,
  );
  for (const link of strandedLinks(links, movable))
    ctx.output(
      `WARNING: ${link.pn} dials ${t.cn.name} at ${link.endpoints.join(', ')}, which does not follow ${t.cn.name} to the replacement (only the Elastic IP${t.failover.privateIp ? ` and ${t.failover.privateIp.address}` : ''} move): the replacement gets no PN peers from it and verify fails. Set nodes.${t.cn.name}.failover.privateIp to a secondary IP the PNs dial, or list the Elastic IP in their static-nodes.json.`,
    );
}

/** The PN the preflight chose to snapshot. */
export function pnOf(ctx: FailoverContext): NodeInventoryEntry {
  const name = requireFact<string>(ctx, SNAPSHOT_FACTS.pn);
  const pn = ctx.config.nodes[name];
  if (!pn) throw new InputError(`${name} is no longer in the configuration`);
  return pn;
}
