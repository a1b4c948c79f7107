/**
 * `failover` in mode standby (docs/runbooks.md §Standby failover): the active-standby procedure of the Kaia
 * HA guide, with the safety the guide leaves out — fencing the failed CN before its key starts anywhere else,
 * validating the backup key, refusing a legacy `$DATA_DIR/nodekey` that would shadow the installed one,
 * carrying the bls-nodekey, and checking after start that the standby really runs as the failed CN.
 *
 * Facts recorded (never a key): see STANDBY_FACTS. Files moved aside by a run are named
 * `<path>.cellops-<runId>`, so undo finds them without relying on facts.
 */
import type { FailoverPlan, FailoverStep } from './failover-params.js';
import { lagOf, probe, proxyNodes, referenceHeight, standbyTargetOf } from './cell-nodes.js';
import { STANDBY_FACTS } from './failover-facts.js';
import { addressText } from './failover-plan-text.js';
import {
  DEFAULT_STANDBY_TIMINGS,
  type FailoverOptions,
  type StandbyFailoverTimings,
} from './failover-timings.js';
import {
  daemonState,
  fenceCnOverSsh,
  needsFenceConfirmation,
  refuseIfOldActiveIsBack,
  stopCnInstance,
  untrackedMessage,
} from './fencing.js';
import { asidePath, blsBackupPath, ipOf, nodeCommands, nodeKeyPaths, onHost, opsOf } from './node-ops.js';
import { sameAddress } from './nodekey.js';
import { readBackupKeys } from './backup-keys.js';
import { confirmIpMoved, moveIp } from './standby-ip-steps.js';
import { announceIp, standbyEipMoveOf } from './standby-ip.js';
import { confirmEipHolderStep } from './eip-holder.js';
import {
  backupChecksumOf,
  installBackupKeys,
  refuseLegacyKeys,
  restoreStandbyKeys,
  startStandbyService,
} from './standby-keys.js';
import { checkStandbyTakeover, judgeActive, refuseIfRolesChanged } from './standby-preflight.js';
import { describeVerify, takeoverHolds, verifyTakeover, type Takeover } from './verify-after-start.js';
import { HostError, SafetyGateError } from '../errors.js';
import { formatDuration } from '../config/duration.js';

/** The steps of docs/runbooks.md §Standby failover, in order. */
export function standbyFailoverSteps(
  options: FailoverOptions<StandbyFailoverTimings> & {
    /** The CN's IP is an Elastic IP: an approver confirms taking it from an unexpected holder. */
    readonly eip?: boolean;
  } = {},
): FailoverStep[] {
  const timings: StandbyFailoverTimings = { ...DEFAULT_STANDBY_TIMINGS, ...options.timings };
  return [
    preflight(timings),
    fenceOldActive(timings),
    confirmOldActiveOff,
    stopStandby,
    replaceNodekey,
    ...(options.eip ? [confirmEipHolderStep(standbyEipMoveOf)] : []),
    moveIp,
    confirmIpMoved,
    startStandby,
    verify(timings),
    recordRoles,
  ];
}

