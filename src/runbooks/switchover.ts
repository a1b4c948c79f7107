/**
 * `/failover <cn> --switchover` (docs/runbooks.md §Switchover): the planned move of a healthy CN to its
 * healthy standby.
 *
 * Everything that can be prepared is done while the active still signs: the checks, the CN's key staged on
 * the standby under a name kcnd never loads, the address change worked out. Then one approved step holds
 * the whole gap — stop the active (fenced: kcnd stopped, key moved aside, no kcn left) while the standby
 * stops and takes the staged key, move the address, start kcnd on the standby, announcing the address
 * beside the start — so the CN misses only the blocks of a few seconds. Verify reports how many, read from
 * the chain's committers. On failure the undo puts the CN back on the active.
 */
import type { FailoverStep } from './failover-params.js';
import { recordRoles, standbyTakeover } from './failover-standby.js';
import {
  lagOf,
  probe,
  proxyNodes,
  referenceHeight,
  reportedAddress,
  standbyTargetOf,
  type StandbyTarget,
} from './cell-nodes.js';
import type { FailoverContext } from './failover-params.js';
import { addressText } from './failover-plan-text.js';
import {
  DEFAULT_STANDBY_TIMINGS,
  type FailoverOptions,
  type StandbyFailoverTimings,
} from './failover-timings.js';
import { daemonState } from './fencing.js';
import { asidePath, ipOf, nodeCommands, nodeKeyPaths, onHost, opsOf, type NodeOps } from './node-ops.js';
import { sameAddress } from './nodekey.js';
import { backupChecksumOf, refuseLegacyKeys } from './standby-keys.js';
import { checkStandbyTakeover, refuseIfRolesChanged } from './standby-preflight.js';
import {
  SIGNING_WINDOW,
  recordTimeToRecover,
  waitForFailedAddress,
  waitInSync,
} from './verify-after-start.js';
import {
  SWITCHOVER_FACTS as F,
  removeStagedKeys,
  reportMissedBlocks,
  stageKeys,
  stagedPaths,
  switchBack,
  switchOver,
  waitForSigningAfterSwitch,
} from './switchover-ops.js';
import { SafetyGateError, describeError } from '../errors.js';
import { standbyEipMove } from './standby-ip.js';
import { holderLine, readEipHolder } from './eip-holder.js';
import { formatDuration } from '../config/duration.js';

/** The steps of a switchover, in order. */
export function switchoverSteps(options: FailoverOptions<StandbyFailoverTimings> = {}): FailoverStep[] {
  const timings: StandbyFailoverTimings = { ...DEFAULT_STANDBY_TIMINGS, ...options.timings };
  return [preflight, stageKey, switchStep, verify(timings), recordRoles];
}

/** Both machines must be healthy: a switchover of a failed CN is an ordinary failover. */
async function checkActiveHealthy(ctx: FailoverContext, t: StandbyTarget, reference: number): Promise<void> {
  const active = await probe(ctx.ports, t.cn, ctx.signal);
  const unplanned = `use /failover ${t.role} (without --switchover), which fences a failed machine.`;
  if (!active.ok)
    throw new SafetyGateError(
      `${t.cn.name} does not answer (${active.reason}): a switchover moves a healthy CN; ${unplanned}`,
    );
  const lag = lagOf(active.health.height, reference);
  if (lag > ctx.config.monitor.lagBlocks)
    throw new SafetyGateError(
      `${t.cn.name} is ${lag} blocks behind the PNs: a switchover moves a healthy CN; ${unplanned}`,
    );
  ctx.output(`${t.cn.name} serves ${t.role} at height ${active.health.height} (PNs ${reference})`);
}

