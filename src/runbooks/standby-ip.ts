/**
 * Moving the failed CN's service IP to the standby (failover-standby.ts, "Move the active's IP to the
 * standby") and back on undo: an alias address over SSH, or an Elastic IP through EC2. A manual move is a
 * person's job and has no helper.
 */
import type { FailoverContext, FailoverPlan } from './failover-params.js';
import type { FailoverConfig } from '../config/schema.js';
import { standbyTargetOf, type StandbyTarget } from './cell-nodes.js';
import { requireEipMovable, type EipMove } from './eip-holder.js';
import type { NodeInventoryEntry } from '../config/config.js';
import { STANDBY_FACTS } from './failover-facts.js';
import { ipOf, type NodeOps } from './node-ops.js';
import { HostError, SafetyGateError, describeError } from '../errors.js';
import { factOf } from './shaped-facts.js';

export type IpConfig = FailoverConfig['ip'];
export type AliasIp = Extract<IpConfig, { method: 'alias' }>;
export type ElasticIp = Extract<IpConfig, { method: 'eip' }>;

/**
 * Adds the address on the standby, then takes it off the old active when that is reachable and holds it.
 * Never leaves it on two hosts: when the old active answers but keeps it, the standby gives it up again.
 */
export async function moveAliasIp(
  ctx: FailoverContext,
  ops: NodeOps,
  t: StandbyTarget,
  ip: AliasIp,
): Promise<void> {
  const { address, device } = ip;
  let added = false;
  if (!(await ops.addresses(t.standby.host, device)).includes(address)) {
    await ops.ipAdd(t.standby.host, address, device);
    added = true;
    ctx.output(`added ${address} to ${device} on ${t.standby.name}`);
  } else ctx.output(`${address} is already on ${device} of ${t.standby.name}`);
  try {
    if ((await ops.addresses(t.cn.host, device)).includes(address)) {
      await takeOffOldActive(ctx, ops, t, ip, added);
      ctx.output(`removed ${address} from ${device} on ${t.cn.name}`);
    }
  } catch (error) {
    if (!(error instanceof HostError)) throw error;
    ctx.output(
      `could not reach ${t.cn.name} to remove ${address} from it (${error.message}); it is fenced, remove the address when it comes back`,
    );
  }
}

async function takeOffOldActive(
  ctx: FailoverContext,
  ops: NodeOps,
  t: StandbyTarget,
  { address, device }: AliasIp,
  addedOnStandby: boolean,
): Promise<void> {
  try {
    await ops.ipDel(t.cn.host, address, device);
  } catch (error) {
    if (error instanceof HostError) throw error;
    // cn1 answers but keeps the address: on two hosts, both answer ARP for it and peers' traffic
    // flaps between them. Do not leave it so: take it off the standby again and stop.
    if (addedOnStandby) {
      try {
        await ops.ipDel(t.standby.host, address, device);
        ctx.output(`removed ${address} from ${t.standby.name} again`);
      } catch (cleanup) {
        ctx.output(
          `could not remove ${address} from ${t.standby.name} again: ${describeError(cleanup)}; remove it by hand`,
        );
      }
    }
    throw new SafetyGateError(
      `Could not remove ${address} from ${device} on ${t.cn.name}, which is reachable (${describeError(error)}): the address would be on two hosts. Remove it from ${t.cn.name} by hand, then start the failover again.`,
    );
  }
}

/**
 * Announces a moved alias address from its new holder (gratuitous ARP), so neighbours update their caches
 * at once. Run beside the start of kcnd, never before it: `arping -U -c 3` takes seconds, and the node
 * does not need the neighbours' caches to start. Never throws: a late announcement only delays peers
 * until their ARP entries expire, which is no reason to fail a failover.
 */
export async function announceIp(
  ctx: FailoverContext,
  ops: NodeOps,
  node: NodeInventoryEntry,
  ip: IpConfig,
): Promise<void> {
  if (ip.method !== 'alias') return;
  try {
    ctx.output((await ops.gratuitousArp(node.host, ip.device, ipOf(ip.address))).note);
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    ctx.output(
      `could not announce ${ip.address} from ${node.name} (${describeError(error)}); neighbours learn the move when their ARP entries expire`,
    );
  }
}

