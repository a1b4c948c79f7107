/**
 * The snapshot failover's steps that prepare the replacement's data (docs/runbooks.md §Snapshot failover,
 * `stop-pn` to `prepare-data`): a consistent snapshot of a PN's DATA_DIR, the replacement launched meanwhile,
 * the restored volume attached and cleaned down to `klay/chaindata`. Nothing here touches the failed CN or
 * its key.
 */
import { factOf, peekFactOf, requireFactOf } from './shaped-facts.js';
import type { FailoverContext, FailoverStep } from './failover-params.js';
import type { SnapshotFailoverTimings } from './failover-timings.js';
import type { NodeInventoryEntry } from '../config/config.js';
import { RUN_ID_TAG } from '../ports/cloud.js';
import { snapshotTargetOf } from './cell-nodes.js';
import { SNAPSHOT_FACTS } from './failover-facts.js';
import { peekSnapshotTarget, pnWords, replacementWords, serviceWords } from './failover-plan-text.js';
import { daemonState, untrackedMessage } from './fencing.js';
import { CommandFailedError, nodeCommands, opsOf } from './node-ops.js';
import { confDataDir } from './kcnd-conf.js';
import { replacementOf } from './replacement.js';
import { dataVolumeOf, runResource, runTags } from './run-resources.js';
import { pnOf } from './snapshot-preflight.js';
import {
  KCND_CONF,
  dataLayout,
  keepOnlyChaindata,
  mountDataVolume,
  opsContextOf,
  setConfDataDir,
} from './snapshot-ops.js';
import { CellopsError, SafetyGateError } from '../errors.js';

export const STOP_PN_TITLE = 'Stop kpnd on the PN to snapshot';

/** Whether the run freezes the PN's file system around CreateSnapshot (nodes.<cn>.failover.freeze). */
function freezes(ctx: {
  readonly config: FailoverContext['config'];
  readonly params: { cn: string };
}): boolean {
  return ctx.config.nodes[ctx.params.cn]?.failover?.freeze === true;
}

/**
 * Thaws the PN's file system before kpnd starts (a frozen one would hang it). A file system that is not
 * frozen answers an error, which is what "already thawed" looks like: never a reason to stop.
 */
async function thaw(ctx: FailoverContext, pn: NodeInventoryEntry): Promise<void> {
  if (!freezes(ctx)) return;
  try {
    await opsOf(ctx).fsfreeze(pn.host, pn.dataDir, 'unfreeze');
    ctx.output(`thawed ${pn.dataDir} on ${pn.name}`);
  } catch (error) {
    if (!(error instanceof CommandFailedError)) throw error;
  }
}

/** kpnd stopped on the PN and no kpn process left (AUTO_RESTART or a watchdog may run it outside systemd). */
async function requirePnStopped(ctx: FailoverContext, pn: NodeInventoryEntry): Promise<void> {
  const state = await daemonState(opsOf(ctx), pn);
  if (state === 'active')
    throw new SafetyGateError(
      `${pn.service} is running again on ${pn.name}; a snapshot now would not be consistent. Abort, or resume from "${STOP_PN_TITLE}"`,
    );
  if (state === 'untracked')
    throw new SafetyGateError(
      `${untrackedMessage(pn, 'after stop')}; a snapshot now would not be consistent`,
    );
}

