/**
 * `/cell rebuild-standby <cn> [--host <node>]` (docs/runbooks.md §rebuild-standby): makes a machine the CN's
 * standby again — by default the one that served the CN before its last failover, which that failover fenced
 * (kcnd stopped, the CN's key moved aside). The machine gets an identity of its own (its former own key when
 * a failover kept it aside, else a fresh key made on the machine), lists the PNs in static-nodes.json, runs
 * kcnd and is checked to run as itself, not as the CN, with PN peers and at the PNs' height. Then the roles
 * say it is the standby, and `/failover <cn>` works again.
 */
import type { RunbookDefinition } from './types.js';
import { CELL_LOCK } from './failover-params.js';
import { lagOf, probe, proxyNodes, referenceHeight, reportedAddress } from './cell-nodes.js';
import { keyFileAddress } from './key-files.js';
import {
  fenceOf,
  mapHostError,
  nodeCommands,
  nodeKeyPaths,
  onHost,
  opsOf,
  type NodeOps,
} from './node-ops.js';
import { sameAddress } from './nodekey.js';
import { createRebuildOps, rebuildCommands } from './rebuild-ops.js';
import {
  REBUILD_FACTS as F,
  giveIdentity,
  judgeAsideKeys,
  keyInPlace,
  requireStopped,
  takeIdentityBack,
  type IdentityPlan,
} from './rebuild-identity.js';
import { writeStaticNodes, restoreStaticNodes, staticNodesWritten } from './rebuild-static-nodes.js';
import {
  prepareRebuild,
  rebuildParamsSchema,
  rebuildTargetOf,
  type RebuildContext,
  type RebuildParams,
  type RebuildStep,
  type RebuildTarget,
} from './rebuild-target.js';
import { SafetyGateError } from '../errors.js';
import { formatDuration } from '../config/duration.js';

export interface RebuildTimings {
  /** Verify: kcnd loads its key, finds PN peers and reaches the PNs' height. Default 30 min. */
  readonly catchUpMs: number;
  /** Preflight: free space the data directory's file system must have, in bytes. Default 10 GiB. */
  readonly minFreeBytes: number;
}

export const DEFAULT_REBUILD_TIMINGS: RebuildTimings = {
  catchUpMs: 30 * 60_000,
  minFreeBytes: 10 * 1024 ** 3,
};

const rebuildOpsOf = (ctx: RebuildContext) => {
  const fence = fenceOf(ctx);
  return createRebuildOps({
    shell: ctx.ports.shell,
    config: ctx.config,
    signal: ctx.signal,
    ...(fence ? { fence } : {}),
  });
};

const gib = (bytes: number): string => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;

/** The CN's identity (address, and the backup's checksum when known): recorded, reported, or read from the backup. */
async function cnIdentity(
  ctx: RebuildContext,
  ops: NodeOps,
  t: RebuildTarget,
): Promise<{ address: string; checksum?: string }> {
  const recorded = await ctx.ports.state.nodekeyBackup(t.role);
  if (recorded) return { address: recorded.nodeAddress, checksum: recorded.checksum };
  const reported = await reportedAddress(ctx.ports, t.active.endpoint, ctx.signal);
  const checksum = await ops.sha256(t.backupHost.host, t.backupPath).catch(() => undefined);
  if (reported) return { address: reported, ...(checksum ? { checksum } : {}) };
  const address = await keyFileAddress(ops, t.backupHost.host, t.backupPath).catch(() => undefined);
  if (address) return { address, ...(checksum ? { checksum } : {}) };
  throw new SafetyGateError(
    `${t.role}'s node address is unknown: no backup recorded, ${t.active.name} does not report it, and ${t.backupHost.name}:${t.backupPath} cannot be read. Without it ${t.host.name}'s keys cannot be told from ${t.role}'s; run /cell backup-nodekey ${t.role} first.`,
  );
}

/** The run's machines must still be where the roles put them when it was requested. */
async function refuseIfMovedOn(ctx: RebuildContext, t: RebuildTarget): Promise<void> {
  const role = await ctx.ports.state.role(t.role);
  const servedBy = role?.servedBy ?? t.role;
  if (servedBy !== t.active.name)
    throw new SafetyGateError(
      `${t.role} is served by ${servedBy} now, not ${t.active.name} as when this run was requested: nothing was changed. Start /cell rebuild-standby ${t.role} again.`,
    );
  if (servedBy === t.host.name)
    throw new SafetyGateError(
      `${t.host.name} serves ${t.role}: it cannot be its standby. Nothing was changed.`,
    );
}

