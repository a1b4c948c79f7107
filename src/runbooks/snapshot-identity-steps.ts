/**
 * The snapshot failover's steps that move the failed CN's identity (docs/runbooks.md §Snapshot failover,
 * `fence-failed-cn` to `verify`), in the order that keeps it on one machine at a time: the failed CN's
 * instance stopped and SEEN stopped before its key is written anywhere; the key installed only on a
 * replacement whose kcnd is stopped and disabled with no kcn running; the Elastic IP (and the PNs' private
 * address) moved; kcnd started only after an approval, and only while the old instance is still stopped; then
 * the strict verify both modes share.
 */
import { factOf, peekFactOf, requireFactOf } from './shaped-facts.js';
import type { FailoverContext, FailoverPlan, FailoverStep } from './failover-params.js';
import type { HostRef } from '../ports/shell.js';
import type { SnapshotFailoverTimings } from './failover-timings.js';
import { snapshotTargetOf } from './cell-nodes.js';
import { LINK_FACTS, movePrivateIp, movePrivateIpBack, privateIpMoved } from './cn-links.js';
import { confirmEipHolderStep, requireEipMovable, type EipMove } from './eip-holder.js';
import { SNAPSHOT_FACTS, requireFact } from './failover-facts.js';
import { peekSnapshotTarget, replacementWords, serviceWords } from './failover-plan-text.js';
import { daemonState, fenceFailedInstance, instanceGone, requireFailedInstanceStopped } from './fencing.js';
import { readBackupKeys } from './backup-keys.js';
import { blsBackupPath, nodeCommands, nodeKeyPaths, opsOf, type NodeOps } from './node-ops.js';
import { sameAddress } from './nodekey.js';
import { failedHostOf, replacementEndpoint, replacementOf } from './replacement.js';
import { replacementNode, requireReplacementQuiet } from './snapshot-data-steps.js';
import { installBackupKeys, refuseLegacyKeys, replacementKeyPaths } from './snapshot-keys.js';
import { describeVerify, takeoverHolds, verifyTakeover, type Takeover } from './verify-after-start.js';
import { SafetyGateError } from '../errors.js';

/** Where the installed key sits on the replacement (kcnd.conf's `--nodekey`, else klay/nodekey). */
const INSTALLED_KEY_FACT = 'installedKeyPath';

function failedInstanceWords(ctx: FailoverPlan): string {
  return (
    peekFactOf(ctx, SNAPSHOT_FACTS.failedInstanceId, 'instanceId') ??
    peekSnapshotTarget(ctx).cn?.instanceId ??
    `${ctx.params.cn}'s instance`
  );
}

export function fenceFailedCn(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'fence-failed-cn',
    title: 'Fence the failed CN: stop its instance and see it stopped',
    destructive: true,
    disturbs: (ctx) => [ctx.params.cn],
    timeoutMs: 2 * timings.instanceStoppedMs + 4 * timings.fenceSshMs + 60_000,
    describe: (ctx) => {
      const p = peekSnapshotTarget(ctx);
      const failedHost = peekFactOf(ctx, SNAPSHOT_FACTS.failedHost, 'host') ?? p.cn?.host.address ?? '?';
      return (
        `Before ${ctx.params.cn}'s nodekey is written anywhere. Best effort over SSH at ${ctx.params.cn} ${failedHost}: ${serviceWords(ctx, 'stop', p.cn?.service ?? 'kcnd')}, move aside the key file kcnd.conf's --nodekey names and ${p.dataDir}/klay/nodekey and ${p.dataDir}/nodekey, and \`${nodeCommands.processAlive('kcn')}\` must find nothing. ` +
        `Then EC2 StopInstances ${failedInstanceWords(ctx)} and wait until it is stopped (≤ ${Math.round(timings.instanceStoppedMs / 60_000)} min, then a forced stop); EC2 DescribeInstances must then say stopped. Never undone: the failed CN stays stopped.`
      );
    },
    run: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      await fenceFailedInstance(
        ctx,
        {
          instanceId: requireFactOf(ctx, SNAPSHOT_FACTS.failedInstanceId, 'instanceId'),
          host: failedHostOf(ctx),
          node: t.cn,
        },
        timings,
      );
    },
    verify: async (ctx) => {
      const failed = factOf(ctx, SNAPSHOT_FACTS.failedInstanceId, 'instanceId');
      return failed !== undefined && instanceGone((await ctx.ports.cloud.describeInstance(failed))?.state);
    },
  };
}

/**
 * Stops kcnd on the replacement (and disables it when asked) and sees no kcn left: kcn keeps a loaded key in
 * memory. Undefined when the run never got a replacement; throws when kcn still runs.
 */
