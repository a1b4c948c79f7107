/**
 * The checks of the standby mode's preflight (failover-standby.ts; the switchover reuses all but the
 * first), in the order it runs them: the active is really unhealthy, the standby is ready, the backup is
 * the failed CN's key and nowhere else in use, and the standby runs a key of its own. Each throws a
 * SafetyGateError saying what to fix.
 */
import type { FailoverContext } from './failover-params.js';
import type { StandbyFailoverTimings } from './failover-timings.js';
import {
  lagOf,
  probe,
  referenceHeight,
  reportedAddress,
  type ReferenceHeight,
  type StandbyTarget,
} from './cell-nodes.js';
import { STANDBY_FACTS } from './failover-facts.js';
import { effectiveKeyPath, keyFileAddress } from './key-files.js';
import { mapHostError, nodeKeyPaths, type NodeOps } from './node-ops.js';
import { nodeIdFromKey, sameAddress } from './nodekey.js';
import { refuseLegacyKeys, shortChecksum } from './standby-keys.js';
import { readBackupKeys } from './backup-keys.js';
import { SafetyGateError, describeError } from '../errors.js';

/** How the active looked when judged: the PNs' reference height, and whether the active answered. */
export interface ActiveJudgement {
  readonly reference: ReferenceHeight;
  readonly activeAnswers: boolean;
}

/** The failed CN's identity as the backup holds it (never the key). */
export interface BackupIdentity {
  readonly address: string;
  readonly nodeId: string;
  readonly checksum: string;
}

/**
 * The run acts on the machines settled when it was requested (the recorded roles then). Another run may
 * have moved the CN since (the lock serializes runs, not requests): then this one stops before changing
 * anything. A run requested before roles were recorded acts on the configuration's layout, which must
 * still be the truth.
 */
export async function refuseIfRolesChanged(ctx: FailoverContext, t: StandbyTarget): Promise<void> {
  const role = await ctx.ports.state.role(t.role);
  if (!role) return;
  const retry = `Start a new /failover ${t.role}: it follows the recorded roles.`;
  if (role.servedBy !== t.cn.name)
    throw new SafetyGateError(
      `${t.role} is served by ${role.servedBy} (since run ${role.runId}), not by ${t.cn.name} as this run assumed: nothing was changed. ${retry}`,
    );
  const standby =
    role.standby ??
    (role.servedBy === t.role && role.previous === undefined ? t.failover.standby : undefined);
  if (standby === undefined)
    throw new SafetyGateError(
      `${t.role} is served by ${role.servedBy} (since run ${role.runId}) and has no standby ready: nothing was changed. Make one with /cell rebuild-standby ${t.role}, then fail over again.`,
    );
  if (standby !== t.standby.name)
    throw new SafetyGateError(
      `${t.role}'s standby is now ${standby}, not ${t.standby.name} as this run assumed: nothing was changed. ${retry}`,
    );
}

/** 1. The active must really be unhealthy, unless this is a switchover (--force). */
export async function judgeActive(
  ctx: FailoverContext,
  t: StandbyTarget,
  timings: StandbyFailoverTimings,
): Promise<ActiveJudgement> {
  const { lagBlocks } = ctx.config.monitor;
  const reference = await referenceHeight(ctx.ports, ctx.config, ctx.signal);
  const active = await probe(ctx.ports, t.cn, ctx.signal);
  let verdict: string | undefined;
  if (!active.ok) verdict = `${t.cn.name} does not answer (${active.reason})`;
  else if (lagOf(active.health.height, reference.height) > lagBlocks)
    verdict = `${t.cn.name} is ${lagOf(active.health.height, reference.height)} blocks behind the PNs (height ${active.health.height}, reference ${reference.height})`;
  else {
    const waitMs = Math.min(ctx.config.monitor.stallMs, timings.stallSampleMs);
    await ctx.ports.clock.sleep(waitMs, ctx.signal);
    const again = await probe(ctx.ports, t.cn, ctx.signal);
    const reference2 = await referenceHeight(ctx.ports, ctx.config, ctx.signal);
    if (!again.ok) verdict = `${t.cn.name} stopped answering (${again.reason})`;
    else if (again.health.height <= active.health.height && reference2.height > reference.height)
      verdict = `${t.cn.name} is stalled at height ${again.health.height} while the PNs moved to ${reference2.height}`;
  }
  if (verdict) ctx.output(`${verdict}: failing over to ${t.standby.name}`);
  else if (ctx.params.force)
    ctx.output(`${t.cn.name} looks healthy; --force given: this is a switchover to ${t.standby.name}`);
  else
    throw new SafetyGateError(
      `${t.cn.name} looks healthy (within ${lagBlocks} blocks of the PNs and advancing): not failing over. Use --force for a planned switchover.`,
    );
  return { reference, activeAnswers: active.ok };
}