async function choosePlan(
  ctx: RebuildContext,
  ops: NodeOps,
  t: RebuildTarget,
  cnAddress: string,
): Promise<IdentityPlan> {
  const inPlace = await keyInPlace(ops, t, cnAddress);
  if (inPlace.state === 'cn')
    throw new SafetyGateError(
      `${t.role}'s key is at ${inPlace.path} on ${t.host.name}, where kcnd would load it (a failover that could not reach ${t.host.name} leaves it there). Move it aside on ${t.host.name} (\`sudo mv ${inPlace.path} ${inPlace.path}.aside\`) and start again; nothing was changed.`,
    );
  const aside = await judgeAsideKeys(ctx, ops, rebuildOpsOf(ctx), t, cnAddress);
  for (const copy of aside) {
    if (copy.owner === 'cn')
      ctx.output(
        `${copy.path}: a copy of ${t.role}'s key moved aside by a failover; it stays where it is, out of kcnd's way`,
      );
    else if (copy.owner === 'other')
      ctx.output(`${copy.path}: the key of another running node (${copy.address ?? ''}); left alone`);
    else if (copy.owner === 'unreadable') ctx.output(`${copy.path}: not a valid nodekey; left alone`);
  }
  if (inPlace.state === 'own') {
    ctx.output(
      `${t.host.name} already has a key of its own at ${inPlace.path} (address ${inPlace.address ?? ''}): it keeps it`,
    );
    return 'keep';
  }
  const own = aside.filter((a) => a.owner === 'own');
  if (own.length > 0) {
    const times = await Promise.all(own.map(async (a) => (await ops.mtime(t.host.host, a.path)) ?? 0));
    let newest = 0;
    times.forEach((time, i) => {
      if (time > (times[newest] ?? 0)) newest = i;
    });
    const chosen = own[newest]!;
    ctx.setFact(F.restoreFrom, chosen.path);
    ctx.output(
      `${t.host.name}'s own former key, kept aside by a failover: ${chosen.path} (address ${chosen.address ?? ''}); it will be put back`,
    );
    return 'restore';
  }
  ctx.output(`${t.host.name} has no key of its own left: a fresh nodekey will be made on it`);
  return 'fresh';
}

const preflight = (timings: RebuildTimings): RebuildStep => ({
  id: 'preflight',
  title: 'Preflight: can this machine become the standby?',
  destructive: false,
  readOnly: true,
  describe(ctx) {
    const t = rebuildTargetOf(ctx);
    const p = nodeKeyPaths(t.host.dataDir);
    return [
      `Read-only checks on ${t.host.name} (${t.host.host.address}), which is to become ${t.role}'s standby while ${t.active.name} serves ${t.role}; nothing changes:`,
      `• it answers over SSH and ${t.host.service} is stopped there (${onHost(t.host.host, nodeCommands.service(ctx.config, 'is-active', t.host.service))}, and no ${t.host.endpoint.binary} process);`,
      `• ${t.role}'s key is at no location kcnd loads (${p.legacyNodekey}, ${p.nodekey}); copies moved aside by earlier runs (${onHost(t.host.host, rebuildCommands.listAside(t.host.dataDir))}) are reported and left where they are;`,
      `• at least ${gib(timings.minFreeBytes)} free for ${t.host.dataDir} (${rebuildCommands.freeSpace(t.host.dataDir)});`,
      `• which identity it will get: a key of its own already in place, its own former key kept aside by a failover, or else a fresh one.`,
    ].join('\n');
  },
  async verify(ctx) {
    return ctx.fact<string>(F.cnAddress) !== undefined && ctx.fact<string>(F.identityPlan) !== undefined;
  },
  async run(ctx) {
    const t = rebuildTargetOf(ctx);
    const ops = opsOf(ctx);
    await refuseIfMovedOn(ctx, t);
    await mapHostError(
      () => ops.isActive(t.host.host, t.host.service),
      (error) =>
        new SafetyGateError(
          `${t.host.name} cannot be reached over SSH: ${error.message}. Nothing was changed.`,
        ),
    );
    const cn = await cnIdentity(ctx, ops, t);
    ctx.setFact(F.cnAddress, cn.address.toLowerCase());
    await requireStopped(ctx, ops, t);
    const plan = await choosePlan(ctx, ops, t, cn.address);
    const free = await rebuildOpsOf(ctx).freeBytes(t.host.host, t.host.dataDir);
    if (free < timings.minFreeBytes)
      throw new SafetyGateError(
        `${t.host.name} has ${gib(free)} free for ${t.host.dataDir}, less than the ${gib(timings.minFreeBytes)} a standby needs to keep syncing: free space first.`,
      );
    ctx.output(`${t.host.name}: ${t.host.service} stopped, ${gib(free)} free for ${t.host.dataDir}`);
    if (cn.checksum) ctx.setFact(F.cnChecksum, cn.checksum);
    ctx.setFact(F.identityPlan, plan);
  },
});