export function stopPn(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'stop-pn',
    title: STOP_PN_TITLE,
    destructive: true,
    // The PN is down on purpose until the snapshot has started: no alert for that.
    disturbs: (ctx) => {
      const pn = ctx.fact<string>(SNAPSHOT_FACTS.pn);
      return pn === undefined ? [] : [pn];
    },
    timeoutMs: timings.serviceStopMs + 30_000,
    describe: (ctx) => {
      const pn = pnWords(ctx);
      return `Run ${serviceWords(ctx, 'stop', pn.service)} on ${pn.host}, so that its data volume is consistent for the snapshot (the HA guide insists); then \`${nodeCommands.processAlive('kpn')}\` must find no process. It is started again as soon as the snapshot has started. Undo: start it again.`;
    },
    run: async (ctx) => {
      const pn = pnOf(ctx);
      await opsOf(ctx, timings.serviceStopMs).service(pn.host, pn.service, 'stop');
      ctx.setFact(SNAPSHOT_FACTS.pnStoppedAt, ctx.ports.clock.now());
      await requirePnStopped(ctx, pn);
      ctx.output(`${pn.service} stopped on ${pn.name}; no ${pn.endpoint.binary} process left`);
    },
    verify: async (ctx) => (await daemonState(opsOf(ctx), pnOf(ctx))) === 'stopped',
    undo: async (ctx) => {
      const pn = pnOf(ctx);
      await thaw(ctx, pn);
      await opsOf(ctx).service(pn.host, pn.service, 'start');
      ctx.output(`${pn.service} started again on ${pn.name}`);
    },
  };
}

/** CreateSnapshot after `sync` (and inside fsfreeze when configured), the snapshot's id recorded. */
async function consistentSnapshot(ctx: FailoverContext, pn: NodeInventoryEntry): Promise<string> {
  const ops = opsOf(ctx);
  await requirePnStopped(ctx, pn);
  await ops.sync(pn.host);
  ctx.output(`sync on ${pn.name}: every write of kpnd is on the volume`);
  const volumeId = requireFactOf(ctx, SNAPSHOT_FACTS.pnVolumeId, 'volumeId');
  if (freezes(ctx)) {
    await ops.fsfreeze(pn.host, pn.dataDir, 'freeze');
    ctx.output(`froze ${pn.dataDir} on ${pn.name}`);
  }
  try {
    const { snapshotId } = await ctx.ports.cloud.createSnapshot(
      volumeId,
      `cellops ${ctx.config.cell} failover of ${ctx.params.cn}: chaindata of ${pn.name} (run ${ctx.runId})`,
      runTags(ctx, `${ctx.params.cn}-chaindata-${pn.name}`),
    );
    ctx.setFact(SNAPSHOT_FACTS.snapshotId, snapshotId);
    return snapshotId;
  } finally {
    await thaw(ctx, pn);
  }
}

export const snapshot: FailoverStep = {
  id: 'snapshot',
  title: "Snapshot the PN's data volume, then start kpnd again",
  destructive: false,
  timeoutMs: 5 * 60_000,
  describe: (ctx) => {
    const pn = pnWords(ctx);
    const volume = peekFactOf(ctx, SNAPSHOT_FACTS.pnVolumeId, 'volumeId') ?? `${pn.name}'s dataVolumeId`;
    const dataDir =
      pn.name === 'the PN' ? "the PN's DATA_DIR" : (ctx.config.nodes[pn.name]?.dataDir ?? 'DATA_DIR');
    const freeze = freezes(ctx)
      ? ` \`${nodeCommands.fsfreeze('freeze', dataDir)}\` right before and \`${nodeCommands.fsfreeze('unfreeze', dataDir)}\` right after the call;`
      : '';
    return `Check again that kpnd is stopped and no kpn runs on ${pn.host}; \`${nodeCommands.sync()}\` there;${freeze} EC2 CreateSnapshot of ${volume} (${pn.name}'s DATA_DIR) tagged ${RUN_ID_TAG}; as soon as it has started (EBS snapshots are point-in-time at creation) run ${serviceWords(ctx, 'start', pn.service)} on ${pn.host}. The snapshot completes in the background while the replacement launches.`;
  },
  run: async (ctx) => {
    const pn = pnOf(ctx);
    const snapshotId =
      (await runResource(ctx, 'snapshot', SNAPSHOT_FACTS.snapshotId)) ?? (await consistentSnapshot(ctx, pn));
    const state = await ctx.ports.cloud.describeSnapshot(snapshotId);
    ctx.output(
      `snapshot ${snapshotId} started (${state?.state ?? 'unknown'}${state?.progress ? ` ${state.progress}` : ''})`,
    );
    // A run resumed after a crash between freeze and thaw must not start kpnd on a frozen file system.
    await thaw(ctx, pn);
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

export function launch(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'launch',
    title: 'Launch the replacement from the CN image',
    destructive: false,
    timeoutMs: timings.instanceRunningMs + 60_000,
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
        ` tagged ${RUN_ID_TAG}; wait until it is running (≤ ${Math.round(timings.instanceRunningMs / 60_000)} min). Nothing is sent to it over SSH before its host key is pinned (next step). Does not wait for the snapshot, which completes meanwhile.`
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
    },
    verify: async (ctx) => {
      const instanceId = await runResource(ctx, 'instance', SNAPSHOT_FACTS.instanceId);
      if (instanceId === undefined) return false;
      const info = await ctx.ports.cloud.describeInstance(instanceId);
      if (info?.state !== 'running' || info.privateIp === undefined) return false;
      ctx.setFact(SNAPSHOT_FACTS.privateIp, info.privateIp);
      ctx.setFact(SNAPSHOT_FACTS.availabilityZone, info.availabilityZone);
      return true;
    },
  };
}

