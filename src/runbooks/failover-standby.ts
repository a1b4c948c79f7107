/**
 * `failover` in mode standby (DESIGN.md §2.1): the active-standby procedure of the Kaia HA guide, with the
 * safety the guide leaves out — fencing the failed CN before its key starts anywhere else, validating the
 * backup key, refusing a legacy `$DATA_DIR/nodekey` that would shadow the installed one, carrying the
 * bls-nodekey, and checking after start that the standby really runs as the failed CN.
 *
 * Facts recorded (never a key): see STANDBY_FACTS. Files moved aside by a run are named
 * `<path>.cellops-<runId>`, so undo finds them without relying on facts.
 */
import type { FailoverParams } from './failover-params.js';
import type { PlanContext, StepContext, StepDefinition } from './types.js';
import type { NodeInventoryEntry } from '../config/config.js';
import type { NodeEndpoint } from '../ports/node-rpc.js';
import {
  PROBE_TIMEOUT_MS,
  probe,
  proxyNodes,
  referenceHeight,
  resolveStandby,
  type StandbyTarget,
} from './cell-nodes.js';
import {
  asidePath,
  blsBackupPath,
  createNodeOps,
  ipOf,
  nodeCommands,
  nodeKeyPaths,
  onHost,
  type NodeOps,
} from './node-ops.js';
import {
  describeNodekeyProblem,
  nodeAddressFromKey,
  nodeIdFromKey,
  nodekeyChecksum,
  nodekeyProblem,
  sameAddress,
} from './nodekey.js';
import { ExternalError, HostError, SafetyGateError, describeError } from '../errors.js';
import { formatDuration } from '../config/duration.js';

type Ctx = StepContext<FailoverParams>;
type Plan = PlanContext<FailoverParams>;

/** Keys of the facts this runbook records. Values are addresses, ids, checksums and flags, never keys. */
export const STANDBY_FACTS = {
  startedAt: 'startedAt',
  /** The failed CN's node address, derived from the backup key. */
  failedAddress: 'failedAddress',
  failedNodeId: 'failedNodeId',
  /** sha256 of the backup file. */
  backupChecksum: 'backupChecksum',
  /** The standby's own address before the swap. */
  standbyAddress: 'standbyAddress',
  /** 'done' when kcnd was stopped and the key moved aside over SSH; 'unreachable' when SSH failed. */
  fenceSsh: 'fenceSsh',
  fenceSshError: 'fenceSshError',
  /** 'stopped' when the EC2 instance was stopped, 'failed' when stopping it failed, absent otherwise. */
  fenceEc2: 'fenceEc2',
  fenceConfirmed: 'fenceConfirmed',
  /** Set by Verify when every check passed, so that a Verify interrupted midway runs again in full. */
  verifiedAt: 'verifiedAt',
  ipPreviousInstance: 'ipPreviousInstance',
  ipMoveConfirmed: 'ipMoveConfirmed',
  blsSource: 'blsSource',
  timeToRecoverMs: 'timeToRecoverMs',
} as const;

/** How long Verify waits for the standby to load its key, find CN peers, catch up and sign. */
export const VERIFY_DEADLINE_MS = 5 * 60_000;
/** Wait between the two height samples that tell a stalled active from a slow probe. */
const STALL_SAMPLE_MAX_MS = 5_000;
/** Blocks inspected for the standby's signature. */
const SIGNING_WINDOW = 30;
const EC2_STOP_TIMEOUT_MS = 5 * 60_000;

function target(ctx: Plan | Ctx): StandbyTarget {
  return resolveStandby(ctx.config, ctx.params.cn);
}

function opsOf(ctx: Ctx): NodeOps {
  return createNodeOps({ shell: ctx.ports.shell, config: ctx.config, signal: ctx.signal });
}

function addressText(ctx: Plan | Ctx, cn: string): string {
  const address = ctx.fact<string>(STANDBY_FACTS.failedAddress);
  return address
    ? `${cn}'s node address ${address}`
    : `${cn}'s node address (read from the backup in preflight)`;
}

function short(checksum: string): string {
  return `sha256 ${checksum.slice(0, 12)}…`;
}

function lagOf(height: number, reference: number): number {
  return Math.max(0, reference - height);
}

/** Reads and validates the backup nodekey; the content stays in this call's memory. */
async function readBackup(ctx: Ctx, ops: NodeOps, t: StandbyTarget): Promise<string> {
  const where = `${t.backupHost.name}:${t.backupPath}`;
  const content = await ops.readFile(t.backupHost.host, t.backupPath);
  if (content === undefined)
    throw new SafetyGateError(
      `There is no nodekey backup of ${t.cn.name} at ${where}. Without it the standby cannot take over ${t.cn.name}'s identity; restore the backup (or run /cell backup-nodekey ${t.cn.name} while ${t.cn.name} is healthy) and start again.`,
    );
  const problem = nodekeyProblem(content);
  if (problem)
    throw new SafetyGateError(
      `The nodekey backup at ${where} is malformed: ${describeNodekeyProblem(problem)}. kcnd would silently generate a fresh key from it and the standby would not run as ${t.cn.name}; nothing was installed. Replace the backup with the 64-hex-character key and start again.`,
    );
  return content;
}

const BLS_KEY = /^(0x)?[0-9a-fA-F]{64}$/;

/** The backup's bls-nodekey when one sits next to it; validated like kcnd loads it (trimmed, optional 0x). */
async function readBlsBackup(ops: NodeOps, t: StandbyTarget): Promise<string | undefined> {
  const path = blsBackupPath(t.backupPath);
  const content = await ops.readFile(t.backupHost.host, path);
  if (content === undefined) return undefined;
  if (!BLS_KEY.test(content.trim()))
    throw new SafetyGateError(
      `The bls-nodekey backup at ${t.backupHost.name}:${path} is malformed (expected 64 hex characters): the node's proposals would be rejected with a wrong BLS key. Fix or remove that file and start again.`,
    );
  return content;
}

async function refuseLegacyKeys(ops: NodeOps, node: NodeInventoryEntry): Promise<void> {
  const paths = nodeKeyPaths(node.dataDir);
  for (const legacy of [paths.legacyNodekey, paths.legacyBlsNodekey]) {
    if (await ops.exists(node.host, legacy))
      throw new SafetyGateError(
        `${node.name} has a file at the legacy location ${legacy}, which kcnd loads instead of ${legacy.replace(/\/([^/]+)$/, '/klay/$1')}: the installed key would be shadowed. Move it away on ${node.name} (it is ${node.name}'s own identity, keep it), then start again.`,
      );
  }
}