const identity: RebuildStep = {
  id: 'identity',
  title: 'Give the machine its own identity',
  destructive: true,
  describe(ctx) {
    const t = rebuildTargetOf(ctx);
    const p = nodeKeyPaths(t.host.dataDir);
    const plan = ctx.fact<IdentityPlan>(F.identityPlan);
    const fresh = `make a fresh nodekey on ${t.host.name} itself: ${onHost(t.host.host, rebuildCommands.createPrivate(p.nodekey))}, then ${rebuildCommands.randomKey(p.nodekey)} — the key is made and kept on the machine and never passes through cellops`;
    const what =
      plan === 'keep'
        ? `Nothing to change: ${t.host.name} already has a key of its own in place.`
        : plan === 'restore'
          ? `Puts ${t.host.name}'s own former key back: ${nodeCommands.move(ctx.fact<string>(F.restoreFrom) ?? '<kept key>', p.nodekey)}, with its bls-nodekey when one was kept beside it.`
          : plan === 'fresh'
            ? `Will ${fresh}.`
            : `As the preflight finds: keep a key of its own in place, put back its own former key kept aside by a failover, or ${fresh}.`;
    return [
      what,
      `Anything else at ${p.nodekey}, and the CN's bls-nodekey at ${p.blsNodekey} or ${p.legacyBlsNodekey}, is moved aside (\`<path>.cellops-<run id>\`) so kcnd derives the standby's own; nothing is deleted. ${t.host.service} must be stopped.`,
      `Undo: moves every file back where it was (a fresh key goes aside).`,
    ].join('\n');
  },
  async run(ctx) {
    const t = rebuildTargetOf(ctx);
    const ops = opsOf(ctx);
    await requireStopped(ctx, ops, t);
    const plan = ctx.fact<IdentityPlan>(F.identityPlan);
    if (!plan) throw new SafetyGateError('The preflight did not record what to do; run it again.');
    const inPlace = await keyInPlace(ops, t, ctx.fact<string>(F.cnAddress) ?? '');
    if (inPlace.state === 'cn')
      throw new SafetyGateError(
        `${t.role}'s key is back at ${inPlace.path} on ${t.host.name}: not touching it. Find out who put it there.`,
      );
    await giveIdentity(ctx, ops, rebuildOpsOf(ctx), t, plan);
    ctx.setFact(F.identityDone, true);
  },
  async verify(ctx) {
    if (ctx.fact<boolean>(F.identityDone) !== true) return false;
    const t = rebuildTargetOf(ctx);
    return (await startable(ctx, opsOf(ctx), t)) === undefined;
  },
  async undo(ctx) {
    await takeIdentityBack(ctx, opsOf(ctx), rebuildTargetOf(ctx));
  },
};

/** Why kcnd must not start on the machine now, or undefined: its key is its own, as the identity step left it. */
async function startable(ctx: RebuildContext, ops: NodeOps, t: RebuildTarget): Promise<string | undefined> {
  const p = nodeKeyPaths(t.host.dataDir);
  const fresh = ctx.fact<string>(F.freshChecksum);
  if (fresh !== undefined) {
    if (await ops.exists(t.host.host, p.legacyNodekey)) return `a file appeared at ${p.legacyNodekey}`;
    return (await ops.sha256(t.host.host, p.nodekey)) === fresh
      ? undefined
      : `${p.nodekey} is not the fresh key made by this run`;
  }
  const inPlace = await keyInPlace(ops, t, ctx.fact<string>(F.cnAddress) ?? '');
  if (inPlace.state === 'own') return undefined;
  return inPlace.state === 'cn'
    ? `${t.role}'s key is at ${inPlace.path}`
    : `no valid key of its own at ${inPlace.path}`;
}

