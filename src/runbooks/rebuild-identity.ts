/**
 * The key files of a machine being made a CN's standby (rebuild-standby.ts): whose key is where, which
 * moved-aside copy is the machine's own former key, and giving it an identity of its own — that key put
 * back, or a fresh one made on the machine — with the CN's bls-nodekey out of the way so kcnd derives the
 * standby's own. Keys read to learn their address stay in the memory of these calls; a fresh key is never
 * read at all. Nothing is deleted: what is moved is moved aside under the run's name, and undone by moving
 * it back.
 */
import type { NodeInventoryEntry } from '../config/config.js';
import type { Fact } from './types.js';
import type { RebuildContext, RebuildTarget } from './rebuild-target.js';
import { reportedAddress } from './cell-nodes.js';
import { daemonState } from './fencing.js';
import { freeAsidePath, keyFileAddress, readKeyFile } from './key-files.js';
import { nodeKeyPaths, type NodeOps } from './node-ops.js';
import { nodeAddressFromKey, sameAddress } from './nodekey.js';
import type { RebuildOps } from './rebuild-ops.js';
import { SafetyGateError } from '../errors.js';

export const REBUILD_FACTS = {
  /** The CN's node address (never its key). */
  cnAddress: 'cnAddress',
  /** sha256 of the CN's key file as backed up, when known. */
  cnChecksum: 'cnChecksum',
  /** What the identity step will do: keep the key in place, restore a former own key, or make a fresh one. */
  identityPlan: 'identityPlan',
  /** The former own key to restore. */
  restoreFrom: 'restoreFrom',
  /** Moves the identity step made, [from, to] in order, so undo reverses them. */
  moves: 'identityMoves',
  /** sha256 of the fresh key made on the machine (its checksum only). */
  freshChecksum: 'freshChecksum',
  identityDone: 'identityDone',
  /** static-nodes.json: the file written and the copy of the one it replaced. */
  staticNodesPath: 'staticNodesPath',
  staticNodesAside: 'staticNodesAside',
  /** The standby's own address once it runs. */
  standbyAddress: 'standbyAddress',
  verifiedAt: 'verifiedAt',
} as const;

export type IdentityPlan = 'keep' | 'restore' | 'fresh';

/** One key file moved aside by an earlier run, and whose it is. */
export interface AsideKey {
  readonly path: string;
  readonly owner: 'cn' | 'own' | 'other' | 'unreadable';
  readonly address?: string;
}

/**
 * The moved-aside nodekey copies on the machine, each judged: the CN's (left where it is), another running
 * node's, unreadable, or a former key of the machine's own (a candidate to restore).
 */
export async function judgeAsideKeys(
  ctx: RebuildContext,
  ops: NodeOps,
  rebuild: RebuildOps,
  t: RebuildTarget,
  cnAddress: string,
): Promise<AsideKey[]> {
  const paths = (await rebuild.asideFiles(t.host.host, t.host.dataDir)).filter((p) =>
    /\/nodekey\.cellops-[^/]+$/.test(p),
  );
  if (paths.length === 0) return [];
  const running = await runningAddresses(ctx, t.host);
  const out: AsideKey[] = [];
  for (const path of paths) {
    const address = await keyFileAddress(ops, t.host.host, path);
    if (address === undefined) out.push({ path, owner: 'unreadable' });
    else if (sameAddress(address, cnAddress)) out.push({ path, owner: 'cn', address });
    else if (running.some((a) => sameAddress(a, address))) out.push({ path, owner: 'other', address });
    else out.push({ path, owner: 'own', address });
  }
  return out;
}

/** Addresses the other kcnd machines of the cell run now (a copy of one of them is not ours to start). */
async function runningAddresses(ctx: RebuildContext, host: NodeInventoryEntry): Promise<string[]> {
  const others = Object.values(ctx.config.nodes).filter((n) => n.role !== 'pn' && n.name !== host.name);
  const answers = await Promise.all(others.map((n) => reportedAddress(ctx.ports, n.endpoint, ctx.signal)));
  return answers.filter((a): a is string => a !== undefined);
}

