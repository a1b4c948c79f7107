/**
 * Fencing: making sure the failed CN can never run alongside the node that takes over its key (two nodes
 * with one nodekey double-sign). One SSH fence serves both modes (fenceOverSsh); the standby mode adds EC2
 * and may need a person to vouch for it; the snapshot mode stops the failed CN's instance and must see it
 * stopped, with the SSH fence as a best effort before.
 */
import type { FailoverContext } from './failover-params.js';
import type { NodeInventoryEntry } from '../config/config.js';
import type { HostRef } from '../ports/shell.js';
import type { SnapshotFailoverTimings } from './failover-timings.js';
import { probe, reportedAddress, type StandbyTarget } from './cell-nodes.js';
import { STANDBY_FACTS } from './failover-facts.js';
import { fenceKeyPaths, freeAsidePath, keyFileAddress } from './key-files.js';
import { opsOf, type NodeOps } from './node-ops.js';
import { sameAddress } from './nodekey.js';
import { HostError, SafetyGateError, describeError } from '../errors.js';

/**
 * Whether the node's daemon is really down. `systemctl is-active` alone cannot say: kcnd's AUTO_RESTART
 * restarts kcn through the init script, outside systemd, so the unit can read inactive (and `systemctl
 * stop` do nothing) while a kcn process runs with the key it loaded. 'untracked' is that case.
 */
export async function daemonState(
  ops: NodeOps,
  node: NodeInventoryEntry,
): Promise<'stopped' | 'active' | 'untracked'> {
  if (await ops.isActive(node.host, node.service)) return 'active';
  if (await ops.processAlive(node.host, node.endpoint.binary)) return 'untracked';
  return 'stopped';
}

export function untrackedMessage(node: NodeInventoryEntry, when: string): string {
  return `a ${node.endpoint.binary} process still runs on ${node.name} ${when} although systemd reports ${node.service} inactive: kcnd's AUTO_RESTART (or a watchdog) restarted it outside systemd, so \`systemctl stop\` cannot reach it and it may hold its key in memory. Stop it by hand on ${node.name} (\`sudo /etc/init.d/${node.service} stop\`, then \`pgrep -x ${node.endpoint.binary}\` must print nothing)`;
}

// --- the SSH fence, both modes ----------------------------------------------------------------------------

export type SshFence =
  { readonly state: 'done' } | { readonly state: 'unreachable'; readonly reason: string };

/**
 * Stops the CN's kcnd at `host` (the machine serving it: the configured one, or a replacement from an
 * earlier failover) and moves aside every file kcnd could load its key from — kcnd.conf's `--nodekey`
 * file and both DATA_DIR locations, each to a free `<path>.cellops-<run id>` — so that neither a reboot
 * nor kcnd's AUTO_RESTART brings the identity back; then checks that no kcn process is left. An
 * unreachable host is returned, not thrown: the caller decides what else fences it. A kcnd or kcn still
 * running after the stop is a SafetyGateError.
 */
export async function fenceOverSsh(
  ctx: FailoverContext,
  ops: NodeOps,
  cn: NodeInventoryEntry,
  host: HostRef = cn.host,
): Promise<SshFence> {
  const node = { ...cn, host };
  try {
    await ops.service(host, node.service, 'stop');
    ctx.output(`stopped ${node.service} on ${host.name} (${host.address})`);
    for (const path of await fenceKeyPaths(ops, host, node.dataDir)) {
      if (!(await ops.exists(host, path))) continue;
      const aside = await freeAsidePath(ops, host, path, ctx.runId);
      await ops.move(host, path, aside);
      ctx.output(`moved ${path} aside to ${aside} on ${host.name}`);
    }
    const state = await daemonState(ops, node);
    if (state === 'active')
      throw new SafetyGateError(
        `${node.service} is still active on ${host.name} (${host.address}) after stop: fence it by hand, then start the failover again.`,
      );
    if (state === 'untracked')
      throw new SafetyGateError(`${untrackedMessage(node, 'after stop')}, then start the failover again.`);
    return { state: 'done' };
  } catch (error) {
    if (!(error instanceof HostError)) throw error;
    return { state: 'unreachable', reason: error.message };
  }
}

// --- standby mode ----------------------------------------------------------------------------------------

/**
 * The standby mode's SSH fence of the failed CN (fenceOverSsh). An unreachable host is recorded
 * (fenceSsh 'unreachable'), not thrown: a person then vouches for the fence.
 */
