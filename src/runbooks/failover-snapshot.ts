/**
 * `failover` in mode `snapshot` (DESIGN.md §2.2; the "Machine Image & Snapshot" procedure of the Kaia HA
 * guide): replace a failed CN on EC2 with a new instance launched from the CN's machine image and a data
 * volume restored from a PN's chaindata snapshot, then give it the failed CN's nodekey and Elastic IP.
 *
 * Shape of the run, and why:
 * - `stop-pn` → `snapshot`: kpnd is stopped for data consistency (the guide insists) and started again as
 *   soon as CreateSnapshot has returned: an EBS snapshot is point-in-time at creation, so the PN need not
 *   stay down while the snapshot's blocks are copied.
 * - `launch` runs right after and does not wait for the snapshot: the snapshot completes inside EBS while
 *   the instance boots and becomes reachable. Only `attach-volume` waits for completion, because a volume
 *   can only be created from a completed snapshot. Neither step is approval-gated, so nothing holds the
 *   launch back once the PN is running again. (Steps run one after another in the engine; the parallelism
 *   is EBS's background copy overlapping our launch, which is where the time goes.)
 * - Nothing cellops creates is deleted automatically. A launched instance, a snapshot and a volume are
 *   tagged `cellops:run-id`; when a step fails, its error and output list what the run left so that an
 *   operator decides (a half-prepared replacement is often what one wants to inspect). The port has no
 *   terminate or delete call on purpose.
 * - Undo exists where it restores the cell: kpnd started again on the PN, the installed nodekey removed
 *   from the replacement, the Elastic IP moved back, kcnd stopped on the replacement. Fencing is never
 *   undone: the failed CN stays stopped.
 * - Facts are a cache: each cloud resource is found again by its run-id tag when a crash lost the fact, so
 *   a resumed run never creates a second snapshot, instance or volume.
 */
import type { FailoverContext, FailoverStep } from './failover-params.js';
import { RUN_ID_TAG } from '../ports/cloud.js';
import { pnReferenceHeight, snapshotTargetOf } from './cell-nodes.js';
import { listingLeftovers } from './cloud-leftovers.js';
import { SNAPSHOT_FACTS, requireFact } from './failover-facts.js';
import { peekSnapshotTarget, pnWords, replacementWords, serviceWords } from './failover-plan-text.js';
import {
  DEFAULT_SNAPSHOT_TIMINGS,
  type FailoverOptions,
  type SnapshotFailoverTimings,
} from './failover-timings.js';
import { fenceFailedInstance, instanceGone } from './fencing.js';
import { blsBackupPath, nodeCommands, nodeKeyPaths, opsOf } from './node-ops.js';
import { sameAddress } from './nodekey.js';
import { replacementHost, replacementOf, waitForSsh } from './replacement.js';
import { dataVolumeOf, runResource, runTags } from './run-resources.js';
import {
  checkBackup,
  checkEip,
  checkImage,
  choosePn,
  locateFailedCn,
  pnOf,
  refuseIfHealthy,
} from './snapshot-preflight.js';
import { installBackupKeys, readBackup, refuseLegacyKeys } from './snapshot-keys.js';
import {
  KCND_CONF,
  confDataDir,
  dataLayout,
  keepOnlyChaindata,
  mountDataVolume,
  opsContextOf,
  ping,
  setConfDataDir,
} from './snapshot-ops.js';
import { observe, reportSigning, reportTimeToRecover, waitInSync } from './snapshot-verify.js';
import { CellopsError, SafetyGateError } from '../errors.js';
import { factOf, peekFactOf, requireFactOf } from './shaped-facts.js';

/** The steps of DESIGN.md §2.2, in order; every step after the preflight lists what a failure left. */
export function snapshotFailoverSteps(
  options: FailoverOptions<SnapshotFailoverTimings> = {},
): FailoverStep[] {
  const timings: SnapshotFailoverTimings = { ...DEFAULT_SNAPSHOT_TIMINGS, ...options.timings };
  return [
    preflight(timings),
    ...[
      stopPn(timings),
      snapshot,
      launch(timings),
      attachVolume(timings),
      prepareData(timings),
      installNodekey(timings),
      fenceAndMoveIp(timings),
      startKcnd(timings),
      verify(timings),
      record,
    ].map(listingLeftovers),
  ];
}