export function attachVolume(timings: SnapshotFailoverTimings): FailoverStep {
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

/** kcnd stopped and disabled on the replacement, and no kcn process: the image may start it at boot. */
export async function requireReplacementQuiet(ctx: FailoverContext, node: NodeInventoryEntry): Promise<void> {
  const state = await daemonState(opsOf(ctx), node);
  if (state === 'active')
    throw new SafetyGateError(
      `${node.service} is active on ${node.host.name} ${node.host.address}: it must be stopped before the failed CN's key gets near it. Abort, or resume from "Mount the volume and keep only klay/chaindata".`,
    );
  if (state === 'untracked')
    throw new SafetyGateError(`${untrackedMessage(node, 'after stop')}, then resume.`);
}

/** The CN's inventory entry with the replacement's host: for daemonState, the SSH fence and the like. */
export function replacementNode(ctx: FailoverContext): NodeInventoryEntry {
  const t = snapshotTargetOf(ctx);
  return { ...t.cn, host: replacementOf(ctx).host };
}

export function prepareData(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'prepare-data',
    title: 'Stop kcnd on the replacement, mount the volume and keep only klay/chaindata',
    destructive: true,
    timeoutMs: timings.cleanMs + 4 * timings.commandMs,
    describe: (ctx) => {
      const p = peekSnapshotTarget(ctx);
      const service = p.cn?.service ?? 'kcnd';
      const volume = peekFactOf(ctx, SNAPSHOT_FACTS.volumeId, 'volumeId') ?? 'the restored volume';
      return (
        `On ${replacementWords(ctx)}: run ${serviceWords(ctx, 'stop', service)} and ${serviceWords(ctx, 'disable', service)} (the image may start kcnd at boot), then \`${nodeCommands.processAlive('kcn')}\` must find no process; ` +
        `mount ${volume} (${p.launch?.dataDevice ?? '/dev/sdf'} or its NVMe name) at ${p.dataDir} and record it in /etc/fstab (nofail); ` +
        `DELETE everything on it except klay/chaindata (moved to ${p.dataDir}/klay/chaindata if the PN kept it deeper; lost+found stays), including the PN's nodekey; ` +
        `set DATA_DIR=${p.dataDir} in ${KCND_CONF} (original kept as ${KCND_CONF}.cellops-orig).`
      );
    },
    run: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      const { host } = replacementOf(ctx);
      const o = opsContextOf(ctx, timings.commandMs);
      const ops = opsOf(ctx, timings.serviceStopMs);
      await ops.service(host, t.cn.service, 'stop');
      await ops.service(host, t.cn.service, 'disable');
      await requireReplacementQuiet(ctx, replacementNode(ctx));
      ctx.output(`${t.cn.service} stopped and disabled on ${host.name}; no kcn process`);
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
      return (await daemonState(opsOf(ctx), replacementNode(ctx))) === 'stopped';
    },
  };
}