async function stopReplacementKcnd(
  ctx: FailoverContext,
  timings: SnapshotFailoverTimings,
  disable: boolean,
): Promise<{ host: HostRef; ops: NodeOps } | undefined> {
  if (ctx.fact(SNAPSHOT_FACTS.privateIp) === undefined) return undefined;
  const t = snapshotTargetOf(ctx);
  const { host } = replacementOf(ctx);
  const ops = opsOf(ctx, timings.serviceStopMs);
  await ops.service(host, t.cn.service, 'stop');
  if (disable) await ops.service(host, t.cn.service, 'disable');
  if ((await daemonState(ops, replacementNode(ctx))) !== 'stopped')
    throw new SafetyGateError(
      `kcnd (or a kcn process) still runs on ${host.name} ${host.address} after stop: it may hold ${ctx.params.cn}'s key in memory. Stop it by hand (and remove the key files there).`,
    );
  ctx.output(
    `${t.cn.service} stopped${disable ? ' and disabled' : ''} on ${host.name} ${host.address}; no kcn left`,
  );
  return { host, ops };
}

export function installNodekey(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'install-nodekey',
    title: "Install the failed CN's nodekey on the replacement",
    destructive: true,
    timeoutMs: 10 * timings.commandMs,
    describe: (ctx) => {
      const p = peekSnapshotTarget(ctx);
      const backup = p.failover?.nodekeyBackup;
      const keys = nodeKeyPaths(p.dataDir);
      const address = ctx.fact<string>(SNAPSHOT_FACTS.failedAddress);
      const where = replacementWords(ctx);
      return (
        `Check first that ${failedInstanceWords(ctx)} is still stopped (EC2 DescribeInstances), and that on ${where} kcnd is inactive and \`${nodeCommands.processAlive('kcn')}\` finds nothing. ` +
        `Read the backup ${backup ? `${backup.host}:${backup.path}` : '(not configured)'} (never logged or posted) and check it again (64 hex characters, the preflight's checksum${address ? `, address ${address}` : ''}). ` +
        `Refuse if ${keys.legacyNodekey} or ${keys.legacyBlsNodekey} exists on ${where} (kcnd would load it instead). ` +
        `Write the key to ${keys.nodekey} (or the file the replacement's kcnd.conf names with --nodekey) with \`${nodeCommands.write(keys.nodekey)}\` (mode 0600, content through stdin) and verify its sha256. ` +
        `bls-nodekey: installed the same way from ${backup ? `${backup.host}:${blsBackupPath(backup.path)}` : 'the backup'} if that exists; otherwise none is left so kcnd derives it from the nodekey. ` +
        `Undo: stop kcnd there, check no kcn runs, then remove the key files.`
      );
    },
    run: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      const { host } = replacementOf(ctx);
      const o = opsOf(ctx);
      await requireFailedInstanceStopped(
        ctx,
        requireFactOf(ctx, SNAPSHOT_FACTS.failedInstanceId, 'instanceId'),
      );
      await requireReplacementQuiet(ctx, replacementNode(ctx));
      await refuseLegacyKeys(o, host, t.cn.dataDir);
      const backup = await readBackupKeys(o, t);
      if (
        backup.checksum !== requireFact<string>(ctx, SNAPSHOT_FACTS.backupChecksum) ||
        !sameAddress(backup.address, requireFact<string>(ctx, SNAPSHOT_FACTS.failedAddress))
      )
        throw new SafetyGateError(
          `the nodekey backup ${t.backupHost.name}:${t.backupPath} changed since the preflight; abort and start again`,
        );
      const keys = await replacementKeyPaths(o, host, t.cn.dataDir);
      ctx.setFact(INSTALLED_KEY_FACT, keys.nodekey);
      await installBackupKeys(ctx, o, host, keys, backup);
    },
    verify: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      if (ctx.fact(SNAPSHOT_FACTS.privateIp) === undefined) return false;
      const { host } = replacementOf(ctx);
      const o = opsOf(ctx);
      const keys = nodeKeyPaths(t.cn.dataDir);
      if ((await o.exists(host, keys.legacyNodekey)) || (await o.exists(host, keys.legacyBlsNodekey)))
        return false;
      const path = ctx.fact<string>(INSTALLED_KEY_FACT) ?? keys.nodekey;
      return (await o.sha256(host, path)) === ctx.fact<string>(SNAPSHOT_FACTS.backupChecksum);
    },
    // The replacement must not keep an identity it is not going to serve; kcn keeps a loaded key in
    // memory, so it is stopped (and seen stopped) before the files go.
    undo: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      const stopped = await stopReplacementKcnd(ctx, timings, false);
      if (!stopped) return;
      const { host, ops: o } = stopped;
      const keys = nodeKeyPaths(t.cn.dataDir);
      const installed = ctx.fact<string>(INSTALLED_KEY_FACT) ?? keys.nodekey;
      for (const path of new Set([installed, keys.nodekey, keys.blsNodekey]))
        await o.remove(host, path, t.cn.dataDir);
      ctx.output(`kcnd stopped on ${host.name} ${host.address}; removed ${installed} and ${keys.blsNodekey}`);
    },
  };
}