function preflight(timings: StandbyFailoverTimings): FailoverStep {
  return {
    id: 'preflight',
    title: 'Preflight: is the failover needed and safe?',
    destructive: false,
    readOnly: true,
    describe(ctx) {
      const t = standbyTargetOf(ctx);
      const p = nodeKeyPaths(t.standby.dataDir);
      return [
        `Read-only checks, nothing changes:`,
        `• ${t.cn.name} (${t.cn.host.address}) is really unhealthy — not answering, stalled, or more than ${ctx.config.monitor.lagBlocks} blocks behind the PNs (${
          proxyNodes(ctx.config)
            .map((n) => n.name)
            .join(', ') || 'none configured'
        })${ctx.params.force ? ' — skipped with --force: this is a switchover of a healthy CN' : '; a healthy CN needs --force (a switchover)'}.`,
        `• ${t.standby.name} (${t.standby.host.address}) answers over SSH, ${onHost(t.standby.host, nodeCommands.service(ctx.config, 'is-active', t.standby.service))} says active, and it is within ${ctx.config.monitor.lagBlocks} blocks of the PNs.`,
        `• The nodekey backup ${onHost(t.backupHost.host, nodeCommands.read(t.backupPath))} exists and is 64 hex characters; its node address and ID are recorded (never the key). It must match the backup recorded by /cell backup-nodekey, the address ${t.cn.name} reports if it answers, and the key file ${t.cn.name}'s kcnd loads (${onHost(t.cn.host, nodeCommands.read(nodeKeyPaths(t.cn.dataDir).nodekey))}, or the legacy ${nodeKeyPaths(t.cn.dataDir).legacyNodekey} when present) if ${t.cn.name} can be reached; no other node of the cell may be running it.`,
        `• ${t.standby.name} runs a key of its own (not ${t.role}'s) and has no legacy ${p.legacyNodekey} or ${p.legacyBlsNodekey} that would shadow the installed key.`,
      ].join('\n');
    },
    async verify(ctx) {
      // Done once its findings are recorded. They are recorded only after every check passed, so a
      // preflight interrupted midway runs again in full instead of skipping the checks it had not reached.
      return (
        ctx.fact<string>(STANDBY_FACTS.failedAddress) !== undefined &&
        ctx.fact<string>(STANDBY_FACTS.backupChecksum) !== undefined
      );
    },
    async run(ctx) {
      const t = standbyTargetOf(ctx);
      const ops = opsOf(ctx);
      if (ctx.fact<number>(STANDBY_FACTS.startedAt) === undefined)
        ctx.setFact(STANDBY_FACTS.startedAt, ctx.ports.clock.now());
      await refuseIfRolesChanged(ctx, t);
      const { reference, activeAnswers } = await judgeActive(ctx, t, timings);
      await checkStandbyTakeover(ctx, ops, t, reference, activeAnswers);
    },
  };
}

function fenceOldActive(timings: StandbyFailoverTimings): FailoverStep {
  return {
    id: 'fence-old-active',
    title: 'Fence the old active',
    destructive: true,
    disturbs: (ctx) => [standbyTargetOf(ctx).cn.name],
    timeoutMs: timings.instanceStoppedMs + 60_000,
    describe(ctx) {
      const t = standbyTargetOf(ctx);
      const p = nodeKeyPaths(t.cn.dataDir);
      const lines = [
        `So that ${t.cn.name} can never run alongside ${t.standby.name} with the same key (two nodes with one nodekey double-sign):`,
        `• ${onHost(t.cn.host, nodeCommands.service(ctx.config, 'stop', t.cn.service))}`,
        `• ${onHost(t.cn.host, nodeCommands.move(p.nodekey, asidePath(p.nodekey, '<run id>')))}, and the same for the legacy ${p.legacyNodekey} if present — so that neither a reboot nor kcnd's AUTO_RESTART brings ${t.cn.name} back with its identity.`,
        `• Then ${onHost(t.cn.host, nodeCommands.service(ctx.config, 'is-active', t.cn.service))} must say inactive and ${onHost(t.cn.host, nodeCommands.processAlive(t.cn.endpoint.binary))} must find no process (AUTO_RESTART restarts kcn outside systemd); otherwise the run stops here.`,
      ];
      if (t.cn.instanceId)
        lines.push(`• EC2 StopInstances ${t.cn.instanceId}, then wait until it is stopped.`);
      lines.push(
        `If ${t.cn.name} cannot be reached over SSH${t.cn.instanceId ? ', or its instance cannot be stopped' : ''}, the next step asks an approver to confirm that it is powered off or isolated. Not undone automatically: bring ${t.cn.name} back by hand.`,
      );
      return lines.join('\n');
    },
    async run(ctx) {
      const t = standbyTargetOf(ctx);
      await fenceCnOverSsh(ctx, opsOf(ctx), t);
      if (t.cn.instanceId) await stopCnInstance(ctx, t.cn.instanceId, timings.instanceStoppedMs);
      if (needsFenceConfirmation(ctx))
        ctx.output(`an approver must now confirm that ${t.cn.name} is powered off or isolated`);
    },
    async verify(ctx) {
      const t = standbyTargetOf(ctx);
      const ops = opsOf(ctx);
      const p = nodeKeyPaths(t.cn.dataDir);
      // Unreachable over SSH: the confirmation step carries that part of the fence.
      if (ctx.fact<string>(STANDBY_FACTS.fenceSsh) !== 'unreachable') {
        try {
          if (
            (await daemonState(ops, t.cn)) !== 'stopped' ||
            (await ops.exists(t.cn.host, p.nodekey)) ||
            (await ops.exists(t.cn.host, p.legacyNodekey))
          )
            return false;
        } catch (error) {
          if (error instanceof HostError) return false;
          throw error;
        }
      }
      // A failed EC2 stop is carried by the confirmation too; otherwise the instance must be down.
      if (t.cn.instanceId && ctx.fact<string>(STANDBY_FACTS.fenceEc2) !== 'failed') {
        const state = (await ctx.ports.cloud.describeInstance(t.cn.instanceId))?.state;
        if (state !== 'stopped' && state !== 'terminated') return false;
      }
      return true;
    },
  };
}