function preflight(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'preflight',
    title: 'Preflight: image, nodekey backup, a healthy PN to snapshot',
    readOnly: true,
    destructive: false,
    timeoutMs: 2 * 60_000 + 4 * timings.probeMs,
    describe: (ctx) => {
      const p = peekSnapshotTarget(ctx);
      const backup = p.failover?.nodekeyBackup;
      return (
        `Read-only. Check that a CN machine image is recorded (${p.failover?.imageId ?? `latest recorded by \`/cell image ${ctx.params.cn}\``}, EC2 DescribeImages: available); ` +
        `that the nodekey backup ${backup ? `${backup.path} on ${backup.host}` : '(not configured)'} exists, is 64 hex characters and matches its recorded checksum and node address; ` +
        `that one of ${p.snapshotFrom.join(', ') || '(no snapshotFrom)'} is healthy and has a known data volume (warn if stopping it leaves no healthy PN); ` +
        `that ${ctx.params.cn} is really unhealthy${ctx.params.force ? ' (skipped: --force)' : ''}, has an instance to fence, and Elastic IP ${p.allocationId ?? '(not configured)'} exists.`
      );
    },
    run: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      ctx.setFact(SNAPSHOT_FACTS.startedAt, ctx.ports.clock.now());
      const failedHost = await locateFailedCn(ctx, t);
      const { height, heights } = await pnReferenceHeight(ctx.ports, ctx.config, {
        timeoutMs: timings.probeMs,
        signal: ctx.signal,
      });
      if (height === undefined)
        throw new SafetyGateError(
          `no PN of the cell answers its metrics/RPC: there is no chaindata to snapshot`,
        );
      await refuseIfHealthy(ctx, t, failedHost, { height, heights }, timings);
      await checkImage(ctx, t);
      await checkBackup(ctx, t);
      choosePn(ctx, t, { height, heights });
      await checkEip(ctx, t);
    },
    verify: (ctx) =>
      Promise.resolve(
        [
          SNAPSHOT_FACTS.imageId,
          SNAPSHOT_FACTS.pn,
          SNAPSHOT_FACTS.pnVolumeId,
          SNAPSHOT_FACTS.failedAddress,
          SNAPSHOT_FACTS.failedInstanceId,
        ].every((k) => ctx.fact(k) !== undefined),
      ),
  };
}

const STOP_PN_TITLE = 'Stop kpnd on the PN to snapshot';

function stopPn(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'stop-pn',
    title: STOP_PN_TITLE,
    destructive: true,
    timeoutMs: timings.serviceStopMs + 30_000,
    describe: (ctx) => {
      const pn = pnWords(ctx);
      return `Run ${serviceWords(ctx, 'stop', pn.service)} on ${pn.host}, so that its data volume is consistent for the snapshot (the HA guide insists). It is started again as soon as the snapshot has started.`;
    },
    run: async (ctx) => {
      const pn = pnOf(ctx);
      await opsOf(ctx, timings.serviceStopMs).service(pn.host, pn.service, 'stop');
      ctx.setFact(SNAPSHOT_FACTS.pnStoppedAt, ctx.ports.clock.now());
      ctx.output(`${pn.service} stopped on ${pn.name}`);
    },
    verify: async (ctx) => {
      const pn = pnOf(ctx);
      return !(await opsOf(ctx).isActive(pn.host, pn.service));
    },
    undo: async (ctx) => {
      const pn = pnOf(ctx);
      await opsOf(ctx).service(pn.host, pn.service, 'start');
      ctx.output(`${pn.service} started again on ${pn.name}`);
    },
  };
}

const snapshot: FailoverStep = {
  id: 'snapshot',
  title: "Snapshot the PN's data volume, then start kpnd again",
  destructive: false,
  timeoutMs: 5 * 60_000,
  describe: (ctx) => {
    const pn = pnWords(ctx);
    const volume = peekFactOf(ctx, SNAPSHOT_FACTS.pnVolumeId, 'volumeId') ?? `${pn.name}'s dataVolumeId`;
    return `EC2 CreateSnapshot of ${volume} (${pn.name}'s DATA_DIR) tagged ${RUN_ID_TAG}; as soon as it has started (EBS snapshots are point-in-time at creation) run ${serviceWords(ctx, 'start', pn.service)} on ${pn.host}. The snapshot completes in the background while the replacement launches.`;
  },
  run: async (ctx) => {
    const pn = pnOf(ctx);
    let snapshotId = await runResource(ctx, 'snapshot', SNAPSHOT_FACTS.snapshotId);
    if (snapshotId === undefined) {
      // A snapshot of a running PN is not consistent: if kpnd came back (someone started it), stop here.
      if (await opsOf(ctx).isActive(pn.host, pn.service))
        throw new SafetyGateError(
          `${pn.service} is running again on ${pn.name}; a snapshot now would not be consistent. Abort, or resume from "${STOP_PN_TITLE}"`,
        );
      const volumeId = requireFactOf(ctx, SNAPSHOT_FACTS.pnVolumeId, 'volumeId');
      ({ snapshotId } = await ctx.ports.cloud.createSnapshot(
        volumeId,
        `cellops ${ctx.config.cell} failover of ${ctx.params.cn}: chaindata of ${pn.name} (run ${ctx.runId})`,
        runTags(ctx, `${ctx.params.cn}-chaindata-${pn.name}`),
      ));
      ctx.setFact(SNAPSHOT_FACTS.snapshotId, snapshotId);
    }
    const state = await ctx.ports.cloud.describeSnapshot(snapshotId);
    ctx.output(
      `snapshot ${snapshotId} started (${state?.state ?? 'unknown'}${state?.progress ? ` ${state.progress}` : ''})`,
    );
    await opsOf(ctx).service(pn.host, pn.service, 'start');
    const stoppedAt = ctx.fact<number>(SNAPSHOT_FACTS.pnStoppedAt);
    ctx.output(
      `${pn.service} started again on ${pn.name}${stoppedAt === undefined ? '' : ` after ${Math.round((ctx.ports.clock.now() - stoppedAt) / 1000)} s down`}`,
    );
  },
  verify: async (ctx) => {
    const snapshotId = await runResource(ctx, 'snapshot', SNAPSHOT_FACTS.snapshotId);
    if (snapshotId === undefined) return false;
    const state = await ctx.ports.cloud.describeSnapshot(snapshotId);
    if (!state || state.state === 'error') return false;
    const pn = pnOf(ctx);
    return opsOf(ctx).isActive(pn.host, pn.service);
  },
};