/** The key kcnd would load on the machine now (legacy spot first), and whose it is. */
export async function keyInPlace(
  ops: NodeOps,
  t: RebuildTarget,
  cnAddress: string,
): Promise<{ path: string; state: 'absent' | 'malformed' | 'cn' | 'own'; address?: string }> {
  const p = nodeKeyPaths(t.host.dataDir);
  for (const path of [p.legacyNodekey, p.nodekey]) {
    const read = await readKeyFile(ops, t.host.host, path);
    if (read.problem === 'absent') continue;
    if (read.problem) return { path, state: 'malformed' };
    const address = nodeAddressFromKey(read.key);
    return { path, state: sameAddress(address, cnAddress) ? 'cn' : 'own', address };
  }
  return { path: p.nodekey, state: 'absent' };
}

/** Refuses unless kcnd (and any kcn process) is stopped on the machine. */
export async function requireStopped(ctx: RebuildContext, ops: NodeOps, t: RebuildTarget): Promise<void> {
  const state = await daemonState(ops, t.host);
  if (state === 'stopped') return;
  const address = await reportedAddress(ctx.ports, t.host.endpoint, ctx.signal);
  const cnAddress = ctx.fact<string>(REBUILD_FACTS.cnAddress);
  if (address !== undefined && cnAddress !== undefined && sameAddress(address, cnAddress))
    throw new SafetyGateError(
      `${t.host.name} RUNS AS ${t.role} (${address}) while ${t.active.name} serves ${t.role}: two nodes with one nodekey double-sign. Stop ${t.host.service} on ${t.host.name} now (\`sudo systemctl stop ${t.host.service}\`, and check \`pgrep -x ${t.host.endpoint.binary}\`), then rebuild it.`,
    );
  throw new SafetyGateError(
    `${t.host.service} ${state === 'active' ? 'is running' : `is not tracked by systemd but a ${t.host.endpoint.binary} process runs`} on ${t.host.name}${address ? ` (as ${address})` : ''}: rebuild-standby changes a machine's identity only while kcnd is stopped. If ${t.host.name} should become ${t.role}'s standby, stop ${t.host.service} there and start again; nothing was changed.`,
  );
}

/** Moves a file aside under the run's name and records the move for undo. */
async function moveAside(
  ctx: RebuildContext,
  ops: NodeOps,
  t: RebuildTarget,
  path: string,
  moves: Fact[][],
): Promise<void> {
  if (!(await ops.exists(t.host.host, path))) return;
  const aside = await freeAsidePath(ops, t.host.host, path, ctx.runId);
  await ops.move(t.host.host, path, aside);
  moves.push([path, aside]);
  ctx.setFact(REBUILD_FACTS.moves, moves);
  ctx.output(`moved ${path} aside to ${aside} on ${t.host.name}`);
}

async function move(
  ctx: RebuildContext,
  ops: NodeOps,
  t: RebuildTarget,
  from: string,
  to: string,
  moves: Fact[][],
): Promise<void> {
  await ops.move(t.host.host, from, to);
  moves.push([from, to]);
  ctx.setFact(REBUILD_FACTS.moves, moves);
}

/**
 * Gives the stopped machine its own identity as planned in preflight. The CN's bls-nodekey (kcnd keeps it
 * beside the nodekey, and a fence moves only the nodekey) is moved aside unless the restored key brings
 * its own, so that kcnd derives the standby's from its nodekey.
 */