const confirmOldActiveOff: FailoverStep = {
  id: 'confirm-old-active-off',
  title: 'Confirm the old active is powered off or isolated',
  destructive: true,
  kind: 'manual',
  describe(ctx) {
    const t = standbyTargetOf(ctx);
    const ssh = ctx.fact<string>(STANDBY_FACTS.fenceSsh);
    const ec2 = ctx.fact<string>(STANDBY_FACTS.fenceEc2);
    const why = ctx.fact<string>(STANDBY_FACTS.fenceSshError);
    const lines = [
      `Only when "Fence the old active" could not finish: ${t.cn.name} unreachable over SSH${t.cn.instanceId ? `, or its EC2 instance ${t.cn.instanceId} could not be stopped` : ''}.`,
    ];
    if (ssh === 'unreachable')
      lines.push(
        `cellops could not stop kcnd on ${t.cn.name} (${t.cn.host.address}) nor move its nodekey aside${why ? ` (${why})` : ''}.`,
      );
    else if (ssh === 'done')
      lines.push(`kcnd was stopped on ${t.cn.name} and its nodekey moved aside over SSH.`);
    if (ec2 === 'stopped') lines.push(`Its EC2 instance ${t.cn.instanceId ?? ''} was stopped.`);
    else if (ec2 === 'failed')
      lines.push(
        `Its EC2 instance ${t.cn.instanceId ?? ''} could NOT be stopped (see the fence step's output): it may still be running.`,
      );
    lines.push(
      `Approve ONLY after you have made sure, outside cellops, that ${t.cn.name} is powered off or cut off from the network and cannot come back with its nodekey: ${t.standby.name} is about to start as ${addressText(ctx, t.role)}, and two nodes running one nodekey double-sign.`,
    );
    return lines.join('\n');
  },
  async when(ctx) {
    return needsFenceConfirmation(ctx);
  },
  async run(ctx) {
    const t = standbyTargetOf(ctx);
    ctx.setFact(STANDBY_FACTS.fenceConfirmed, true);
    ctx.output(`an approver confirmed that ${t.cn.name} is powered off or isolated`);
  },
  async verify(ctx) {
    return ctx.fact<boolean>(STANDBY_FACTS.fenceConfirmed) === true;
  },
};