function launch(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'launch',
    title: 'Launch the replacement from the CN image',
    destructive: false,
    timeoutMs: timings.instanceRunningMs + timings.sshReadyMs + 60_000,
    describe: (ctx) => {
      const p = peekSnapshotTarget(ctx);
      const l = p.launch;
      const image =
        peekFactOf(ctx, SNAPSHOT_FACTS.imageId, 'imageId') ??
        p.failover?.imageId ??
        'the latest recorded image';
      return (
        `EC2 RunInstances from ${image}` +
        (l
          ? ` (${l.instanceType}, ${l.subnetId}, security groups ${l.securityGroupIds.join(', ')}${l.keyName ? `, key pair ${l.keyName}` : ''})`
          : ' (nodes.<cn>.failover.launch is not configured)') +
        ` tagged ${RUN_ID_TAG}; wait until it is running (≤ ${Math.round(timings.instanceRunningMs / 60_000)} min) and answers SSH at its private IP (≤ ${Math.round(timings.sshReadyMs / 60_000)} min). Does not wait for the snapshot, which completes meanwhile.`
      );
    },
    run: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      const { cloud } = ctx.ports;
      let instanceId = await runResource(ctx, 'instance', SNAPSHOT_FACTS.instanceId);
      if (instanceId === undefined) {
        const info = await cloud.runInstance({
          imageId: requireFactOf(ctx, SNAPSHOT_FACTS.imageId, 'imageId'),
          instanceType: t.launch.instanceType,
          subnetId: t.launch.subnetId,
          securityGroupIds: t.launch.securityGroupIds,
          ...(t.launch.keyName === undefined ? {} : { keyName: t.launch.keyName }),
          tags: runTags(ctx, `${ctx.params.cn}-replacement`),
          // A RunInstances retried after a timeout or a crash returns the instance already launched.
          clientToken: `${ctx.runId}:launch`.slice(-64),
        });
        instanceId = info.instanceId;
        ctx.setFact(SNAPSHOT_FACTS.instanceId, instanceId);
        ctx.output(`launched ${instanceId} in ${info.availabilityZone}`);
      }
      const running = await cloud.waitInstanceRunning(instanceId, {
        timeoutMs: timings.instanceRunningMs,
        signal: ctx.signal,
      });
      if (running.privateIp === undefined)
        throw new CellopsError('no_private_ip', `instance ${instanceId} is running but has no private IP`);
      ctx.setFact(SNAPSHOT_FACTS.privateIp, running.privateIp);
      ctx.setFact(SNAPSHOT_FACTS.availabilityZone, running.availabilityZone);
      ctx.output(`${instanceId} is running at ${running.privateIp} in ${running.availabilityZone}`);
      await waitForSsh(ctx, replacementHost(ctx.params.cn, running.privateIp), instanceId, timings);
    },
    verify: async (ctx) => {
      const instanceId = await runResource(ctx, 'instance', SNAPSHOT_FACTS.instanceId);
      if (instanceId === undefined) return false;
      const info = await ctx.ports.cloud.describeInstance(instanceId);
      if (info?.state !== 'running' || info.privateIp === undefined) return false;
      ctx.setFact(SNAPSHOT_FACTS.privateIp, info.privateIp);
      ctx.setFact(SNAPSHOT_FACTS.availabilityZone, info.availabilityZone);
      try {
        await ping(
          opsContextOf(ctx, timings.commandMs),
          replacementHost(ctx.params.cn, info.privateIp),
          timings.probeMs,
        );
        return true;
      } catch {
        return false;
      }
    },
  };
}