/** On the standby, and no longer on a reachable old active. */
export async function aliasIpMoved(ops: NodeOps, t: StandbyTarget, ip: AliasIp): Promise<boolean> {
  if (!(await ops.addresses(t.standby.host, ip.device)).includes(ip.address)) return false;
  // Done means moved, not copied: a reachable old active must no longer hold it (a crash between the
  // add and the del must not skip the del).
  try {
    return !(await ops.addresses(t.cn.host, ip.device)).includes(ip.address);
  } catch (error) {
    if (error instanceof HostError) return true;
    throw error;
  }
}

export async function moveAliasIpBack(
  ctx: FailoverContext,
  ops: NodeOps,
  t: StandbyTarget,
  ip: AliasIp,
): Promise<void> {
  if ((await ops.addresses(t.standby.host, ip.device)).includes(ip.address)) {
    await ops.ipDel(t.standby.host, ip.address, ip.device);
    ctx.output(`removed ${ip.address} from ${t.standby.name}`);
  }
  try {
    if (!(await ops.addresses(t.cn.host, ip.device)).includes(ip.address)) {
      await ops.ipAdd(t.cn.host, ip.address, ip.device);
      ctx.output(`added ${ip.address} back on ${t.cn.name}`);
      ctx.output((await ops.gratuitousArp(t.cn.host, ip.device, ipOf(ip.address))).note);
    }
  } catch (error) {
    if (!(error instanceof HostError)) throw error;
    ctx.output(`could not reach ${t.cn.name} to give ${ip.address} back (${error.message})`);
  }
}

/**
 * The Elastic IP's move in standby mode: from the machine serving the CN (its configured instance, the
 * serving machine being the recorded role's) to the standby.
 */
export function standbyEipMove(t: StandbyTarget, ip: ElasticIp): EipMove {
  return {
    allocationId: ip.allocationId,
    ...(t.cn.instanceId === undefined ? {} : { failedInstanceId: t.cn.instanceId }),
    ...(t.standby.instanceId === undefined ? {} : { takerInstanceId: t.standby.instanceId }),
  };
}

/** The run's Elastic IP move, for the confirmation step; undefined when the CN's IP is no Elastic IP. */
export function standbyEipMoveOf(ctx: FailoverPlan): EipMove | undefined {
  const t = standbyTargetOf(ctx);
  return t.failover.ip.method === 'eip' ? standbyEipMove(t, t.failover.ip) : undefined;
}

/**
 * Associates the Elastic IP with the standby, remembering the instance that held it before. Only from
 * the serving machine's instance, from nothing, or from the instance an approver confirmed
 * (confirm-eip-holder): the allocation may be another service's.
 */
export async function moveEip(ctx: FailoverContext, t: StandbyTarget, ip: ElasticIp): Promise<void> {
  const instanceId = t.standby.instanceId;
  if (!instanceId)
    throw new SafetyGateError(`The standby ${t.standby.name} has no instanceId to move the Elastic IP to.`);
  const before = await requireEipMovable(ctx, standbyEipMove(t, ip));
  if (ctx.fact(STANDBY_FACTS.ipPreviousInstance) === undefined)
    ctx.setFact(STANDBY_FACTS.ipPreviousInstance, before.instanceId ?? null);
  await ctx.ports.cloud.associateAddress(ip.allocationId, instanceId);
  ctx.output(
    `associated ${ip.allocationId}${before.publicIp ? ` (${before.publicIp})` : ''} with ${instanceId} (it was on ${before.instanceId ?? 'no instance'})`,
  );
}

export async function eipMoved(ctx: FailoverContext, t: StandbyTarget, ip: ElasticIp): Promise<boolean> {
  return (
    t.standby.instanceId !== undefined &&
    (await ctx.ports.cloud.describeAddress(ip.allocationId))?.instanceId === t.standby.instanceId
  );
}

export async function moveEipBack(ctx: FailoverContext, ip: ElasticIp): Promise<void> {
  const previous = factOf(ctx, STANDBY_FACTS.ipPreviousInstance, 'instanceId');
  if (previous) {
    await ctx.ports.cloud.associateAddress(ip.allocationId, previous);
    ctx.output(`associated ${ip.allocationId} back with ${previous}`);
  } else ctx.output(`${ip.allocationId} was not associated before the run; left on the standby`);
}