const stopStandby: FailoverStep = {
  id: 'stop-standby',
  title: 'Stop kcnd on the standby',
  destructive: true,
  disturbs: (ctx) => [standbyTargetOf(ctx).standby.name],
  describe(ctx) {
    const t = standbyTargetOf(ctx);
    return [
      `Checks that ${t.standby.name} is still within ${ctx.config.monitor.lagBlocks} blocks of the PNs, then runs ${onHost(t.standby.host, nodeCommands.service(ctx.config, 'stop', t.standby.service))}.`,
      `Undo: start ${t.standby.service} on ${t.standby.name} again (only with its own key in place).`,
    ].join('\n');
  },
  async run(ctx) {
    const t = standbyTargetOf(ctx);
    const ops = opsOf(ctx);
    const reference = await referenceHeight(ctx.ports, ctx.config, ctx.signal);
    const standby = await probe(ctx.ports, t.standby, ctx.signal);
    if (!standby.ok)
      throw new SafetyGateError(
        `The standby ${t.standby.name} no longer reports its height (${standby.reason}); not stopping it.`,
      );
    const lag = lagOf(standby.health.height, reference.height);
    if (lag > ctx.config.monitor.lagBlocks)
      throw new SafetyGateError(
        `The standby ${t.standby.name} fell behind: ${lag} blocks behind the PNs (threshold ${ctx.config.monitor.lagBlocks}). Not stopping it; let it catch up and resume.`,
      );
    await ops.service(t.standby.host, t.standby.service, 'stop');
    if ((await daemonState(ops, t.standby)) === 'untracked')
      throw new SafetyGateError(
        `${untrackedMessage(t.standby, 'after stop')}, then start the failover again.`,
      );
    ctx.output(`stopped ${t.standby.service} on ${t.standby.name} at height ${standby.health.height}`);
  },
  async verify(ctx) {
    const t = standbyTargetOf(ctx);
    return (await daemonState(opsOf(ctx), t.standby)) === 'stopped';
  },
  async undo(ctx) {
    const t = standbyTargetOf(ctx);
    const ops = opsOf(ctx);
    if (await ops.isActive(t.standby.host, t.standby.service)) return;
    await startStandbyService(ctx, ops, t);
  },
};

const replaceNodekey: FailoverStep = {
  id: 'replace-nodekey',
  title: "Install the failed CN's nodekey on the standby",
  destructive: true,
  describe(ctx) {
    const t = standbyTargetOf(ctx);
    const p = nodeKeyPaths(t.standby.dataDir);
    const blsBackup = blsBackupPath(t.backupPath);
    const h = t.standby.host;
    return [
      `Replaces ${t.standby.name}'s identity with ${addressText(ctx, t.role)}. The key travels through memory and stdin; it is never logged or posted.`,
      `• Refuses if ${p.legacyNodekey} or ${p.legacyBlsNodekey} exists on ${t.standby.name} (kcnd would load it instead), or if ${t.standby.service} or a ${t.standby.endpoint.binary} process is running there.`,
      `• Reads and validates the backup: ${onHost(t.backupHost.host, nodeCommands.read(t.backupPath))} (64 hex characters, no 0x).`,
      `• Keeps ${t.standby.name}'s own keys for rollback: ${onHost(h, nodeCommands.move(p.blsNodekey, asidePath(p.blsNodekey, '<run id>')))} and ${onHost(h, nodeCommands.move(p.nodekey, asidePath(p.nodekey, '<run id>')))}.`,
      `• Writes the key with mode 0600: ${onHost(h, nodeCommands.write(p.nodekey))} (key on stdin), then checks ${onHost(h, nodeCommands.sha256(p.nodekey))} against the backup's checksum.`,
      `• bls-nodekey: copies ${t.backupHost.name}:${blsBackup} to ${p.blsNodekey} the same way if it exists; otherwise leaves none so that kcnd derives it from the nodekey at start.`,
      `Undo: if kcnd (or a kcn process) runs on ${t.standby.name}, ${onHost(h, nodeCommands.service(ctx.config, 'stop', t.standby.service))} first; then moves ${t.standby.name}'s own nodekey and bls-nodekey back (or removes ${t.role}'s when ${t.standby.name} had none).`,
    ].join('\n');
  },
  async run(ctx) {
    const t = standbyTargetOf(ctx);
    const ops = opsOf(ctx);
    await refuseLegacyKeys(ops, t.standby);
    if ((await daemonState(ops, t.standby)) !== 'stopped')
      throw new SafetyGateError(
        `${t.standby.service} (or a ${t.standby.endpoint.binary} process) is running on ${t.standby.name}: it must be stopped before its key is replaced.`,
      );
    const backup = await readBackupKeys(ops, t);
    const expected = ctx.fact<string>(STANDBY_FACTS.failedAddress);
    const { address } = backup;
    if (expected !== undefined && !sameAddress(expected, address))
      throw new SafetyGateError(
        `The nodekey backup changed during the run: it now holds ${address}, not ${expected} as in preflight. Nothing was installed.`,
      );
    await installBackupKeys(ctx, ops, t, backup);
  },
  async verify(ctx) {
    const t = standbyTargetOf(ctx);
    const ops = opsOf(ctx);
    const p = nodeKeyPaths(t.standby.dataDir);
    const host = t.standby.host;
    if ((await ops.exists(host, p.legacyNodekey)) || (await ops.exists(host, p.legacyBlsNodekey)))
      return false;
    const expected = await backupChecksumOf(ctx, ops, t);
    if (expected === undefined || (await ops.sha256(host, p.nodekey)) !== expected) return false;
    const blsBackup = await ops.sha256(t.backupHost.host, blsBackupPath(t.backupPath));
    const blsNow = await ops.sha256(host, p.blsNodekey);
    return blsBackup === undefined ? blsNow === undefined : blsNow === blsBackup;
  },
  async undo(ctx) {
    const t = standbyTargetOf(ctx);
    const ops = opsOf(ctx);
    // kcn keeps the key it loaded: swapping files under a running standby (say "Start kcnd on the standby"
    // timed out after kcn did start) would leave it running as the failed CN while its files say otherwise.
    if ((await daemonState(ops, t.standby)) !== 'stopped') {
      await ops.service(t.standby.host, t.standby.service, 'stop');
      if ((await daemonState(ops, t.standby)) !== 'stopped')
        throw new SafetyGateError(
          `Could not stop ${t.standby.service} on ${t.standby.name} before restoring its own key: it may still run as ${t.role}. Stop it by hand and restore ${nodeKeyPaths(t.standby.dataDir).nodekey} from ${asidePath(nodeKeyPaths(t.standby.dataDir).nodekey, ctx.runId)}.`,
        );
      ctx.output(`stopped ${t.standby.service} on ${t.standby.name} before restoring its own key`);
    }
    await restoreStandbyKeys(ctx, ops, t);
  },
};