function attachVolume(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'attach-volume',
    title: 'Create the chaindata volume from the snapshot and attach it',
    destructive: false,
    timeoutMs: timings.snapshotCompletedMs + 2 * timings.volumeMs + 60_000,
    describe: (ctx) => {
      const snap = peekFactOf(ctx, SNAPSHOT_FACTS.snapshotId, 'snapshotId') ?? "the run's snapshot";
      const az =
        peekFactOf(ctx, SNAPSHOT_FACTS.availabilityZone, 'availabilityZone') ??
        "the replacement's availability zone";
      const device = peekSnapshotTarget(ctx).launch?.dataDevice ?? '/dev/sdf';
      return `Wait until ${snap} is completed (≤ ${Math.round(timings.snapshotCompletedMs / 3_600_000)} h), EC2 CreateVolume from it in ${az} tagged ${RUN_ID_TAG}, wait until available, then EC2 AttachVolume to ${replacementWords(ctx)} as ${device} and wait until in-use.`;
    },
    run: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      const { cloud } = ctx.ports;
      const { instanceId } = replacementOf(ctx);
      const snapshotId = await runResource(ctx, 'snapshot', SNAPSHOT_FACTS.snapshotId);
      if (snapshotId === undefined)
        throw new CellopsError('missing_fact', `run ${ctx.runId} has no snapshot`);
      await cloud.waitSnapshotCompleted(snapshotId, {
        timeoutMs: timings.snapshotCompletedMs,
        signal: ctx.signal,
      });
      ctx.output(`snapshot ${snapshotId} completed`);
      let volumeId = await dataVolumeOf(ctx, SNAPSHOT_FACTS.volumeId, instanceId, t.launch.dataDevice);
      if (volumeId === undefined) {
        ({ volumeId } = await cloud.createVolume(
          snapshotId,
          requireFactOf(ctx, SNAPSHOT_FACTS.availabilityZone, 'availabilityZone'),
          runTags(ctx, `${ctx.params.cn}-data`),
        ));
        ctx.setFact(SNAPSHOT_FACTS.volumeId, volumeId);
        ctx.output(`created ${volumeId} from ${snapshotId}`);
      }
      const attached = await cloud.describeInstanceVolumes(instanceId);
      if (!attached.some((v) => v.volumeId === volumeId)) {
        await cloud.waitVolumeAvailable(volumeId, { timeoutMs: timings.volumeMs, signal: ctx.signal });
        await cloud.attachVolume(volumeId, instanceId, t.launch.dataDevice);
      }
      await cloud.waitVolumeInUse(volumeId, { timeoutMs: timings.volumeMs, signal: ctx.signal });
      ctx.output(`${volumeId} attached to ${instanceId} as ${t.launch.dataDevice}`);
    },
    verify: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      const instanceId = factOf(ctx, SNAPSHOT_FACTS.instanceId, 'instanceId');
      if (instanceId === undefined) return false;
      const volumeId = await dataVolumeOf(ctx, SNAPSHOT_FACTS.volumeId, instanceId, t.launch.dataDevice);
      if (volumeId === undefined) return false;
      return (await ctx.ports.cloud.describeInstanceVolumes(instanceId)).some((v) => v.volumeId === volumeId);
    },
  };
}