/** 2. The standby is reachable, running and in sync. */
export async function checkStandbyReady(
  ctx: FailoverContext,
  ops: NodeOps,
  t: StandbyTarget,
  reference: ReferenceHeight,
): Promise<void> {
  const { lagBlocks } = ctx.config.monitor;
  const standbyActive = await mapHostError(
    () => ops.isActive(t.standby.host, t.standby.service),
    (error) =>
      new SafetyGateError(`The standby ${t.standby.name} cannot be reached over SSH: ${error.message}`),
  );
  if (!standbyActive)
    throw new SafetyGateError(
      `${t.standby.service} is not running on the standby ${t.standby.name}, so it has no fresh chaindata to take over with. Start it and let it sync, then start again.`,
    );
  const standby = await probe(ctx.ports, t.standby, ctx.signal);
  if (!standby.ok)
    throw new SafetyGateError(
      `The standby ${t.standby.name} does not report its height (${standby.reason}).`,
    );
  const standbyLag = lagOf(standby.health.height, reference.height);
  if (standbyLag > lagBlocks)
    throw new SafetyGateError(
      `The standby ${t.standby.name} is ${standbyLag} blocks behind the PNs (height ${standby.health.height}, reference ${reference.height}, threshold ${lagBlocks}): it would not take over in time. Let it sync, then start again.`,
    );
  ctx.output(
    `${t.standby.name}: kcnd active, height ${standby.health.height} (PNs ${reference.height}, ${reference.from.join(', ')})`,
  );
}

/** 3. The backup exists, is well formed, and is the failed CN's key. */
export async function checkBackupIdentity(
  ctx: FailoverContext,
  ops: NodeOps,
  t: StandbyTarget,
  activeAnswers: boolean,
): Promise<BackupIdentity> {
  const backup = await mapHostError(
    () => readBackupKeys(ops, t),
    (error) =>
      new SafetyGateError(
        `The nodekey backup host ${t.backupHost.name} cannot be reached over SSH: ${error.message}`,
      ),
  );
  const identity = {
    address: backup.address,
    nodeId: nodeIdFromKey(backup.key),
    checksum: backup.checksum,
  };
  const { address, checksum } = identity;
  const where = `${t.backupHost.name}:${t.backupPath}`;
  const recorded = await ctx.ports.state.nodekeyBackup(t.role);
  if (recorded && recorded.checksum !== checksum)
    throw new SafetyGateError(
      `The nodekey backup at ${where} is not the one recorded by run ${recorded.runId} (${shortChecksum(recorded.checksum)}, address ${recorded.nodeAddress}); it now holds address ${address}. Find out who changed it before going on.`,
    );
  if (!recorded)
    ctx.output(
      `no backup of ${t.cn.name} was recorded by cellops yet; relying on the file and on ${t.cn.name}'s own report`,
    );
  const activeAddress = activeAnswers
    ? await reportedAddress(ctx.ports, t.cn.endpoint, ctx.signal)
    : undefined;
  if (activeAddress !== undefined && !sameAddress(activeAddress, address))
    throw new SafetyGateError(
      `The nodekey backup at ${where} holds address ${address}, but ${t.cn.name} runs as ${activeAddress}: it is not ${t.role}'s key. Fix the backup before failing over.`,
    );
  await compareWithCnKeyFile(ctx, ops, t, address);
  await refuseIfRunningElsewhere(ctx, t, address);
  ctx.output(
    `backup of ${t.cn.name}: node address ${address}, node ID ${identity.nodeId.slice(0, 16)}…, ${shortChecksum(checksum)}`,
  );
  return identity;
}