const startStandby: FailoverStep = {
  id: 'start-standby',
  title: 'Start kcnd on the standby',
  destructive: true,
  disturbs: (ctx) => [standbyTargetOf(ctx).standby.name],
  describe(ctx) {
    const t = standbyTargetOf(ctx);
    return [
      `Checks first that ${t.cn.name} has not come back: it does not answer as ${addressText(ctx, t.role)}${t.cn.instanceId ? `, its instance ${t.cn.instanceId} is not running again` : ''}, and when it can be reached over SSH ${onHost(t.cn.host, nodeCommands.service(ctx.config, 'is-active', t.cn.service))} is not active, ${onHost(t.cn.host, nodeCommands.processAlive(t.cn.endpoint.binary))} finds nothing and its key is not back at ${nodeKeyPaths(t.cn.dataDir).nodekey} or ${nodeKeyPaths(t.cn.dataDir).legacyNodekey}.`,
      `And that ${t.standby.name} holds exactly the backup key (${onHost(t.standby.host, nodeCommands.sha256(nodeKeyPaths(t.standby.dataDir).nodekey))}) with nothing at the legacy locations.`,
      `Then ${onHost(t.standby.host, nodeCommands.service(ctx.config, 'start', t.standby.service))}: ${t.standby.name} starts as ${addressText(ctx, t.role)}${t.failover.ip.method === 'alias' ? `, and at the same time announces the moved address with a gratuitous ARP (${onHost(t.standby.host, nodeCommands.gratuitousArp(t.failover.ip.device, ipOf(t.failover.ip.address)))})` : ''}.`,
      `Undo: ${onHost(t.standby.host, nodeCommands.service(ctx.config, 'stop', t.standby.service))}.`,
    ].join('\n');
  },
  async run(ctx) {
    const t = standbyTargetOf(ctx);
    const ops = opsOf(ctx);
    await refuseIfOldActiveIsBack(ctx, ops, t);
    await refuseLegacyKeys(ops, t.standby);
    const p = nodeKeyPaths(t.standby.dataDir);
    const expected = await backupChecksumOf(ctx, ops, t);
    if ((await ops.sha256(t.standby.host, p.nodekey)) !== expected)
      throw new SafetyGateError(
        `${t.standby.name}:${p.nodekey} is not the backup key of ${t.role} any more. Not starting; re-run "Install the failed CN's nodekey on the standby".`,
      );
    // The announcement runs beside the start: neighbours' ARP caches need not be right before kcnd runs.
    await Promise.all([
      ops.service(t.standby.host, t.standby.service, 'start'),
      announceIp(ctx, ops, t.standby, t.failover.ip),
    ]);
    ctx.output(`started ${t.standby.service} on ${t.standby.name}`);
  },
  async verify(ctx) {
    const t = standbyTargetOf(ctx);
    return opsOf(ctx).isActive(t.standby.host, t.standby.service);
  },
  async undo(ctx) {
    const t = standbyTargetOf(ctx);
    const ops = opsOf(ctx);
    await ops.service(t.standby.host, t.standby.service, 'stop');
    ctx.output(`stopped ${t.standby.service} on ${t.standby.name}`);
  },
};