function prepareData(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'prepare-data',
    title: 'Mount the volume and keep only klay/chaindata',
    destructive: true,
    timeoutMs: timings.cleanMs + 3 * timings.commandMs,
    describe: (ctx) => {
      const p = peekSnapshotTarget(ctx);
      const volume = peekFactOf(ctx, SNAPSHOT_FACTS.volumeId, 'volumeId') ?? 'the restored volume';
      return (
        `On ${replacementWords(ctx)}: run ${serviceWords(ctx, 'stop', p.cn?.service ?? 'kcnd')} (the image may start kcnd at boot); ` +
        `mount ${volume} (${p.launch?.dataDevice ?? '/dev/sdf'} or its NVMe name) at ${p.dataDir} and record it in /etc/fstab (nofail); ` +
        `DELETE everything on it except klay/chaindata (moved to ${p.dataDir}/klay/chaindata if the PN kept it deeper; lost+found stays), including the PN's nodekey; ` +
        `set DATA_DIR=${p.dataDir} in ${KCND_CONF} (original kept as ${KCND_CONF}.cellops-orig).`
      );
    },
    run: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      const { host } = replacementOf(ctx);
      const o = opsContextOf(ctx, timings.commandMs);
      await opsOf(ctx, timings.serviceStopMs).service(host, t.cn.service, 'stop');
      const volumeId = requireFactOf(ctx, SNAPSHOT_FACTS.volumeId, 'volumeId');
      ctx.output(await mountDataVolume(o, host, volumeId, t.launch.dataDevice, t.cn.dataDir));
      for (const line of await keepOnlyChaindata(
        { ...o, commandTimeoutMs: timings.cleanMs },
        host,
        t.cn.dataDir,
      ))
        ctx.output(line);
      const conf = await setConfDataDir(o, host, t.cn.dataDir);
      ctx.output(
        conf.changed
          ? `DATA_DIR in ${KCND_CONF} changed from ${conf.previous ?? '(unset)'} to ${t.cn.dataDir}`
          : `DATA_DIR in ${KCND_CONF} already is ${t.cn.dataDir}`,
      );
    },
    verify: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      if (ctx.fact(SNAPSHOT_FACTS.privateIp) === undefined) return false;
      const { host } = replacementOf(ctx);
      const layout = await dataLayout(opsContextOf(ctx, timings.commandMs), host, t.cn.dataDir);
      if (
        !layout.mounted ||
        !layout.hasChaindata ||
        layout.strayTop.length > 0 ||
        layout.strayKlay.length > 0
      )
        return false;
      if (confDataDir((await opsOf(ctx).readFile(host, KCND_CONF)) ?? '') !== t.cn.dataDir) return false;
      return !(await opsOf(ctx).isActive(host, t.cn.service));
    },
  };
}

function installNodekey(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'install-nodekey',
    title: "Install the failed CN's nodekey on the replacement",
    destructive: true,
    timeoutMs: 8 * timings.commandMs,
    describe: (ctx) => {
      const p = peekSnapshotTarget(ctx);
      const backup = p.failover?.nodekeyBackup;
      const keys = nodeKeyPaths(p.dataDir);
      const address = ctx.fact<string>(SNAPSHOT_FACTS.failedAddress);
      const where = replacementWords(ctx);
      return (
        `Read the backup ${backup ? `${backup.host}:${backup.path}` : '(not configured)'} (never logged or posted) and check it again (64 hex characters, the preflight's checksum${address ? `, address ${address}` : ''}). ` +
        `Refuse if ${keys.legacyNodekey} or ${keys.legacyBlsNodekey} exists on ${where} (kcnd would load it instead). ` +
        `Write the key to ${keys.nodekey} with \`${nodeCommands.write(keys.nodekey)}\` (mode 0600, content through stdin) and verify its sha256. ` +
        `bls-nodekey: installed the same way from ${backup ? `${backup.host}:${blsBackupPath(backup.path)}` : 'the backup'} if that exists; otherwise none is left so kcnd derives it from the nodekey.`
      );
    },
    run: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      const { host } = replacementOf(ctx);
      const o = opsOf(ctx);
      await refuseLegacyKeys(o, host, t.cn.dataDir);
      const backup = await readBackup(ctx, t);
      if (
        backup.checksum !== requireFact<string>(ctx, SNAPSHOT_FACTS.backupChecksum) ||
        !sameAddress(backup.address, requireFact<string>(ctx, SNAPSHOT_FACTS.failedAddress))
      )
        throw new SafetyGateError(
          `the nodekey backup ${t.backupHost.name}:${t.backupPath} changed since the preflight; abort and start again`,
        );
      await installBackupKeys(ctx, o, host, t.cn.dataDir, backup);
    },
    verify: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      if (ctx.fact(SNAPSHOT_FACTS.privateIp) === undefined) return false;
      const { host } = replacementOf(ctx);
      const o = opsOf(ctx);
      const keys = nodeKeyPaths(t.cn.dataDir);
      if ((await o.exists(host, keys.legacyNodekey)) || (await o.exists(host, keys.legacyBlsNodekey)))
        return false;
      return (await o.sha256(host, keys.nodekey)) === ctx.fact<string>(SNAPSHOT_FACTS.backupChecksum);
    },
    // The replacement must not keep an identity it is not going to serve.
    undo: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      const { host } = replacementOf(ctx);
      const keys = nodeKeyPaths(t.cn.dataDir);
      const o = opsOf(ctx);
      await o.remove(host, keys.nodekey);
      await o.remove(host, keys.blsNodekey);
      ctx.output(`removed ${keys.nodekey} and ${keys.blsNodekey} from ${host.name} ${host.address}`);
    },
  };
}