/** The address must be one cellops can move within the gap, and be where the roles say. */
async function checkIpReady(ctx: FailoverContext, ops: NodeOps, t: StandbyTarget): Promise<void> {
  const ip = t.failover.ip;
  if (ip.method === 'manual')
    throw new SafetyGateError(
      `${t.role}'s IP is moved by hand (failover.ip.method manual), which cannot be done within the seconds of a switchover. Use /failover ${t.role} --force, which waits for the person who moves it.`,
    );
  if (ip.method === 'eip') {
    // Planned: an address held by anything but the two machines is a question to settle first, not in the gap.
    const move = standbyEipMove(t, ip);
    const holder = await readEipHolder(ctx, move);
    ctx.output(holderLine(move, holder));
    if (holder.kind === 'foreign')
      throw new SafetyGateError(
        `Elastic IP ${ip.allocationId} is held by ${holder.instanceId}, which is neither ${t.cn.name}'s instance ${t.cn.instanceId ?? '(none configured)'} nor ${t.standby.name}'s: a switchover does not take it from elsewhere. Check nodes.${t.role}.failover.ip.allocationId and where the address is.`,
      );
    return;
  }
  if (ip.method !== 'alias') return;
  if (!(await ops.addresses(t.cn.host, ip.device)).includes(ip.address))
    throw new SafetyGateError(
      `${ip.address} is not on ${ip.device} of ${t.cn.name}, which serves ${t.role}: find out where it is before switching over.`,
    );
  if ((await ops.addresses(t.standby.host, ip.device)).includes(ip.address))
    throw new SafetyGateError(
      `${ip.address} is already on ${ip.device} of ${t.standby.name} as well as ${t.cn.name}: remove it from ${t.standby.name} first.`,
    );
}

const preflight: FailoverStep = {
  id: 'preflight',
  title: 'Preflight: are both machines healthy and ready?',
  destructive: false,
  readOnly: true,
  describe(ctx) {
    const t = standbyTargetOf(ctx);
    return [
      `Read-only checks, nothing changes:`,
      `• ${t.cn.name} (${t.cn.host.address}) serves ${t.role} and is healthy: within ${ctx.config.monitor.lagBlocks} blocks of the PNs (${
        proxyNodes(ctx.config)
          .map((n) => n.name)
          .join(', ') || 'none configured'
      }). A failed CN needs /failover ${t.role} without --switchover.`,
      `• ${t.standby.name} (${t.standby.host.address}) answers over SSH, runs kcnd with a key of its own and is in sync.`,
      `• The nodekey backup ${onHost(t.backupHost.host, nodeCommands.read(t.backupPath))} is ${t.role}'s key: the address ${t.cn.name} reports, the recorded backup, and no other running node.`,
      t.failover.ip.method === 'alias'
        ? `• ${t.failover.ip.address} is on ${t.cn.name} and not on ${t.standby.name}.`
        : t.failover.ip.method === 'eip'
          ? `• ${t.standby.name} has an instance to take the Elastic IP ${t.failover.ip.allocationId}.`
          : `• Refused: the IP is moved by hand (method manual), which does not fit in a switchover's seconds.`,
    ].join('\n');
  },
  async verify(ctx) {
    return (
      ctx.fact<string>(F.failedAddress) !== undefined && ctx.fact<string>(F.backupChecksum) !== undefined
    );
  },
  async run(ctx) {
    const t = standbyTargetOf(ctx);
    const ops = opsOf(ctx);
    if (ctx.fact<number>(F.startedAt) === undefined) ctx.setFact(F.startedAt, ctx.ports.clock.now());
    await refuseIfRolesChanged(ctx, t);
    await checkIpReady(ctx, ops, t);
    const reference = await referenceHeight(ctx.ports, ctx.config, ctx.signal);
    await checkActiveHealthy(ctx, t, reference.height);
    await checkStandbyTakeover(ctx, ops, t, reference, true);
  },
};