/** The address a node's rpc reports, or undefined when it does not answer. */
async function reportedAddress(ctx: Ctx, endpoint: NodeEndpoint): Promise<string | undefined> {
  try {
    return await ctx.ports.rpc.nodeAddress(endpoint, { timeoutMs: PROBE_TIMEOUT_MS, signal: ctx.signal });
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    return undefined;
  }
}

async function backupChecksumOf(ctx: Ctx, ops: NodeOps, t: StandbyTarget): Promise<string | undefined> {
  return (
    ctx.fact<string>(STANDBY_FACTS.backupChecksum) ?? (await ops.sha256(t.backupHost.host, t.backupPath))
  );
}

/**
 * Puts the standby's own identity back: the nodekey and bls-nodekey moved aside by this run, or — when the
 * standby had none — removes what the run installed. Safe to call more than once.
 */
async function restoreStandbyKeys(ctx: Ctx, ops: NodeOps, t: StandbyTarget): Promise<void> {
  const host = t.standby.host;
  const paths = nodeKeyPaths(t.standby.dataDir);
  const keyAside = asidePath(paths.nodekey, ctx.runId);
  const blsAside = asidePath(paths.blsNodekey, ctx.runId);
  let touched = false;
  if (await ops.exists(host, keyAside)) {
    await ops.move(host, keyAside, paths.nodekey);
    ctx.output(`restored ${t.standby.name}'s own nodekey from ${keyAside}`);
    touched = true;
  } else {
    const failedSum = await backupChecksumOf(ctx, ops, t);
    const current = await ops.sha256(host, paths.nodekey);
    if (current !== undefined && current === failedSum) {
      await ops.remove(host, paths.nodekey);
      ctx.output(
        `removed ${t.cn.name}'s nodekey from ${t.standby.name} (it had no key of its own; kcnd generates one at start)`,
      );
      touched = true;
    }
  }
  if (await ops.exists(host, blsAside)) {
    await ops.move(host, blsAside, paths.blsNodekey);
    ctx.output(`restored ${t.standby.name}'s own bls-nodekey`);
  } else if (touched && (await ops.exists(host, paths.blsNodekey))) {
    // The standby had no bls-nodekey of its own: what is there now belongs to the failed CN's identity.
    await ops.remove(host, paths.blsNodekey);
    ctx.output(
      `removed ${t.cn.name}'s bls-nodekey from ${t.standby.name} (kcnd derives the standby's own at start)`,
    );
  }
}

function withHost<T>(what: string, fn: () => Promise<T>): Promise<T> {
  return fn().catch((error: unknown) => {
    if (error instanceof HostError) throw new SafetyGateError(`${what}: ${error.message}`);
    throw error;
  });
}

/**
 * Whether the node's daemon is really down. `systemctl is-active` alone cannot say: kcnd's AUTO_RESTART
 * restarts kcn through the init script, outside systemd, so the unit can read inactive (and `systemctl
 * stop` do nothing) while a kcn process runs with the key it loaded. 'untracked' is that case.
 */
async function daemonState(
  ops: NodeOps,
  node: NodeInventoryEntry,
): Promise<'stopped' | 'active' | 'untracked'> {
  if (await ops.isActive(node.host, node.service)) return 'active';
  if (await ops.processAlive(node.host, node.endpoint.binary)) return 'untracked';
  return 'stopped';
}

function untrackedMessage(node: NodeInventoryEntry, when: string): string {
  return `a ${node.endpoint.binary} process still runs on ${node.name} ${when} although systemd reports ${node.service} inactive: kcnd's AUTO_RESTART (or a watchdog) restarted it outside systemd, so \`systemctl stop\` cannot reach it and it may hold its key in memory. Stop it by hand on ${node.name} (\`sudo /etc/init.d/${node.service} stop\`, then \`pgrep -x ${node.endpoint.binary}\` must print nothing)`;
}

/** A free name to move `path` aside to: never overwrites an earlier copy (it may be the only one left). */
async function freeAsidePath(
  ops: NodeOps,
  host: NodeInventoryEntry['host'],
  path: string,
  runId: string,
): Promise<string> {
  const base = asidePath(path, runId);
  if (!(await ops.exists(host, base))) return base;
  for (let n = 2; ; n++) {
    const candidate = `${base}-${n}`;
    if (!(await ops.exists(host, candidate))) return candidate;
  }
}

/** The address of a valid nodekey file on a host, or undefined (absent or malformed). Never returns the key. */
async function keyFileAddress(
  ops: NodeOps,
  node: NodeInventoryEntry,
  path: string,
): Promise<string | undefined> {
  const content = await ops.readFile(node.host, path);
  return content !== undefined && nodekeyProblem(content) === undefined
    ? nodeAddressFromKey(content)
    : undefined;
}

/** The key file kcnd loads on the node: the legacy `$DATA_DIR/nodekey` when present, else `klay/nodekey`. */
async function effectiveKeyPath(ops: NodeOps, node: NodeInventoryEntry): Promise<string> {
  const p = nodeKeyPaths(node.dataDir);
  return (await ops.exists(node.host, p.legacyNodekey)) ? p.legacyNodekey : p.nodekey;
}

// ---------------------------------------------------------------------------------------------------------