function fenceAndMoveIp(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'fence-and-move-ip',
    title: "Fence the failed CN's instance, then move its Elastic IP",
    destructive: true,
    timeoutMs: 2 * timings.instanceStoppedMs + 2 * timings.fenceSshMs + 60_000,
    describe: (ctx) => {
      const p = peekSnapshotTarget(ctx);
      const failed =
        peekFactOf(ctx, SNAPSHOT_FACTS.failedInstanceId, 'instanceId') ??
        p.cn?.instanceId ??
        `${ctx.params.cn}'s instance`;
      const failedHost = ctx.fact<string>(SNAPSHOT_FACTS.failedHost) ?? p.cn?.host.address ?? '?';
      return (
        `Best effort over SSH at ${ctx.params.cn} ${failedHost}: ${serviceWords(ctx, 'stop', p.cn?.service ?? 'kcnd')} and move ${p.dataDir}/klay/nodekey and ${p.dataDir}/nodekey aside. ` +
        `Then EC2 StopInstances ${failed} and wait until stopped (≤ ${Math.round(timings.instanceStoppedMs / 60_000)} min, then a forced stop). ` +
        `Only then EC2 AssociateAddress ${p.allocationId ?? '(eip not configured)'} → ${replacementWords(ctx)} with AllowReassociation.`
      );
    },
    run: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      const { cloud } = ctx.ports;
      const failedInstanceId = requireFactOf(ctx, SNAPSHOT_FACTS.failedInstanceId, 'instanceId');
      const failedHost = {
        name: ctx.params.cn,
        address: requireFactOf(ctx, SNAPSHOT_FACTS.failedHost, 'host'),
      };
      const { instanceId } = replacementOf(ctx);
      await fenceFailedInstance(ctx, { instanceId: failedInstanceId, host: failedHost, node: t.cn }, timings);

      const before = await cloud.describeAddress(t.allocationId);
      if (before?.instanceId !== undefined && before.instanceId !== instanceId)
        ctx.setFact(SNAPSHOT_FACTS.ipPreviousInstance, before.instanceId);
      const { associationId } = await cloud.associateAddress(t.allocationId, instanceId);
      ctx.output(
        `Elastic IP ${t.allocationId} (${before?.publicIp ?? '?'}) moved from ${before?.instanceId ?? 'no instance'} to ${instanceId}${associationId ? ` (${associationId})` : ''}`,
      );
    },
    verify: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      const failedInstanceId = factOf(ctx, SNAPSHOT_FACTS.failedInstanceId, 'instanceId');
      const instanceId = factOf(ctx, SNAPSHOT_FACTS.instanceId, 'instanceId');
      if (failedInstanceId === undefined || instanceId === undefined) return false;
      const failed = await ctx.ports.cloud.describeInstance(failedInstanceId);
      if (!instanceGone(failed?.state)) return false;
      return (await ctx.ports.cloud.describeAddress(t.allocationId))?.instanceId === instanceId;
    },
    // The IP goes back to where it was; the failed CN stays stopped (fencing is never undone).
    undo: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      const previous = factOf(ctx, SNAPSHOT_FACTS.ipPreviousInstance, 'instanceId');
      if (previous === undefined) {
        ctx.output(`Elastic IP ${t.allocationId} had no previous instance; left on the replacement`);
        return;
      }
      await ctx.ports.cloud.associateAddress(t.allocationId, previous);
      ctx.output(`Elastic IP ${t.allocationId} moved back to ${previous} (which stays stopped)`);
    },
  };
}