export async function giveIdentity(
  ctx: RebuildContext,
  ops: NodeOps,
  rebuild: RebuildOps,
  t: RebuildTarget,
  plan: IdentityPlan,
): Promise<void> {
  const host = t.host.host;
  const p = nodeKeyPaths(t.host.dataDir);
  const moves: Fact[][] = [...(ctx.fact<Fact[][]>(REBUILD_FACTS.moves) ?? [])];
  if (plan === 'keep') {
    ctx.output(`${t.host.name} keeps the key of its own already in place`);
    return;
  }
  // Whatever sits at the key locations now is not an identity to keep (preflight said so): aside, not deleted.
  await moveAside(ctx, ops, t, p.nodekey, moves);
  const restoreFrom = ctx.fact<string>(REBUILD_FACTS.restoreFrom);
  const ownBls = restoreFrom?.replace(/\/nodekey(\.cellops-[^/]+)$/, '/bls-nodekey$1');
  const keepBls = plan === 'restore' && ownBls !== undefined && (await ops.exists(host, ownBls));
  await moveAside(ctx, ops, t, p.blsNodekey, moves);
  await moveAside(ctx, ops, t, p.legacyBlsNodekey, moves);
  if (plan === 'restore') {
    if (!restoreFrom)
      throw new SafetyGateError('The key to restore was not recorded by preflight; run it again.');
    await move(ctx, ops, t, restoreFrom, p.nodekey, moves);
    ctx.output(`put ${t.host.name}'s own former key back: ${restoreFrom} → ${p.nodekey}`);
    if (keepBls && ownBls) {
      await move(ctx, ops, t, ownBls, p.blsNodekey, moves);
      ctx.output(`and its own bls-nodekey: ${ownBls} → ${p.blsNodekey}`);
    } else ctx.output(`no bls-nodekey of its own beside it: kcnd derives it from the nodekey at start`);
    return;
  }
  await rebuild.makeNodekey(host, p.nodekey);
  const size = await rebuild.size(host, p.nodekey);
  const checksum = await ops.sha256(host, p.nodekey);
  if (
    (size !== 64 && size !== 65) ||
    checksum === undefined ||
    checksum === ctx.fact<string>(REBUILD_FACTS.cnChecksum)
  )
    throw new SafetyGateError(
      `The fresh nodekey made on ${t.host.name} at ${p.nodekey} is not a 64-hex-character key (${size} bytes): is openssl installed there? The undo moves it aside.`,
    );
  ctx.setFact(REBUILD_FACTS.freshChecksum, checksum);
  ctx.output(
    `made a fresh nodekey on ${t.host.name} at ${p.nodekey} (mode 0600, made and kept on the machine; cellops never read it); kcnd derives its bls-nodekey at start`,
  );
}

/** Undo of the identity step: the machine's key files as they were before the run. */
export async function takeIdentityBack(ctx: RebuildContext, ops: NodeOps, t: RebuildTarget): Promise<void> {
  const host = t.host.host;
  if ((await daemonState(ops, t.host)) !== 'stopped') {
    await ops.service(host, t.host.service, 'stop');
    if ((await daemonState(ops, t.host)) !== 'stopped')
      throw new SafetyGateError(
        `Could not stop ${t.host.service} on ${t.host.name}; its key files were left as they are.`,
      );
  }
  const p = nodeKeyPaths(t.host.dataDir);
  if (ctx.fact<string>(REBUILD_FACTS.freshChecksum) !== undefined && (await ops.exists(host, p.nodekey))) {
    const aside = await freeAsidePath(ops, host, p.nodekey, `${ctx.runId}-fresh`);
    await ops.move(host, p.nodekey, aside);
    ctx.output(`moved the fresh key aside to ${aside} on ${t.host.name}`);
  }
  const moves = ctx.fact<string[][]>(REBUILD_FACTS.moves) ?? [];
  for (const [from, to] of [...moves].reverse()) {
    if (from === undefined || to === undefined) continue;
    if (!(await ops.exists(host, to)) || (await ops.exists(host, from))) continue;
    await ops.move(host, to, from);
    ctx.output(`moved ${to} back to ${from} on ${t.host.name}`);
  }
}