/** The Elastic IP's move for the confirmation step: from the failed instance to the replacement. */
function eipMoveOf(ctx: FailoverPlan): EipMove | undefined {
  const allocationId = peekSnapshotTarget(ctx).allocationId;
  if (allocationId === undefined) return undefined;
  const failed = factOf(ctx, SNAPSHOT_FACTS.failedInstanceId, 'instanceId');
  const taker = factOf(ctx, SNAPSHOT_FACTS.instanceId, 'instanceId');
  return {
    allocationId,
    ...(failed === undefined ? {} : { failedInstanceId: failed }),
    ...(taker === undefined ? {} : { takerInstanceId: taker }),
  };
}

export const confirmEipHolder: FailoverStep = confirmEipHolderStep(eipMoveOf);

export const moveIp: FailoverStep = {
  id: 'move-ip',
  title: "Move the failed CN's Elastic IP (and private IP) to the replacement",
  destructive: true,
  describe: (ctx) => {
    const p = peekSnapshotTarget(ctx);
    const priv = p.failover?.privateIp;
    const links = ctx.fact<string>(LINK_FACTS.pnLinks);
    return [
      `Check that Elastic IP ${p.allocationId ?? '(eip not configured)'} is held by ${failedInstanceWords(ctx)}, by nothing, or by an instance an approver confirmed; then EC2 AssociateAddress ${p.allocationId ?? ''} → ${replacementWords(ctx)} with AllowReassociation.`,
      priv
        ? `Then the private IP the PNs dial: EC2 UnassignPrivateIpAddresses ${priv.address} from ${failedInstanceWords(ctx)}'s interface, AssignPrivateIpAddresses (AllowReassignment) to the replacement's, and \`${nodeCommands.ipAddr('add', priv.address, priv.device)}\` there.`
        : `No private IP moves (nodes.${ctx.params.cn}.failover.privateIp is not set): PNs that dial ${ctx.params.cn}'s private address cannot reach the replacement.`,
      `The PNs dial ${ctx.params.cn} at: ${links ?? 'read from their static-nodes.json in the preflight'}.`,
      `Undo: the Elastic IP (and private IP) back where they were; the failed CN stays stopped.`,
    ].join('\n');
  },
  run: async (ctx) => {
    const t = snapshotTargetOf(ctx);
    const replacement = replacementOf(ctx);
    const failedInstanceId = requireFactOf(ctx, SNAPSHOT_FACTS.failedInstanceId, 'instanceId');
    const before = await requireEipMovable(ctx, {
      allocationId: t.allocationId,
      failedInstanceId,
      takerInstanceId: replacement.instanceId,
    });
    if (before.instanceId !== undefined && before.instanceId !== replacement.instanceId)
      ctx.setFact(SNAPSHOT_FACTS.ipPreviousInstance, before.instanceId);
    const { associationId } = await ctx.ports.cloud.associateAddress(t.allocationId, replacement.instanceId);
    ctx.output(
      `Elastic IP ${t.allocationId} (${before.publicIp ?? '?'}) moved from ${before.instanceId ?? 'no instance'} to ${replacement.instanceId}${associationId ? ` (${associationId})` : ''}`,
    );
    await movePrivateIp(ctx, opsOf(ctx), t, failedInstanceId, replacement);
  },
  verify: async (ctx) => {
    const t = snapshotTargetOf(ctx);
    const instanceId = factOf(ctx, SNAPSHOT_FACTS.instanceId, 'instanceId');
    if (instanceId === undefined || ctx.fact(SNAPSHOT_FACTS.privateIp) === undefined) return false;
    if ((await ctx.ports.cloud.describeAddress(t.allocationId))?.instanceId !== instanceId) return false;
    return privateIpMoved(ctx, opsOf(ctx), t, replacementOf(ctx));
  },
  // The addresses go back to where they were; the failed CN stays stopped (fencing is never undone).
  undo: async (ctx) => {
    const t = snapshotTargetOf(ctx);
    const host = ctx.fact(SNAPSHOT_FACTS.privateIp) === undefined ? undefined : replacementOf(ctx).host;
    await movePrivateIpBack(ctx, opsOf(ctx), t, host);
    const previous = factOf(ctx, SNAPSHOT_FACTS.ipPreviousInstance, 'instanceId');
    if (previous === undefined) {
      ctx.output(`Elastic IP ${t.allocationId} had no previous instance; left on the replacement`);
      return;
    }
    await ctx.ports.cloud.associateAddress(t.allocationId, previous);
    ctx.output(`Elastic IP ${t.allocationId} moved back to ${previous} (which stays stopped)`);
  },
};