const preflight: StepDefinition<FailoverParams> = {
  id: 'preflight',
  title: 'Preflight: is the failover needed and safe?',
  destructive: false,
  readOnly: true,
  describe(ctx) {
    const t = target(ctx);
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
      `• ${t.standby.name} runs a key of its own (not ${t.cn.name}'s) and has no legacy ${p.legacyNodekey} or ${p.legacyBlsNodekey} that would shadow the installed key.`,
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
    const t = target(ctx);
    const ops = opsOf(ctx);
    const { lagBlocks } = ctx.config.monitor;
    if (ctx.fact<number>(STANDBY_FACTS.startedAt) === undefined)
      ctx.setFact(STANDBY_FACTS.startedAt, ctx.ports.clock.now());

    const role = await ctx.ports.state.role(t.cn.name);
    if (role && role.servedBy !== t.cn.name)
      throw new SafetyGateError(
        `${t.cn.name} is already served by ${role.servedBy} (since run ${role.runId}): its standby is in use, so there is nothing to fail over to. Fail back by hand, then record the roles again.`,
      );

    // 1. The active must really be unhealthy, unless this is a switchover.
    const reference = await referenceHeight(ctx.ports, ctx.config, ctx.signal);
    const active = await probe(ctx.ports, t.cn, ctx.signal);
    let verdict: string | undefined;
    if (!active.ok) verdict = `${t.cn.name} does not answer (${active.reason})`;
    else if (lagOf(active.health.height, reference.height) > lagBlocks)
      verdict = `${t.cn.name} is ${lagOf(active.health.height, reference.height)} blocks behind the PNs (height ${active.health.height}, reference ${reference.height})`;
    else {
      const waitMs = Math.min(ctx.config.monitor.stallMs, STALL_SAMPLE_MAX_MS);
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

    // 2. The standby is reachable, running and in sync.
    const standbyActive = await withHost(`The standby ${t.standby.name} cannot be reached over SSH`, () =>
      ops.isActive(t.standby.host, t.standby.service),
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

    // 3. The backup exists, is well formed, and is the failed CN's key.
    const backup = await withHost(
      `The nodekey backup host ${t.backupHost.name} cannot be reached over SSH`,
      () => readBackup(ctx, ops, t),
    );
    const address = nodeAddressFromKey(backup);
    const nodeId = nodeIdFromKey(backup);
    const checksum = nodekeyChecksum(backup);
    const recorded = await ctx.ports.state.nodekeyBackup(t.cn.name);
    if (recorded && recorded.checksum !== checksum)
      throw new SafetyGateError(
        `The nodekey backup at ${t.backupHost.name}:${t.backupPath} is not the one recorded by run ${recorded.runId} (${short(recorded.checksum)}, address ${recorded.nodeAddress}); it now holds address ${address}. Find out who changed it before going on.`,
      );
    if (!recorded)
      ctx.output(
        `no backup of ${t.cn.name} was recorded by cellops yet; relying on the file and on ${t.cn.name}'s own report`,
      );
    const activeAddress = active.ok ? await reportedAddress(ctx, t.cn.endpoint) : undefined;
    if (activeAddress !== undefined && !sameAddress(activeAddress, address))
      throw new SafetyGateError(
        `The nodekey backup at ${t.backupHost.name}:${t.backupPath} holds address ${address}, but ${t.cn.name} runs as ${activeAddress}: it is not ${t.cn.name}'s key. Fix the backup before failing over.`,
      );
    // A failed CN usually does not answer, so also compare with the key file it would load, when it can be read.
    try {
      const path = await effectiveKeyPath(ops, t.cn);
      const fileAddress = await keyFileAddress(ops, t.cn, path);
      if (fileAddress !== undefined && !sameAddress(fileAddress, address))
        throw new SafetyGateError(
          `The nodekey backup at ${t.backupHost.name}:${t.backupPath} holds address ${address}, but ${t.cn.name}:${path} (the key its kcnd loads) holds ${fileAddress}: the backup is not ${t.cn.name}'s key. Fix the backup before failing over.`,
        );
      if (fileAddress !== undefined) ctx.output(`${t.cn.name}:${path} holds the same key as the backup`);
    } catch (error) {
      if (error instanceof SafetyGateError || ctx.signal.aborted) throw error;
      ctx.output(`could not read ${t.cn.name}'s own key file to compare (${describeError(error)})`);
    }
    // The backup must not be the key of another node that runs now (a copy of the wrong CN's key).
    const others = Object.values(ctx.config.nodes).filter(
      (n) => n.role !== 'pn' && n.name !== t.cn.name && n.name !== t.standby.name,
    );
    const running = await Promise.all(others.map((n) => reportedAddress(ctx, n.endpoint)));
    others.forEach((other, i) => {
      const runs = running[i];
      if (runs !== undefined && sameAddress(runs, address))
        throw new SafetyGateError(
          `The nodekey backup at ${t.backupHost.name}:${t.backupPath} holds address ${address}, which ${other.name} runs right now: it is not ${t.cn.name}'s key, and starting it on ${t.standby.name} would double-sign. Fix the backup before failing over.`,
        );
    });
    ctx.output(
      `backup of ${t.cn.name}: node address ${address}, node ID ${nodeId.slice(0, 16)}…, ${short(checksum)}`,
    );

    // 4. The standby runs its own key, and nothing at the legacy location would shadow the new one.
    await refuseLegacyKeys(ops, t.standby);
    const paths = nodeKeyPaths(t.standby.dataDir);
    const standbyKey = await ops.readFile(t.standby.host, paths.nodekey);
    const fileAddress =
      standbyKey !== undefined && nodekeyProblem(standbyKey) === undefined
        ? nodeAddressFromKey(standbyKey)
        : undefined;
    const runningAddress = await reportedAddress(ctx, t.standby.endpoint);
    for (const own of [fileAddress, runningAddress]) {
      if (own !== undefined && sameAddress(own, address))
        throw new SafetyGateError(
          `The standby ${t.standby.name} already runs ${t.cn.name}'s key (address ${address}): two nodes with one nodekey double-sign. Give the standby its own key, then start again.`,
        );
    }
    const standbyAddress = runningAddress ?? fileAddress;
    if (standbyAddress !== undefined) ctx.setFact(STANDBY_FACTS.standbyAddress, standbyAddress.toLowerCase());
    ctx.output(`${t.standby.name} runs its own key (address ${standbyAddress ?? 'unknown'})`);

    if (t.failover.ip.method === 'eip' && !t.standby.instanceId)
      throw new SafetyGateError(
        `${t.cn.name} moves its IP as an Elastic IP, but the standby ${t.standby.name} has no instanceId to associate it with: set nodes.${t.standby.name}.instanceId.`,
      );

    // Recorded last: they are what `verify` reads as "preflight passed".
    ctx.setFact(STANDBY_FACTS.failedAddress, address);
    ctx.setFact(STANDBY_FACTS.failedNodeId, nodeId);
    ctx.setFact(STANDBY_FACTS.backupChecksum, checksum);
  },
};

const fence: StepDefinition<FailoverParams> = {
  id: 'fence-old-active',
  title: 'Fence the old active',
  destructive: true,
  timeoutMs: EC2_STOP_TIMEOUT_MS + 60_000,
  describe(ctx) {
    const t = target(ctx);
    const p = nodeKeyPaths(t.cn.dataDir);
    const lines = [
      `So that ${t.cn.name} can never run alongside ${t.standby.name} with the same key (two nodes with one nodekey double-sign):`,
      `• ${onHost(t.cn.host, nodeCommands.service(ctx.config, 'stop', t.cn.service))}`,
      `• ${onHost(t.cn.host, nodeCommands.move(p.nodekey, asidePath(p.nodekey, '<run id>')))}, and the same for the legacy ${p.legacyNodekey} if present — so that neither a reboot nor kcnd's AUTO_RESTART brings ${t.cn.name} back with its identity.`,
      `• Then ${onHost(t.cn.host, nodeCommands.service(ctx.config, 'is-active', t.cn.service))} must say inactive and ${onHost(t.cn.host, nodeCommands.processAlive(t.cn.endpoint.binary))} must find no process (AUTO_RESTART restarts kcn outside systemd); otherwise the run stops here.`,
    ];
    if (t.cn.instanceId) lines.push(`• EC2 StopInstances ${t.cn.instanceId}, then wait until it is stopped.`);
    lines.push(
      `If ${t.cn.name} cannot be reached over SSH${t.cn.instanceId ? ', or its instance cannot be stopped' : ''}, the next step asks an approver to confirm that it is powered off or isolated. Not undone automatically: bring ${t.cn.name} back by hand.`,
    );
    return lines.join('\n');
  },
  async run(ctx) {
    const t = target(ctx);
    const ops = opsOf(ctx);
    const host = t.cn.host;
    const p = nodeKeyPaths(t.cn.dataDir);
    try {
      await ops.service(host, t.cn.service, 'stop');
      ctx.output(`stopped ${t.cn.service} on ${t.cn.name}`);
      for (const path of [p.nodekey, p.legacyNodekey]) {
        if (!(await ops.exists(host, path))) continue;
        const aside = await freeAsidePath(ops, host, path, ctx.runId);
        await ops.move(host, path, aside);
        ctx.output(`moved ${path} aside to ${aside} on ${t.cn.name}`);
      }
      const state = await daemonState(ops, t.cn);
      if (state === 'active')
        throw new SafetyGateError(
          `${t.cn.service} is still active on ${t.cn.name} after stop: fence it by hand, then start the failover again.`,
        );
      if (state === 'untracked')
        throw new SafetyGateError(`${untrackedMessage(t.cn, 'after stop')}, then start the failover again.`);
      ctx.setFact(STANDBY_FACTS.fenceSsh, 'done');
    } catch (error) {
      if (!(error instanceof HostError)) throw error;
      ctx.setFact(STANDBY_FACTS.fenceSsh, 'unreachable');
      ctx.setFact(STANDBY_FACTS.fenceSshError, error.message);
      ctx.output(`could not fence ${t.cn.name} over SSH: ${error.message}`);
    }
    if (t.cn.instanceId) {
      try {
        const info = await ctx.ports.cloud.describeInstance(t.cn.instanceId);
        if (info?.state !== 'stopped' && info?.state !== 'terminated') {
          await ctx.ports.cloud.stopInstance(t.cn.instanceId);
          await ctx.ports.cloud.waitInstanceStopped(t.cn.instanceId, {
            timeoutMs: EC2_STOP_TIMEOUT_MS,
            signal: ctx.signal,
          });
        }
        ctx.setFact(STANDBY_FACTS.fenceEc2, 'stopped');
        ctx.output(`EC2 instance ${t.cn.instanceId} is stopped`);
      } catch (error) {
        if (ctx.signal.aborted) throw error;
        ctx.setFact(STANDBY_FACTS.fenceEc2, 'failed');
        ctx.output(`could not stop EC2 instance ${t.cn.instanceId}: ${describeError(error)}`);
      }
    }
    if (needsFenceConfirmation(ctx))
      ctx.output(`an approver must now confirm that ${t.cn.name} is powered off or isolated`);
  },
  async verify(ctx) {
    const t = target(ctx);
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

/** cellops could not finish the fence itself, so a person must vouch for it. */
function needsFenceConfirmation(ctx: Ctx): boolean {
  return (
    ctx.fact<string>(STANDBY_FACTS.fenceSsh) === 'unreachable' ||
    ctx.fact<string>(STANDBY_FACTS.fenceEc2) === 'failed'
  );
}

const confirmFenced: StepDefinition<FailoverParams> = {
  id: 'confirm-old-active-off',
  title: 'Confirm the old active is powered off or isolated',
  destructive: true,
  kind: 'manual',
  describe(ctx) {
    const t = target(ctx);
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
      `Approve ONLY after you have made sure, outside cellops, that ${t.cn.name} is powered off or cut off from the network and cannot come back with its nodekey: ${t.standby.name} is about to start as ${addressText(ctx, t.cn.name)}, and two nodes running one nodekey double-sign.`,
    );
    return lines.join('\n');
  },
  async when(ctx) {
    return needsFenceConfirmation(ctx);
  },
  async run(ctx) {
    const t = target(ctx);
    ctx.setFact(STANDBY_FACTS.fenceConfirmed, true);
    ctx.output(`an approver confirmed that ${t.cn.name} is powered off or isolated`);
  },
  async verify(ctx) {
    return ctx.fact<boolean>(STANDBY_FACTS.fenceConfirmed) === true;
  },
};

async function startStandbyService(ctx: Ctx, ops: NodeOps, t: StandbyTarget): Promise<void> {
  // Never start the standby while it holds the failed CN's key: that is only for "Start kcnd on the standby".
  const paths = nodeKeyPaths(t.standby.dataDir);
  const current = await ops.sha256(t.standby.host, paths.nodekey);
  const failedSum = await backupChecksumOf(ctx, ops, t);
  if (current !== undefined && current === failedSum)
    throw new SafetyGateError(
      `Not restarting ${t.standby.service} on ${t.standby.name}: it still holds ${t.cn.name}'s nodekey. Restore its own key first.`,
    );
  await ops.service(t.standby.host, t.standby.service, 'start');
  ctx.output(`started ${t.standby.service} on ${t.standby.name} again with its own key`);
}

const stopStandby: StepDefinition<FailoverParams> = {
  id: 'stop-standby',
  title: 'Stop kcnd on the standby',
  destructive: true,
  describe(ctx) {
    const t = target(ctx);
    return [
      `Checks that ${t.standby.name} is still within ${ctx.config.monitor.lagBlocks} blocks of the PNs, then runs ${onHost(t.standby.host, nodeCommands.service(ctx.config, 'stop', t.standby.service))}.`,
      `Undo: start ${t.standby.service} on ${t.standby.name} again (only with its own key in place).`,
    ].join('\n');
  },
  async run(ctx) {
    const t = target(ctx);
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
    const t = target(ctx);
    return (await daemonState(opsOf(ctx), t.standby)) === 'stopped';
  },
  async undo(ctx) {
    const t = target(ctx);
    const ops = opsOf(ctx);
    if (await ops.isActive(t.standby.host, t.standby.service)) return;
    await startStandbyService(ctx, ops, t);
  },
};

const replaceNodekey: StepDefinition<FailoverParams> = {
  id: 'replace-nodekey',
  title: "Install the failed CN's nodekey on the standby",
  destructive: true,
  describe(ctx) {
    const t = target(ctx);
    const p = nodeKeyPaths(t.standby.dataDir);
    const blsBackup = blsBackupPath(t.backupPath);
    const h = t.standby.host;
    return [
      `Replaces ${t.standby.name}'s identity with ${addressText(ctx, t.cn.name)}. The key travels through memory and stdin; it is never logged or posted.`,
      `• Refuses if ${p.legacyNodekey} or ${p.legacyBlsNodekey} exists on ${t.standby.name} (kcnd would load it instead), or if ${t.standby.service} or a ${t.standby.endpoint.binary} process is running there.`,
      `• Reads and validates the backup: ${onHost(t.backupHost.host, nodeCommands.read(t.backupPath))} (64 hex characters, no 0x).`,
      `• Keeps ${t.standby.name}'s own keys for rollback: ${onHost(h, nodeCommands.move(p.blsNodekey, asidePath(p.blsNodekey, '<run id>')))} and ${onHost(h, nodeCommands.move(p.nodekey, asidePath(p.nodekey, '<run id>')))}.`,
      `• Writes the key with mode 0600: ${onHost(h, nodeCommands.write(p.nodekey))} (key on stdin), then checks ${onHost(h, nodeCommands.sha256(p.nodekey))} against the backup's checksum.`,
      `• bls-nodekey: copies ${t.backupHost.name}:${blsBackup} to ${p.blsNodekey} the same way if it exists; otherwise leaves none so that kcnd derives it from the nodekey at start.`,
      `Undo: if kcnd (or a kcn process) runs on ${t.standby.name}, ${onHost(h, nodeCommands.service(ctx.config, 'stop', t.standby.service))} first; then moves ${t.standby.name}'s own nodekey and bls-nodekey back (or removes ${t.cn.name}'s when ${t.standby.name} had none).`,
    ].join('\n');
  },
  async run(ctx) {
    const t = target(ctx);
    const ops = opsOf(ctx);
    const host = t.standby.host;
    const p = nodeKeyPaths(t.standby.dataDir);
    await refuseLegacyKeys(ops, t.standby);
    if ((await daemonState(ops, t.standby)) !== 'stopped')
      throw new SafetyGateError(
        `${t.standby.service} (or a ${t.standby.endpoint.binary} process) is running on ${t.standby.name}: it must be stopped before its key is replaced.`,
      );
    const backup = await readBackup(ctx, ops, t);
    const expected = ctx.fact<string>(STANDBY_FACTS.failedAddress);
    const address = nodeAddressFromKey(backup);
    if (expected !== undefined && !sameAddress(expected, address))
      throw new SafetyGateError(
        `The nodekey backup changed during the run: it now holds ${address}, not ${expected} as in preflight. Nothing was installed.`,
      );
    const bls = await readBlsBackup(ops, t);
    try {
      for (const path of [p.blsNodekey, p.nodekey]) {
        const aside = asidePath(path, ctx.runId);
        // An earlier attempt already kept the standby's own file: what is there now may be the failed CN's.
        if ((await ops.exists(host, path)) && !(await ops.exists(host, aside))) {
          await ops.move(host, path, aside);
          ctx.output(
            `kept ${t.standby.name}'s own ${path.slice(path.lastIndexOf('/') + 1)} aside as ${aside}`,
          );
        }
      }
      await ops.writeFile(host, p.nodekey, backup);
      const written = await ops.sha256(host, p.nodekey);
      if (written !== nodekeyChecksum(backup))
        throw new ExternalError(
          'checksum_mismatch',
          `The nodekey written to ${t.standby.name}:${p.nodekey} does not match the backup (${written ? short(written) : 'missing'} vs ${short(nodekeyChecksum(backup))}).`,
        );
      ctx.output(`installed ${t.cn.name}'s nodekey at ${p.nodekey} (mode 0600, ${short(written)} verified)`);
      if (bls !== undefined) {
        await ops.writeFile(host, p.blsNodekey, bls);
        const blsSum = await ops.sha256(host, p.blsNodekey);
        if (blsSum !== nodekeyChecksum(bls))
          throw new ExternalError(
            'checksum_mismatch',
            `The bls-nodekey written to ${t.standby.name}:${p.blsNodekey} does not match the backup.`,
          );
        ctx.setFact(STANDBY_FACTS.blsSource, 'backup');
        ctx.output(
          `installed ${t.cn.name}'s bls-nodekey from ${blsBackupPath(t.backupPath)} (checksum verified)`,
        );
      } else {
        ctx.setFact(STANDBY_FACTS.blsSource, 'derived');
        ctx.output(
          `no bls-nodekey next to the backup: none left on ${t.standby.name}, so kcnd derives ${t.cn.name}'s from the nodekey at start (right when its registered BLS key was derived, the default)`,
        );
      }
    } catch (error) {
      // Leave the standby as it was rather than holding a half-installed identity.
      try {
        await restoreStandbyKeys(ctx, ops, t);
      } catch (restoreError) {
        ctx.output(
          `could not restore ${t.standby.name}'s own key: ${describeError(restoreError)}; run the undo`,
        );
      }
      throw error;
    }
  },
  async verify(ctx) {
    const t = target(ctx);
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
    const t = target(ctx);
    const ops = opsOf(ctx);
    // kcn keeps the key it loaded: swapping files under a running standby (say "Start kcnd on the standby"
    // timed out after kcn did start) would leave it running as the failed CN while its files say otherwise.
    if ((await daemonState(ops, t.standby)) !== 'stopped') {
      await ops.service(t.standby.host, t.standby.service, 'stop');
      if ((await daemonState(ops, t.standby)) !== 'stopped')
        throw new SafetyGateError(
          `Could not stop ${t.standby.service} on ${t.standby.name} before restoring its own key: it may still run as ${t.cn.name}. Stop it by hand and restore ${nodeKeyPaths(t.standby.dataDir).nodekey} from ${asidePath(nodeKeyPaths(t.standby.dataDir).nodekey, ctx.runId)}.`,
        );
      ctx.output(`stopped ${t.standby.service} on ${t.standby.name} before restoring its own key`);
    }
    await restoreStandbyKeys(ctx, ops, t);
  },
};

const moveIp: StepDefinition<FailoverParams> = {
  id: 'move-ip',
  title: "Move the active's IP to the standby",
  destructive: true,
  describe(ctx) {
    const t = target(ctx);
    const ip = t.failover.ip;
    if (ip.method === 'alias') {
      const { address, device } = ip;
      return [
        `• ${onHost(t.standby.host, nodeCommands.ipAddr('add', address, device))}`,
        `• ${onHost(t.standby.host, nodeCommands.gratuitousArp(device, ipOf(address)))} (skipped with a note when arping is not installed)`,
        `• ${onHost(t.cn.host, nodeCommands.ipAddr('del', address, device))} when ${t.cn.name} is reachable and still holds it, then the gratuitous ARP from ${t.standby.name} once more. If ${t.cn.name} answers but the del fails, the address is taken off ${t.standby.name} again and the run stops (never on two hosts).`,
        `Undo: the reverse — delete it on ${t.standby.name}, add it back on ${t.cn.name} when reachable.`,
      ].join('\n');
    }
    if (ip.method === 'eip')
      return [
        `EC2 AssociateAddress ${ip.allocationId} → instance ${t.standby.instanceId ?? '(standby has no instanceId)'} with AllowReassociation, taking it from whichever instance holds it.`,
        `Undo: associate it back with the instance that held it before.`,
      ].join('\n');
    return `Not needed here: ${t.cn.name} moves its IP by hand (next step).`;
  },
  async when(ctx) {
    return target(ctx).failover.ip.method !== 'manual';
  },
  async run(ctx) {
    const t = target(ctx);
    const ip = t.failover.ip;
    if (ip.method === 'alias') {
      const ops = opsOf(ctx);
      const { address, device } = ip;
      let added = false;
      if (!(await ops.addresses(t.standby.host, device)).includes(address)) {
        await ops.ipAdd(t.standby.host, address, device);
        added = true;
        ctx.output(`added ${address} to ${device} on ${t.standby.name}`);
      } else ctx.output(`${address} is already on ${device} of ${t.standby.name}`);
      ctx.output((await ops.gratuitousArp(t.standby.host, device, ipOf(address))).note);
      try {
        if ((await ops.addresses(t.cn.host, device)).includes(address)) {
          try {
            await ops.ipDel(t.cn.host, address, device);
          } catch (error) {
            if (error instanceof HostError) throw error;
            // cn1 answers but keeps the address: on two hosts, both answer ARP for it and peers' traffic
            // flaps between them. Do not leave it so: take it off the standby again and stop.
            if (added) {
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
          ctx.output(`removed ${address} from ${device} on ${t.cn.name}`);
          // Neighbours that asked while both hosts held the address may have learned cn1's MAC: announce again.
          ctx.output((await ops.gratuitousArp(t.standby.host, device, ipOf(address))).note);
        }
      } catch (error) {
        if (!(error instanceof HostError)) throw error;
        ctx.output(
          `could not reach ${t.cn.name} to remove ${address} from it (${error.message}); it is fenced, remove the address when it comes back`,
        );
      }
      return;
    }
    if (ip.method === 'eip') {
      const instanceId = t.standby.instanceId;
      if (!instanceId)
        throw new SafetyGateError(
          `The standby ${t.standby.name} has no instanceId to move the Elastic IP to.`,
        );
      const before = await ctx.ports.cloud.describeAddress(ip.allocationId);
      if (ctx.fact(STANDBY_FACTS.ipPreviousInstance) === undefined)
        ctx.setFact(STANDBY_FACTS.ipPreviousInstance, before?.instanceId ?? null);
      await ctx.ports.cloud.associateAddress(ip.allocationId, instanceId);
      ctx.output(
        `associated ${ip.allocationId}${before?.publicIp ? ` (${before.publicIp})` : ''} with ${instanceId}`,
      );
    }
  },
  async verify(ctx) {
    const t = target(ctx);
    const ip = t.failover.ip;
    if (ip.method === 'alias') {
      const ops = opsOf(ctx);
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
    if (ip.method === 'eip')
      return (
        t.standby.instanceId !== undefined &&
        (await ctx.ports.cloud.describeAddress(ip.allocationId))?.instanceId === t.standby.instanceId
      );
    return true;
  },
  async undo(ctx) {
    const t = target(ctx);
    const ip = t.failover.ip;
    if (ip.method === 'alias') {
      const ops = opsOf(ctx);
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
      return;
    }
    if (ip.method === 'eip') {
      const previous = ctx.fact<string | null>(STANDBY_FACTS.ipPreviousInstance);
      if (previous) {
        await ctx.ports.cloud.associateAddress(ip.allocationId, previous);
        ctx.output(`associated ${ip.allocationId} back with ${previous}`);
      } else ctx.output(`${ip.allocationId} was not associated before the run; left on the standby`);
    }
  },
};

const confirmIpMoved: StepDefinition<FailoverParams> = {
  id: 'confirm-ip-moved',
  title: "Confirm the active's IP now points at the standby",
  destructive: true,
  kind: 'manual',
  describe(ctx) {
    const t = target(ctx);
    const ip = t.failover.ip;
    if (ip.method !== 'manual') return `Not needed here: cellops moves the IP itself (method ${ip.method}).`;
    return [
      `Move ${t.cn.name}'s IP (${t.cn.host.address}'s service address) to ${t.standby.name} (${t.standby.host.address}) by hand, then approve to confirm it was done.`,
      ip.instructions
        ? `Instructions: ${ip.instructions}`
        : `No instructions are configured (nodes.${t.cn.name}.failover.ip.instructions).`,
    ].join('\n');
  },
  async when(ctx) {
    return target(ctx).failover.ip.method === 'manual';
  },
  async run(ctx) {
    ctx.setFact(STANDBY_FACTS.ipMoveConfirmed, true);
    ctx.output(`an approver confirmed that the IP was moved to ${target(ctx).standby.name}`);
  },
  async verify(ctx) {
    return ctx.fact<boolean>(STANDBY_FACTS.ipMoveConfirmed) === true;
  },
};

/**
 * Health gate before the failed CN's identity starts on the standby: the old CN must not be back — not
 * answering as the failed CN, its instance not started again, and over SSH (tried even when the fence
 * needed a confirmation: a host that was unreachable may be back) no kcn running that could hold the key
 * and no key file of the failed CN where kcnd loads it.
 */
async function refuseIfOldActiveIsBack(ctx: Ctx, ops: NodeOps, t: StandbyTarget): Promise<void> {
  const failedAddress = ctx.fact<string>(STANDBY_FACTS.failedAddress);
  if (failedAddress === undefined)
    throw new SafetyGateError(
      "The failed CN's address was not recorded by preflight; not starting the standby.",
    );
  const old = await probe(ctx.ports, t.cn, ctx.signal);
  let freshIdentity = false;
  if (old.ok) {
    const address = await reportedAddress(ctx, t.cn.endpoint);
    if (address === undefined || sameAddress(address, failedAddress))
      throw new SafetyGateError(
        `${t.cn.name} came back during the run (it answers at height ${old.health.height}${address ? ` as ${address}` : ', address unknown'}). Not starting ${t.standby.name} with the same key: fence ${t.cn.name} again and resume, or abort.`,
      );
    freshIdentity = true;
    ctx.output(
      `${t.cn.name} answers again but as ${address}, a fresh key (its own was moved aside): no conflict`,
    );
  }
  if (t.cn.instanceId && ctx.fact<string>(STANDBY_FACTS.fenceEc2) === 'stopped') {
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
  try {
    const state = await daemonState(ops, t.cn);
    if (state !== 'stopped' && !freshIdentity)
      throw new SafetyGateError(
        state === 'active'
          ? `${t.cn.service} is active again on ${t.cn.name} (something restarted it after fencing). Not starting ${t.standby.name}: fence ${t.cn.name} again and resume, or abort.`
          : `${untrackedMessage(t.cn, 'after fencing')}. Not starting ${t.standby.name} until then: resume once it is stopped, or abort.`,
      );
    const p = nodeKeyPaths(t.cn.dataDir);
    for (const path of [p.legacyNodekey, p.nodekey]) {
      const address = await keyFileAddress(ops, t.cn, path);
      if (address !== undefined && sameAddress(address, failedAddress))
        throw new SafetyGateError(
          `${t.cn.name}'s nodekey is back at ${path} on ${t.cn.name} after fencing. Not starting ${t.standby.name}: move it aside again and resume, or abort.`,
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

const startStandby: StepDefinition<FailoverParams> = {
  id: 'start-standby',
  title: 'Start kcnd on the standby',
  destructive: true,
  describe(ctx) {
    const t = target(ctx);
    return [
      `Checks first that ${t.cn.name} has not come back: it does not answer as ${addressText(ctx, t.cn.name)}${t.cn.instanceId ? `, its instance ${t.cn.instanceId} is not running again` : ''}, and when it can be reached over SSH ${onHost(t.cn.host, nodeCommands.service(ctx.config, 'is-active', t.cn.service))} is not active, ${onHost(t.cn.host, nodeCommands.processAlive(t.cn.endpoint.binary))} finds nothing and its key is not back at ${nodeKeyPaths(t.cn.dataDir).nodekey} or ${nodeKeyPaths(t.cn.dataDir).legacyNodekey}.`,
      `And that ${t.standby.name} holds exactly the backup key (${onHost(t.standby.host, nodeCommands.sha256(nodeKeyPaths(t.standby.dataDir).nodekey))}) with nothing at the legacy locations.`,
      `Then ${onHost(t.standby.host, nodeCommands.service(ctx.config, 'start', t.standby.service))}: ${t.standby.name} starts as ${addressText(ctx, t.cn.name)}.`,
      `Undo: ${onHost(t.standby.host, nodeCommands.service(ctx.config, 'stop', t.standby.service))}.`,
    ].join('\n');
  },
  async run(ctx) {
    const t = target(ctx);
    const ops = opsOf(ctx);
    await refuseIfOldActiveIsBack(ctx, ops, t);
    await refuseLegacyKeys(ops, t.standby);
    const p = nodeKeyPaths(t.standby.dataDir);
    const expected = await backupChecksumOf(ctx, ops, t);
    if ((await ops.sha256(t.standby.host, p.nodekey)) !== expected)
      throw new SafetyGateError(
        `${t.standby.name}:${p.nodekey} is not the backup key of ${t.cn.name} any more. Not starting; re-run "Install the failed CN's nodekey on the standby".`,
      );
    await ops.service(t.standby.host, t.standby.service, 'start');
    ctx.output(`started ${t.standby.service} on ${t.standby.name}`);
  },
  async verify(ctx) {
    const t = target(ctx);
    return opsOf(ctx).isActive(t.standby.host, t.standby.service);
  },
  async undo(ctx) {
    const t = target(ctx);
    const ops = opsOf(ctx);
    await ops.service(t.standby.host, t.standby.service, 'stop');
    ctx.output(`stopped ${t.standby.service} on ${t.standby.name}`);
  },
};

/** The endpoint to read committers from: the standby's own JSON-RPC, else any PN's. */
function consensusEndpoint(ctx: Plan | Ctx, t: StandbyTarget): NodeEndpoint | undefined {
  if (t.standby.endpoint.rpcUrl) return t.standby.endpoint;
  return proxyNodes(ctx.config).find((pn) => pn.endpoint.rpcUrl !== undefined)?.endpoint;
}

const verifyStandby: StepDefinition<FailoverParams> = {
  id: 'verify',
  title: 'Verify the standby runs as the failed CN',
  destructive: false,
  timeoutMs: VERIFY_DEADLINE_MS + 60_000,
  describe(ctx) {
    const t = target(ctx);
    const source = consensusEndpoint(ctx, t);
    return [
      `Waits up to ${formatDuration(VERIFY_DEADLINE_MS)} for ${t.standby.name} to show that:`,
      `• ${onHost(t.standby.host, nodeCommands.service(ctx.config, 'is-active', t.standby.service))} says active;`,
      `• the node address it reports (kaia_nodeAddress, or admin.nodeInfo over IPC) is ${addressText(ctx, t.cn.name)} — anything else stops the run;`,
      `• it has CN peers, and its height is within ${ctx.config.monitor.lagBlocks} blocks of the PNs;`,
      source
        ? `• it signs blocks again: its address among the committers of the last ${SIGNING_WINDOW} blocks (read from ${source.name}).`
        : `• signing cannot be checked: neither ${t.standby.name} nor any PN has HTTP JSON-RPC configured.`,
      `Then reports the time to recover.`,
    ].join('\n');
  },
  async run(ctx) {
    const t = target(ctx);
    const ops = opsOf(ctx);
    const clock = ctx.ports.clock;
    const deadline = clock.now() + VERIFY_DEADLINE_MS;
    const pollMs = ctx.config.monitor.intervalMs;
    const failedAddress = ctx.fact<string>(STANDBY_FACTS.failedAddress);
    if (!failedAddress)
      throw new SafetyGateError("The failed CN's address was not recorded by preflight; cannot verify.");
    const { lagBlocks } = ctx.config.monitor;

    if (!(await ops.isActive(t.standby.host, t.standby.service)))
      throw new SafetyGateError(
        `${t.standby.service} is not active on ${t.standby.name} after start: see its log (/var/log/kcnd/kcnd.out).`,
      );

    let address: string | undefined;
    while ((address = await reportedAddress(ctx, t.standby.endpoint)) === undefined) {
      if (clock.now() >= deadline)
        throw new SafetyGateError(
          `${t.standby.name} did not report its node address within ${formatDuration(VERIFY_DEADLINE_MS)}.`,
        );
      await clock.sleep(pollMs, ctx.signal);
    }
    if (!sameAddress(address, failedAddress))
      throw new SafetyGateError(
        `${t.standby.name} runs as ${address}, not as ${t.cn.name} (${failedAddress}): kcnd loaded another key (a malformed or shadowing file). The run stops and its steps are undone.`,
      );
    ctx.output(`${t.standby.name} reports node address ${address} — ${t.cn.name}'s`);

    let last: string;
    for (;;) {
      const reference = await referenceHeight(ctx.ports, ctx.config, ctx.signal);
      const health = await probe(ctx.ports, t.standby, ctx.signal);
      if (health.ok) {
        const lag = lagOf(health.health.height, reference.height);
        const peers = health.health.cnPeers;
        if (lag <= lagBlocks && (peers === undefined || peers > 0)) {
          ctx.output(
            `height ${health.health.height} (PNs ${reference.height}), ${peers === undefined ? 'CN peer count not reported by this source' : `${peers} CN peers`}`,
          );
          break;
        }
        last = peers === 0 ? `it has no CN peers (lag ${lag})` : `it is ${lag} blocks behind the PNs`;
      } else last = `it does not answer (${health.reason})`;
      if (clock.now() >= deadline)
        throw new SafetyGateError(
          `${t.standby.name} is not in sync after ${formatDuration(VERIFY_DEADLINE_MS)}: ${last}. The standby fell behind.`,
        );
      await clock.sleep(pollMs, ctx.signal);
    }

    const source = consensusEndpoint(ctx, t);
    if (!source)
      ctx.output(
        `could not check that ${t.standby.name} signs blocks: neither it nor any PN has HTTP JSON-RPC configured`,
      );
    else {
      let inCommittee = false;
      let readError: string | undefined;
      for (;;) {
        let signed = false;
        try {
          const blocks = await ctx.ports.rpc.recentBlocks(source, SIGNING_WINDOW, {
            timeoutMs: PROBE_TIMEOUT_MS,
            signal: ctx.signal,
          });
          inCommittee ||= blocks.some((b) => b.committee.some((a) => sameAddress(a, failedAddress)));
          signed = blocks.some((b) => b.committers.some((a) => sameAddress(a, failedAddress)));
        } catch (error) {
          if (ctx.signal.aborted) throw error;
          readError = describeError(error);
        }
        if (signed) {
          ctx.output(
            `${address} is among the committers of recent blocks: ${t.standby.name} signs as ${t.cn.name}`,
          );
          break;
        }
        if (clock.now() >= deadline) {
          if (inCommittee)
            throw new SafetyGateError(
              `${t.standby.name} is in the committee as ${failedAddress} but signed none of the last ${SIGNING_WINDOW} blocks within ${formatDuration(VERIFY_DEADLINE_MS)} (check its bls-nodekey and peers).`,
            );
          ctx.output(
            `${failedAddress} was not in the committee of the recent blocks, so signing could not be confirmed yet; the monitor keeps watching${readError ? ` (last error reading blocks from ${source.name}: ${readError})` : ''}`,
          );
          break;
        }
        await clock.sleep(pollMs, ctx.signal);
      }
    }

    const startedAt = ctx.fact<number>(STANDBY_FACTS.startedAt);
    if (startedAt !== undefined) {
      const ttr = clock.now() - startedAt;
      ctx.setFact(STANDBY_FACTS.timeToRecoverMs, ttr);
      ctx.output(
        `${t.cn.name} is served by ${t.standby.name}; time to recover ${formatDuration(ttr)} from the start of the run`,
      );
    }
    ctx.setFact(STANDBY_FACTS.verifiedAt, clock.now());
  },
  async verify(ctx) {
    const t = target(ctx);
    const failedAddress = ctx.fact<string>(STANDBY_FACTS.failedAddress);
    // Without the mark of a finished run, sync and signing were not checked: run it again (it is read-only).
    if (ctx.fact<number>(STANDBY_FACTS.verifiedAt) === undefined) return false;
    if (!failedAddress || !(await opsOf(ctx).isActive(t.standby.host, t.standby.service))) return false;
    const address = await reportedAddress(ctx, t.standby.endpoint);
    return address !== undefined && sameAddress(address, failedAddress);
  },
};

const recordRoles: StepDefinition<FailoverParams> = {
  id: 'record-roles',
  title: 'Record the new roles',
  destructive: false,
  describe(ctx) {
    const t = target(ctx);
    return `Records that ${t.standby.name} now serves as ${t.cn.name}, so that /cell status, monitoring and the next failover see the truth.`;
  },
  async run(ctx) {
    const t = target(ctx);
    await ctx.ports.state.setRole({
      role: t.cn.name,
      servedBy: t.standby.name,
      since: ctx.ports.clock.now(),
      runId: ctx.runId,
    });
    const ttr = ctx.fact<number>(STANDBY_FACTS.timeToRecoverMs);
    ctx.output(
      `${t.cn.name} is now served by ${t.standby.name}${ttr !== undefined ? ` (recovered in ${formatDuration(ttr)})` : ''}`,
    );
  },
  async verify(ctx) {
    const t = target(ctx);
    const role = await ctx.ports.state.role(t.cn.name);
    return role?.servedBy === t.standby.name && role.runId === ctx.runId;
  },
};

/** The steps of DESIGN.md §2.1, in order. */
export function standbyFailoverSteps(): StepDefinition<FailoverParams>[] {
  return [
    preflight,
    fence,
    confirmFenced,
    stopStandby,
    replaceNodekey,
    moveIp,
    confirmIpMoved,
    startStandby,
    verifyStandby,
    recordRoles,
  ];
}