/** The standby, as Verify reaches it. */
export function standbyTakeover(ctx: FailoverPlan): Takeover {
  const t = standbyTargetOf(ctx);
  const s = t.standby;
  return { cn: t.role, name: s.name, host: s.host, service: s.service, endpoint: s.endpoint };
}

function verify(timings: StandbyFailoverTimings): FailoverStep {
  return {
    id: 'verify',
    title: 'Verify the standby runs as the failed CN',
    destructive: false,
    timeoutMs: timings.catchUpMs + 60_000,
    describe: (ctx) =>
      describeVerify(
        ctx,
        standbyTakeover(ctx),
        timings.catchUpMs,
        addressText(ctx, standbyTargetOf(ctx).role),
      ),
    async run(ctx) {
      const failedAddress = ctx.fact<string>(STANDBY_FACTS.failedAddress);
      if (!failedAddress)
        throw new SafetyGateError("The failed CN's address was not recorded by preflight; cannot verify.");
      await verifyTakeover(ctx, standbyTakeover(ctx), failedAddress, timings.catchUpMs);
    },
    async verify(ctx) {
      const failedAddress = ctx.fact<string>(STANDBY_FACTS.failedAddress);
      return failedAddress !== undefined && takeoverHolds(ctx, standbyTakeover(ctx), failedAddress);
    },
  };
}

/** Records the standby as the CN's machine, with no standby left (the switchover ends with it too). */
export const recordRoles: FailoverStep = {
  id: 'record-roles',
  title: 'Record the new roles',
  destructive: false,
  describe(ctx) {
    const t = standbyTargetOf(ctx);
    return `Records that ${t.standby.name} now serves as ${t.role}, and that ${t.role} has no standby until /cell rebuild-standby ${t.role} makes one (by default on ${t.cn.name}), so that /cell status, monitoring and the next failover see the truth; and that ${t.cn.name} (${t.cn.host.address}) was fenced: the monitor keeps watching it.`;
  },
  async run(ctx) {
    const t = standbyTargetOf(ctx);
    const failedAddress = ctx.fact<string>(STANDBY_FACTS.failedAddress);
    // No standby until one is rebuilt: the machine that served the CN was fenced (its key moved aside).
    await ctx.ports.state.setRole({
      role: t.role,
      servedBy: t.standby.name,
      previous: t.cn.name,
      since: ctx.ports.clock.now(),
      runId: ctx.runId,
      // The old active stays watched by the monitor (src/monitor/fenced-watch.ts).
      ...(failedAddress === undefined
        ? {}
        : {
            fenced: {
              name: t.cn.name,
              address: t.cn.host.address,
              ...(t.cn.instanceId === undefined ? {} : { instanceId: t.cn.instanceId }),
              nodeAddress: failedAddress,
            },
          }),
    });
    const ttr = ctx.fact<number>(STANDBY_FACTS.timeToRecoverMs);
    ctx.output(
      `${t.role} is now served by ${t.standby.name}${ttr !== undefined ? ` (recovered in ${formatDuration(ttr)})` : ''}; it has no standby until /cell rebuild-standby ${t.role}`,
    );
  },
  async verify(ctx) {
    const t = standbyTargetOf(ctx);
    const role = await ctx.ports.state.role(t.role);
    return role?.servedBy === t.standby.name && role.runId === ctx.runId;
  },
};