export function startKcnd(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'start-kcnd',
    title: "Start kcnd on the replacement with the failed CN's identity",
    destructive: true,
    timeoutMs: 3 * timings.commandMs + 60_000,
    describe: (ctx) => {
      const service = peekSnapshotTarget(ctx).cn?.service ?? 'kcnd';
      return (
        `Check that ${failedInstanceWords(ctx)} is still stopped and that the replacement holds exactly the backup key; then run ${serviceWords(ctx, 'enable', service)} and ${serviceWords(ctx, 'start', service)} on ${replacementWords(ctx)}: it starts as ${ctx.params.cn} (${ctx.fact<string>(SNAPSHOT_FACTS.failedAddress) ?? "the failed CN's address"}). ` +
        `Undo: ${serviceWords(ctx, 'stop', service)} and ${serviceWords(ctx, 'disable', service)} there.`
      );
    },
    run: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      await requireFailedInstanceStopped(
        ctx,
        requireFactOf(ctx, SNAPSHOT_FACTS.failedInstanceId, 'instanceId'),
      );
      const { host } = replacementOf(ctx);
      const o = opsOf(ctx);
      const path = ctx.fact<string>(INSTALLED_KEY_FACT) ?? nodeKeyPaths(t.cn.dataDir).nodekey;
      if ((await o.sha256(host, path)) !== requireFact<string>(ctx, SNAPSHOT_FACTS.backupChecksum))
        throw new SafetyGateError(
          `${host.name}:${path} is not ${ctx.params.cn}'s backup key any more. Not starting; resume from "Install the failed CN's nodekey on the replacement".`,
        );
      await o.service(host, t.cn.service, 'enable');
      await o.service(host, t.cn.service, 'start');
      ctx.output(`${t.cn.service} enabled and started on ${host.name} ${host.address}`);
    },
    verify: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      if (ctx.fact(SNAPSHOT_FACTS.privateIp) === undefined) return false;
      return opsOf(ctx).isActive(replacementOf(ctx).host, t.cn.service);
    },
    undo: async (ctx) => {
      await stopReplacementKcnd(ctx, timings, true);
    },
  };
}

/** The replacement, as Verify reaches it (undefined before it is launched). */
function replacementTakeover(ctx: FailoverPlan): Takeover | undefined {
  const ip = ctx.fact<string>(SNAPSHOT_FACTS.privateIp);
  const cn = ctx.config.nodes[ctx.params.cn];
  if (ip === undefined || !cn) return undefined;
  // The pinned host keys travel with the endpoint: verify's IPC reads (`kcn attach` over SSH) must be
  // refused by any other key, like every other command on the replacement.
  const endpoint = replacementEndpoint(cn, ip, ctx.fact<readonly string[]>(SNAPSHOT_FACTS.hostKeys));
  return { cn: cn.name, name: endpoint.name, host: endpoint.host, service: cn.service, endpoint };
}

export function verify(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'verify',
    title: "Verify the replacement serves the failed CN's identity, in sync and signing",
    destructive: false,
    timeoutMs: timings.catchUpMs + 2 * 60_000,
    describe: (ctx) =>
      `A volume restored from a snapshot loads lazily, so it lags at first. ` +
      describeVerify(
        ctx,
        replacementTakeover(ctx) ?? { name: replacementWords(ctx) },
        timings.catchUpMs,
        ctx.fact<string>(SNAPSHOT_FACTS.failedAddress) ?? "the failed CN's",
      ),
    run: async (ctx) => {
      const takeover = replacementTakeover(ctx);
      if (!takeover) throw new SafetyGateError(`run ${ctx.runId} has no replacement to verify`);
      await verifyTakeover(
        ctx,
        takeover,
        requireFact<string>(ctx, SNAPSHOT_FACTS.failedAddress),
        timings.catchUpMs,
      );
    },
    verify: async (ctx) => {
      const takeover = replacementTakeover(ctx);
      const address = ctx.fact<string>(SNAPSHOT_FACTS.failedAddress);
      return takeover !== undefined && address !== undefined && takeoverHolds(ctx, takeover, address);
    },
  };
}