const stageKey: FailoverStep = {
  id: 'stage-key',
  title: "Stage the CN's key on the standby",
  destructive: true,
  describe(ctx) {
    const t = standbyTargetOf(ctx);
    const staged = stagedPaths(t, '<run id>');
    return [
      `Copies ${t.role}'s nodekey from the backup (${t.backupHost.name}:${t.backupPath}) to ${t.standby.name}:${staged.nodekey} with mode 0600 (${onHost(t.standby.host, nodeCommands.write(staged.nodekey))}, key on stdin), and the bls-nodekey beside the backup to ${staged.blsNodekey} when there is one; each checked by checksum. kcnd never loads files of these names: ${t.standby.name} keeps running with its own key and ${t.cn.name} keeps signing.`,
      `Undo: removes the staged copies.`,
    ].join('\n');
  },
  async run(ctx) {
    const t = standbyTargetOf(ctx);
    await stageKeys(ctx, opsOf(ctx), t);
  },
  async verify(ctx) {
    const t = standbyTargetOf(ctx);
    const ops = opsOf(ctx);
    const expected = await backupChecksumOf(ctx, ops, t);
    return (
      expected !== undefined &&
      (await ops.sha256(t.standby.host, stagedPaths(t, ctx.runId).nodekey)) === expected
    );
  },
  async undo(ctx) {
    await removeStagedKeys(ctx, opsOf(ctx), standbyTargetOf(ctx));
  },
};

const switchStep: FailoverStep = {
  id: 'switch',
  title: 'Switch over: stop the active, start the standby as the CN',
  destructive: true,
  describe(ctx) {
    const t = standbyTargetOf(ctx);
    const a = nodeKeyPaths(t.cn.dataDir);
    const s = nodeKeyPaths(t.standby.dataDir);
    const staged = stagedPaths(t, '<run id>');
    const ip = t.failover.ip;
    const lines = [
      `One approval for the whole gap; ${t.role} does not sign from the first command to the last. Before anything stops: the staged key must still match the backup, and ${t.standby.name} must have no legacy key file.`,
      `At the same time:`,
      `• on ${t.cn.name}: ${onHost(t.cn.host, nodeCommands.service(ctx.config, 'stop', t.cn.service))}, then ${nodeCommands.move(a.nodekey, asidePath(a.nodekey, '<run id>'))} (and the legacy ${a.legacyNodekey} if present); no ${t.cn.endpoint.binary} process may be left;`,
      `• on ${t.standby.name}: ${onHost(t.standby.host, nodeCommands.service(ctx.config, 'stop', t.standby.service))}, its own nodekey and bls-nodekey kept aside as ${asidePath(s.nodekey, '<run id>')} and ${asidePath(s.blsNodekey, '<run id>')}, then ${nodeCommands.move(staged.nodekey, s.nodekey)} (and the staged bls-nodekey), checked by checksum.`,
    ];
    if (ip.method === 'alias')
      lines.push(
        `Then ${onHost(t.cn.host, nodeCommands.ipAddr('del', ip.address, ip.device))} and ${onHost(t.standby.host, nodeCommands.ipAddr('add', ip.address, ip.device))}.`,
      );
    else if (ip.method === 'eip')
      lines.push(
        `Then EC2 AssociateAddress ${ip.allocationId} → ${t.standby.instanceId ?? '(no instanceId)'}.`,
      );
    lines.push(
      `Then ${onHost(t.standby.host, nodeCommands.service(ctx.config, 'start', t.standby.service))}: ${t.standby.name} starts as ${addressText(ctx, t.role)}${ip.method === 'alias' ? `, while ${nodeCommands.gratuitousArp(ip.device, ipOf(ip.address))} announces the address` : ''}.`,
      `Undo: stops ${t.standby.name} and gives it its own key back, moves the address back, puts ${t.role}'s key back on ${t.cn.name} and starts it there, then starts ${t.standby.name} again with its own key.`,
    );
    return lines.join('\n');
  },
  async run(ctx) {
    const t = standbyTargetOf(ctx);
    const ops = opsOf(ctx);
    const expected = await backupChecksumOf(ctx, ops, t);
    const staged = stagedPaths(t, ctx.runId).nodekey;
    const live = nodeKeyPaths(t.standby.dataDir).nodekey;
    // A resumed run may find the key already swapped in: then the stage is spent, not missing.
    if (
      (await ops.sha256(t.standby.host, staged)) !== expected &&
      (await ops.sha256(t.standby.host, live)) !== expected
    )
      throw new SafetyGateError(
        `The staged key on ${t.standby.name} is missing or no longer ${t.role}'s: nothing was stopped. Run "Stage the CN's key on the standby" again.`,
      );
    await refuseLegacyKeys(ops, t.standby);
    let gapMs: number;
    try {
      gapMs = await switchOver(ctx, ops, t);
    } catch (error) {
      // Failed part way: the CN must not stay down, so it goes back on the active before the error goes on.
      ctx.output(`the switch failed (${describeError(error)}); putting ${t.role} back on ${t.cn.name}`);
      try {
        await switchBack(ctx, ops, t);
      } catch (backError) {
        ctx.output(
          `could not put ${t.role} back on ${t.cn.name}: ${describeError(backError)}; the undo tries again`,
        );
      }
      throw error;
    }
    ctx.output(
      `${t.role} stopped on ${t.cn.name} and started on ${t.standby.name} within ${formatDuration(gapMs)}`,
    );
  },
  async verify(ctx) {
    const t = standbyTargetOf(ctx);
    const ops = opsOf(ctx);
    if (ctx.fact<number>(F.startAt) === undefined) return false;
    if (!(await ops.isActive(t.standby.host, t.standby.service))) return false;
    const expected = await backupChecksumOf(ctx, ops, t);
    if ((await ops.sha256(t.standby.host, nodeKeyPaths(t.standby.dataDir).nodekey)) !== expected)
      return false;
    return (await daemonState(ops, t.cn)) === 'stopped';
  },
  async undo(ctx) {
    await switchBack(ctx, opsOf(ctx), standbyTargetOf(ctx));
  },
};