function startKcnd(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'start-kcnd',
    title: 'Start kcnd on the replacement',
    destructive: false,
    timeoutMs: timings.commandMs + 60_000,
    describe: (ctx) =>
      `Check that ${peekFactOf(ctx, SNAPSHOT_FACTS.failedInstanceId, 'instanceId') ?? "the failed CN's instance"} is still stopped, then run ${serviceWords(ctx, 'start', peekSnapshotTarget(ctx).cn?.service ?? 'kcnd')} on ${replacementWords(ctx)}.`,
    run: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      const failedInstanceId = requireFactOf(ctx, SNAPSHOT_FACTS.failedInstanceId, 'instanceId');
      const failed = await ctx.ports.cloud.describeInstance(failedInstanceId);
      if (!instanceGone(failed?.state))
        throw new SafetyGateError(
          `${ctx.params.cn}'s old instance ${failedInstanceId} is ${failed?.state} again: two nodes must never run one nodekey. Stop it and resume`,
        );
      const { host } = replacementOf(ctx);
      await opsOf(ctx).service(host, t.cn.service, 'start');
      ctx.output(`${t.cn.service} started on ${host.name} ${host.address}`);
    },
    verify: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      if (ctx.fact(SNAPSHOT_FACTS.privateIp) === undefined) return false;
      return opsOf(ctx).isActive(replacementOf(ctx).host, t.cn.service);
    },
    undo: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      const { host } = replacementOf(ctx);
      await opsOf(ctx, timings.serviceStopMs).service(host, t.cn.service, 'stop');
      ctx.output(`${t.cn.service} stopped on ${host.name} ${host.address}`);
    },
  };
}

function verify(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'verify',
    title: "Verify the replacement serves the failed CN's identity and is in sync",
    destructive: false,
    timeoutMs: timings.catchUpMs + 2 * 60_000,
    describe: (ctx) =>
      `Poll ${replacementWords(ctx)} every ${Math.round(timings.pollMs / 1000)} s for up to ${Math.round(timings.catchUpMs / 60_000)} min (a volume restored from a snapshot loads lazily, so it lags at first): ` +
      `kcnd active; its node address (kaia_nodeAddress, or admin.nodeInfo over IPC) equals ${ctx.fact<string>(SNAPSHOT_FACTS.failedAddress) ?? "the failed CN's"} (a different one stops the run); ` +
      `it has CN peers; its height is within ${ctx.config.monitor.lagBlocks} blocks of the PNs'. Reports whether it signs blocks again and the time to recover.`,
    run: async (ctx: FailoverContext) => {
      await waitInSync(ctx, timings);
      await reportSigning(ctx, timings);
      reportTimeToRecover(ctx);
    },
    verify: async (ctx) => {
      if (ctx.fact(SNAPSHOT_FACTS.privateIp) === undefined) return false;
      return (await observe(ctx, timings)).problem === undefined;
    },
  };
}

const record: FailoverStep = {
  id: 'record',
  title: 'Record the replacement as the CN',
  destructive: false,
  timeoutMs: 60_000,
  describe: (ctx) =>
    `Record in the cell state that ${replacementWords(ctx)} now serves ${ctx.params.cn}, so status, monitoring and the next failover see it.`,
  run: async (ctx) => {
    const { instanceId, host } = replacementOf(ctx);
    await ctx.ports.state.setRole({
      role: ctx.params.cn,
      servedBy: instanceId,
      address: host.address,
      instanceId,
      since: ctx.ports.clock.now(),
      runId: ctx.runId,
    });
    ctx.output(`${ctx.params.cn} is now served by ${instanceId} at ${host.address}`);
  },
  verify: async (ctx) => {
    const role = await ctx.ports.state.role(ctx.params.cn);
    return (
      role !== undefined &&
      role.instanceId === ctx.fact<string>(SNAPSHOT_FACTS.instanceId) &&
      role.runId === ctx.runId
    );
  },
};