export async function fenceCnOverSsh(ctx: FailoverContext, ops: NodeOps, t: StandbyTarget): Promise<void> {
  const fence = await fenceOverSsh(ctx, ops, t.cn);
  if (fence.state === 'done') {
    ctx.setFact(STANDBY_FACTS.fenceSsh, 'done');
    return;
  }
  ctx.setFact(STANDBY_FACTS.fenceSsh, 'unreachable');
  ctx.setFact(STANDBY_FACTS.fenceSshError, fence.reason);
  ctx.output(`could not fence ${t.cn.name} over SSH: ${fence.reason}`);
}

/** Stops the failed CN's EC2 instance and waits until it is stopped; a failure is recorded (fenceEc2 'failed'). */
export async function stopCnInstance(
  ctx: FailoverContext,
  instanceId: string,
  timeoutMs: number,
): Promise<void> {
  try {
    const info = await ctx.ports.cloud.describeInstance(instanceId);
    if (info?.state !== 'stopped' && info?.state !== 'terminated') {
      await ctx.ports.cloud.stopInstance(instanceId);
      await ctx.ports.cloud.waitInstanceStopped(instanceId, { timeoutMs, signal: ctx.signal });
    }
    ctx.setFact(STANDBY_FACTS.fenceEc2, 'stopped');
    ctx.output(`EC2 instance ${instanceId} is stopped`);
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    ctx.setFact(STANDBY_FACTS.fenceEc2, 'failed');
    ctx.output(`could not stop EC2 instance ${instanceId}: ${describeError(error)}`);
  }
}

/** cellops could not finish the fence itself, so a person must vouch for it. */
export function needsFenceConfirmation(ctx: FailoverContext): boolean {
  return (
    ctx.fact<string>(STANDBY_FACTS.fenceSsh) === 'unreachable' ||
    ctx.fact<string>(STANDBY_FACTS.fenceEc2) === 'failed'
  );
}

/**
 * Health gate before the failed CN's identity starts on the standby: the old CN must not be back — not
 * answering as the failed CN, its instance not started again, and over SSH (tried even when the fence
 * needed a confirmation: a host that was unreachable may be back) no kcn running that could hold the key
 * and no key file of the failed CN where kcnd loads it.
 */
export async function refuseIfOldActiveIsBack(
  ctx: FailoverContext,
  ops: NodeOps,
  t: StandbyTarget,
): Promise<void> {
  const failedAddress = ctx.fact<string>(STANDBY_FACTS.failedAddress);
  if (failedAddress === undefined)
    throw new SafetyGateError(
      "The failed CN's address was not recorded by preflight; not starting the standby.",
    );
  const freshIdentity = await refuseIfAnswersAsFailed(ctx, t, failedAddress);
  await refuseIfInstanceRunsAgain(ctx, t);
  try {
    const state = await daemonState(ops, t.cn);
    if (state !== 'stopped' && !freshIdentity)
      throw new SafetyGateError(
        state === 'active'
          ? `${t.cn.service} is active again on ${t.cn.name} (something restarted it after fencing). Not starting ${t.standby.name}: fence ${t.cn.name} again and resume, or abort.`
          : `${untrackedMessage(t.cn, 'after fencing')}. Not starting ${t.standby.name} until then: resume once it is stopped, or abort.`,
      );
    for (const path of await fenceKeyPaths(ops, t.cn.host, t.cn.dataDir)) {
      const address = await keyFileAddress(ops, t.cn.host, path);
      if (address !== undefined && sameAddress(address, failedAddress))
        throw new SafetyGateError(
          `${t.role}'s nodekey is back at ${path} on ${t.cn.name} after fencing. Not starting ${t.standby.name}: move it aside again and resume, or abort.`,
        );
    }
    if (ctx.fact<string>(STANDBY_FACTS.fenceSsh) === 'unreachable')
      ctx.output(
        `${t.cn.name} is reachable over SSH again: kcnd is not running there and its key is not in place`,
      );
  } catch (error) {
    if (!(error instanceof HostError)) throw error;
    ctx.output(
      ctx.fact<string>(STANDBY_FACTS.fenceSsh) === 'done'
        ? `${t.cn.name} is no longer reachable over SSH (it was fenced earlier in this run)`
        : `${t.cn.name} is still unreachable over SSH; relying on the approver's confirmation that it is off or isolated`,
    );
  }
}

/** Throws when the old CN answers as the failed CN; true when it answers with a fresh key (no conflict). */
async function refuseIfAnswersAsFailed(
  ctx: FailoverContext,
  t: StandbyTarget,
  failedAddress: string,
): Promise<boolean> {
  const old = await probe(ctx.ports, t.cn, ctx.signal);
  if (!old.ok) return false;
  const address = await reportedAddress(ctx.ports, t.cn.endpoint, ctx.signal);
  if (address === undefined || sameAddress(address, failedAddress))
    throw new SafetyGateError(
      `${t.cn.name} came back during the run (it answers at height ${old.health.height}${address ? ` as ${address}` : ', address unknown'}). Not starting ${t.standby.name} with the same key: fence ${t.cn.name} again and resume, or abort.`,
    );
  ctx.output(
    `${t.cn.name} answers again but as ${address}, a fresh key (its own was moved aside): no conflict`,
  );
  return true;
}