/** A failed CN usually does not answer, so also compare with the key file it would load, when it can be read. */
async function compareWithCnKeyFile(
  ctx: FailoverContext,
  ops: NodeOps,
  t: StandbyTarget,
  address: string,
): Promise<void> {
  try {
    const path = await effectiveKeyPath(ops, t.cn);
    const fileAddress = await keyFileAddress(ops, t.cn.host, path);
    if (fileAddress !== undefined && !sameAddress(fileAddress, address))
      throw new SafetyGateError(
        `The nodekey backup at ${t.backupHost.name}:${t.backupPath} holds address ${address}, but ${t.cn.name}:${path} (the key its kcnd loads) holds ${fileAddress}: the backup is not ${t.role}'s key. Fix the backup before failing over.`,
      );
    if (fileAddress !== undefined) ctx.output(`${t.cn.name}:${path} holds the same key as the backup`);
  } catch (error) {
    if (error instanceof SafetyGateError || ctx.signal.aborted) throw error;
    ctx.output(`could not read ${t.cn.name}'s own key file to compare (${describeError(error)})`);
  }
}

/** The backup must not be the key of another node that runs now (a copy of the wrong CN's key). */
async function refuseIfRunningElsewhere(
  ctx: FailoverContext,
  t: StandbyTarget,
  address: string,
): Promise<void> {
  const others = Object.values(ctx.config.nodes).filter(
    (n) => n.role !== 'pn' && n.name !== t.cn.name && n.name !== t.standby.name,
  );
  const running = await Promise.all(others.map((n) => reportedAddress(ctx.ports, n.endpoint, ctx.signal)));
  others.forEach((other, i) => {
    const runs = running[i];
    if (runs !== undefined && sameAddress(runs, address))
      throw new SafetyGateError(
        `The nodekey backup at ${t.backupHost.name}:${t.backupPath} holds address ${address}, which ${other.name} runs right now: it is not ${t.role}'s key, and starting it on ${t.standby.name} would double-sign. Fix the backup before failing over.`,
      );
  });
}

/** 4. The standby runs its own key, and nothing at the legacy location would shadow the new one. */
export async function checkStandbyOwnKey(
  ctx: FailoverContext,
  ops: NodeOps,
  t: StandbyTarget,
  address: string,
): Promise<void> {
  await refuseLegacyKeys(ops, t.standby);
  const fileAddress = await keyFileAddress(ops, t.standby.host, nodeKeyPaths(t.standby.dataDir).nodekey);
  const runningAddress = await reportedAddress(ctx.ports, t.standby.endpoint, ctx.signal);
  for (const own of [fileAddress, runningAddress]) {
    if (own !== undefined && sameAddress(own, address))
      throw new SafetyGateError(
        `The standby ${t.standby.name} already runs ${t.role}'s key (address ${address}): two nodes with one nodekey double-sign. Give the standby its own key, then start again.`,
      );
  }
  const standbyAddress = runningAddress ?? fileAddress;
  if (standbyAddress !== undefined) ctx.setFact(STANDBY_FACTS.standbyAddress, standbyAddress.toLowerCase());
  ctx.output(`${t.standby.name} runs its own key (address ${standbyAddress ?? 'unknown'})`);
}

/** An Elastic IP needs an instance to associate it with. */
export function refuseEipWithoutInstance(t: StandbyTarget): void {
  if (t.failover.ip.method === 'eip' && !t.standby.instanceId)
    throw new SafetyGateError(
      `${t.cn.name} moves its IP as an Elastic IP, but the standby ${t.standby.name} has no instanceId to associate it with: set nodes.${t.standby.name}.instanceId.`,
    );
}

/**
 * The checks after the active was judged, shared by the failover's and the switchover's preflight: the
 * standby is ready, the backup is the CN's key and the standby runs its own, an Elastic IP has an
 * instance to go to. Records the CN's identity last: those facts are what `verify` reads as "preflight
 * passed".
 */
export async function checkStandbyTakeover(
  ctx: FailoverContext,
  ops: NodeOps,
  t: StandbyTarget,
  reference: ReferenceHeight,
  activeAnswers: boolean,
): Promise<void> {
  await checkStandbyReady(ctx, ops, t, reference);
  const identity = await checkBackupIdentity(ctx, ops, t, activeAnswers);
  await checkStandbyOwnKey(ctx, ops, t, identity.address);
  refuseEipWithoutInstance(t);
  ctx.setFact(STANDBY_FACTS.failedAddress, identity.address);
  ctx.setFact(STANDBY_FACTS.failedNodeId, identity.nodeId);
  ctx.setFact(STANDBY_FACTS.backupChecksum, identity.checksum);
}