const staticNodes: RebuildStep = {
  id: 'static-nodes',
  title: 'List the PNs in static-nodes.json',
  destructive: false,
  describe(ctx) {
    const t = rebuildTargetOf(ctx);
    const base = t.host.dataDir.replace(/\/+$/, '');
    return [
      `A standby with its own key is no CN peer of anyone: it syncs through the PNs (${
        proxyNodes(ctx.config)
          .map((pn) => `${pn.name} ${pn.host.address}`)
          .join(', ') || 'none configured'
      }).`,
      `Keeps ${base}/static-nodes.json (or klay/static-nodes.json) when it lists every PN; otherwise reads each missing PN's kni URL (${proxyNodes(ctx.config)[0] ? onHost(proxyNodes(ctx.config)[0]!.host, rebuildCommands.nodeInfo(ctx.config, proxyNodes(ctx.config)[0]!)) : 'admin.nodeInfo'}, …), adds it at the PN's configured address and writes the file (mode 0600), the old one moved aside.`,
      `Undo: puts the old file back.`,
    ].join('\n');
  },
  async run(ctx) {
    const t = rebuildTargetOf(ctx);
    await writeStaticNodes(ctx, opsOf(ctx), rebuildOpsOf(ctx), t);
  },
  async verify(ctx) {
    return staticNodesWritten(ctx, opsOf(ctx), rebuildTargetOf(ctx));
  },
  async undo(ctx) {
    await restoreStaticNodes(ctx, opsOf(ctx), rebuildTargetOf(ctx));
  },
};

const start: RebuildStep = {
  id: 'start',
  title: 'Start kcnd on the standby',
  destructive: true,
  describe(ctx) {
    const t = rebuildTargetOf(ctx);
    return [
      `Checks that ${t.host.name} still holds the identity of its own given by this run, then ${onHost(t.host.host, nodeCommands.service(ctx.config, 'start', t.host.service))}.`,
      `Undo: ${onHost(t.host.host, nodeCommands.service(ctx.config, 'stop', t.host.service))}.`,
    ].join('\n');
  },
  async run(ctx) {
    const t = rebuildTargetOf(ctx);
    const ops = opsOf(ctx);
    const why = await startable(ctx, ops, t);
    if (why !== undefined)
      throw new SafetyGateError(`Not starting ${t.host.service} on ${t.host.name}: ${why}.`);
    await ops.service(t.host.host, t.host.service, 'start');
    ctx.output(`started ${t.host.service} on ${t.host.name}`);
  },
  async verify(ctx) {
    const t = rebuildTargetOf(ctx);
    return opsOf(ctx).isActive(t.host.host, t.host.service);
  },
  async undo(ctx) {
    const t = rebuildTargetOf(ctx);
    await opsOf(ctx).service(t.host.host, t.host.service, 'stop');
    ctx.output(`stopped ${t.host.service} on ${t.host.name}`);
  },
};

/** One look at the running standby; throws at once (after stopping it) if it runs as the CN. */
async function lookAtStandby(
  ctx: RebuildContext,
  ops: NodeOps,
  t: RebuildTarget,
): Promise<string | undefined> {
  const cnAddress = ctx.fact<string>(F.cnAddress) ?? '';
  const address = await reportedAddress(ctx.ports, t.host.endpoint, ctx.signal);
  if (address === undefined) return 'it does not report its node address yet';
  if (sameAddress(address, cnAddress)) {
    await ops.service(t.host.host, t.host.service, 'stop');
    throw new SafetyGateError(
      `${t.host.name} started as ${t.role} (${address}): it was stopped at once. Its key files must be checked by hand before it runs again.`,
    );
  }
  ctx.setFact(F.standbyAddress, address.toLowerCase());
  const reference = await referenceHeight(ctx.ports, ctx.config, ctx.signal);
  const health = await probe(ctx.ports, t.host, ctx.signal);
  if (!health.ok) return `it does not answer (${health.reason})`;
  const lag = lagOf(health.health.height, reference.height);
  const peers = health.health.pnPeers;
  if (peers === 0) return `it has no PN peers (height ${health.health.height})`;
  if (lag > ctx.config.monitor.lagBlocks) return `it is ${lag} blocks behind the PNs`;
  ctx.output(
    `${t.host.name} runs as ${address} (not ${t.role}'s ${cnAddress}), height ${health.health.height} (PNs ${reference.height}), ${peers === undefined ? 'PN peer count not reported by this source' : `${peers} PN peers`}`,
  );
  return undefined;
}