function verify(timings: StandbyFailoverTimings): FailoverStep {
  return {
    id: 'verify',
    title: 'Verify the standby signs as the CN, count the blocks missed',
    destructive: false,
    timeoutMs: timings.catchUpMs + 60_000,
    describe(ctx) {
      const t = standbyTargetOf(ctx);
      return [
        `Waits up to ${formatDuration(timings.catchUpMs)} for ${t.standby.name} to report ${addressText(ctx, t.role)}, to be in sync with CN peers, and to sign a block made after the switch (its address among the committers, looking at the last ${SIGNING_WINDOW} blocks).`,
        `Then counts the blocks ${t.role} missed between its last signature on ${t.cn.name} and its first on ${t.standby.name}, from the committers of recent blocks.`,
      ].join('\n');
    },
    async run(ctx) {
      const t = standbyTargetOf(ctx);
      const failedAddress = ctx.fact<string>(F.failedAddress);
      if (!failedAddress)
        throw new SafetyGateError("The CN's address was not recorded by preflight; cannot verify.");
      const window = {
        deadline: ctx.ports.clock.now() + timings.catchUpMs,
        catchUpMs: timings.catchUpMs,
        pollMs: ctx.config.monitor.intervalMs,
      };
      const takeover = standbyTakeover(ctx);
      const address = await waitForFailedAddress(ctx, takeover, failedAddress, window);
      await waitInSync(ctx, takeover, window);
      await waitForSigningAfterSwitch(ctx, t, address, window);
      recordTimeToRecover(ctx, takeover);
      await reportMissedBlocks(ctx, t, failedAddress);
      ctx.setFact(F.verifiedAt, ctx.ports.clock.now());
    },
    async verify(ctx) {
      const t = standbyTargetOf(ctx);
      const failedAddress = ctx.fact<string>(F.failedAddress);
      if (ctx.fact<number>(F.verifiedAt) === undefined || !failedAddress) return false;
      const address = await reportedAddress(ctx.ports, t.standby.endpoint, ctx.signal);
      return address !== undefined && sameAddress(address, failedAddress);
    },
  };
}