async function refuseIfInstanceRunsAgain(ctx: FailoverContext, t: StandbyTarget): Promise<void> {
  if (!t.cn.instanceId || ctx.fact<string>(STANDBY_FACTS.fenceEc2) !== 'stopped') return;
  let state: string | undefined;
  try {
    state = (await ctx.ports.cloud.describeInstance(t.cn.instanceId))?.state;
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    ctx.output(`could not read the state of ${t.cn.instanceId} (${describeError(error)})`);
  }
  if (state === 'pending' || state === 'running')
    throw new SafetyGateError(
      `${t.cn.name}'s EC2 instance ${t.cn.instanceId} is ${state} again after it was stopped by this run. Not starting ${t.standby.name}: stop it again and resume, or abort.`,
    );
}

// --- snapshot mode ---------------------------------------------------------------------------------------

/** An instance that no longer runs anything: stopped, terminated, or not found. */
export function instanceGone(state: string | undefined): boolean {
  return state === undefined || state === 'stopped' || state === 'terminated';
}

/**
 * Fences the failed CN in snapshot mode (docs/runbooks.md §Snapshot failover, `fence-failed-cn`): the SSH
 * fence when its host answers (fenceOverSsh), then EC2 StopInstances, forced when it hangs, and it must then
 * be SEEN stopped (or gone): only after that may its nodekey be written anywhere. Throws unless it is.
 */
export async function fenceFailedInstance(
  ctx: FailoverContext,
  failed: { readonly instanceId: string; readonly host: HostRef; readonly node: NodeInventoryEntry },
  timings: SnapshotFailoverTimings,
): Promise<void> {
  const { cloud } = ctx.ports;
  const { instanceId } = failed;
  let info = await cloud.describeInstance(instanceId);
  if (!instanceGone(info?.state)) {
    ctx.output(await sshFenceBestEffort(ctx, failed.node, failed.host, timings.fenceSshMs));
    await cloud.stopInstance(instanceId);
    try {
      await cloud.waitInstanceStopped(instanceId, {
        timeoutMs: timings.instanceStoppedMs,
        signal: ctx.signal,
      });
    } catch (error) {
      if (ctx.signal.aborted) throw error;
      // An impaired host can hang in `stopping`; a forced stop is what the console's "Force stop" does.
      ctx.output(`${instanceId} did not stop in time (${describeError(error)}); forcing the stop`);
      await cloud.stopInstance(instanceId, { force: true });
      await cloud.waitInstanceStopped(instanceId, {
        timeoutMs: timings.instanceStoppedMs,
        signal: ctx.signal,
      });
    }
    info = await cloud.describeInstance(instanceId);
  }
  if (!instanceGone(info?.state))
    throw new SafetyGateError(`${instanceId} is ${info?.state}, not stopped: the failed CN is not fenced`);
  ctx.output(`${ctx.params.cn}'s instance ${instanceId} is ${info?.state ?? 'gone'}: fenced`);
}

/** Throws unless the failed CN's instance is seen stopped (or gone) now: the gate before its key is used. */
export async function requireFailedInstanceStopped(ctx: FailoverContext, instanceId: string): Promise<void> {
  const state = (await ctx.ports.cloud.describeInstance(instanceId))?.state;
  if (!instanceGone(state))
    throw new SafetyGateError(
      `${ctx.params.cn}'s old instance ${instanceId} is ${state}, not stopped: two nodes must never run one nodekey. Fence it again (resume from "Fence the failed CN") or stop it by hand, then resume.`,
    );
}

/**
 * The SSH fence before StopInstances, as a best effort: an unreachable CN is the usual case, and a kcnd
 * that will not stop is stopped with its instance. Never throws (but for an abort); says what it did.
 */
async function sshFenceBestEffort(
  ctx: FailoverContext,
  node: NodeInventoryEntry,
  host: HostRef,
  timeoutMs: number,
): Promise<string> {
  try {
    const fence = await fenceOverSsh(ctx, opsOf(ctx, timeoutMs), node, host);
    return fence.state === 'done'
      ? `over SSH: ${node.service} stopped on ${host.name} ${host.address} and its key files moved aside (suffix .cellops-${ctx.runId})`
      : `over SSH: ${host.name} ${host.address} could not be reached (${fence.reason}); stopping its instance fences it`;
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    return `over SSH: ${host.name} ${host.address} could not be fenced (${describeError(error)}); stopping its instance fences it`;
  }
}