const verify = (timings: RebuildTimings): RebuildStep => ({
  id: 'verify',
  title: 'Verify the standby runs as itself and is in sync',
  destructive: false,
  timeoutMs: timings.catchUpMs + 60_000,
  describe(ctx) {
    const t = rebuildTargetOf(ctx);
    return `Waits up to ${formatDuration(timings.catchUpMs)} until ${t.host.name} reports a node address that is NOT ${t.role}'s (if it ever is, kcnd is stopped there at once and the run fails), has PN peers, and is within ${ctx.config.monitor.lagBlocks} blocks of the PNs.`;
  },
  async run(ctx) {
    const t = rebuildTargetOf(ctx);
    const ops = opsOf(ctx);
    const deadline = ctx.ports.clock.now() + timings.catchUpMs;
    for (;;) {
      if (!(await ops.isActive(t.host.host, t.host.service)))
        throw new SafetyGateError(
          `${t.host.service} is not active on ${t.host.name} after start: see its log.`,
        );
      const why = await lookAtStandby(ctx, ops, t);
      if (why === undefined) break;
      if (ctx.ports.clock.now() >= deadline)
        throw new SafetyGateError(
          `${t.host.name} is not a ready standby after ${formatDuration(timings.catchUpMs)}: ${why}.`,
        );
      await ctx.ports.clock.sleep(ctx.config.monitor.intervalMs, ctx.signal);
    }
    ctx.setFact(F.verifiedAt, ctx.ports.clock.now());
  },
  async verify(ctx) {
    if (ctx.fact<number>(F.verifiedAt) === undefined) return false;
    const t = rebuildTargetOf(ctx);
    const address = await reportedAddress(ctx.ports, t.host.endpoint, ctx.signal);
    return address !== undefined && !sameAddress(address, ctx.fact<string>(F.cnAddress) ?? '');
  },
});

const recordRoles: RebuildStep = {
  id: 'record-roles',
  title: 'Record the standby',
  destructive: false,
  describe(ctx) {
    const t = rebuildTargetOf(ctx);
    return `Records that ${t.host.name} is ${t.role}'s standby (${t.role} still served by ${t.active.name}), so that /failover ${t.role} moves it there next.`;
  },
  async run(ctx) {
    const t = rebuildTargetOf(ctx);
    const now = ctx.ports.clock.now();
    const current = await ctx.ports.state.role(t.role);
    await ctx.ports.state.setRole({
      ...(current ?? { role: t.role, servedBy: t.active.name }),
      standby: t.host.name,
      since: now,
      runId: ctx.runId,
    });
    ctx.output(
      `${t.host.name} is ${t.role}'s standby; /failover ${t.role} moves ${t.role} from ${t.active.name} to ${t.host.name}`,
    );
  },
  async verify(ctx) {
    const t = rebuildTargetOf(ctx);
    const role = await ctx.ports.state.role(t.role);
    return role?.standby === t.host.name && role.runId === ctx.runId;
  },
};

/** The steps of rebuild-standby, in order. */
export function rebuildStandbySteps(
  options: { readonly timings?: Partial<RebuildTimings> } = {},
): RebuildStep[] {
  const timings: RebuildTimings = { ...DEFAULT_REBUILD_TIMINGS, ...options.timings };
  return [preflight(timings), identity, staticNodes, start, verify(timings), recordRoles];
}

export const rebuildStandbyRunbook: RunbookDefinition<RebuildParams> = {
  id: 'rebuild-standby',
  version: 1,
  title: "Rebuild a CN's standby",
  params: rebuildParamsSchema,
  lockKey: () => CELL_LOCK,
  node: (params) => params.cn,
  summary(params, config) {
    const t = rebuildTargetOf({ config, params });
    return `rebuild-standby ${params.cn} (on ${t.host.name}, ${params.cn} served by ${t.active.name})`;
  },
  steps: () => rebuildStandbySteps(),
  prepare: prepareRebuild,
};
