/**
 * What `backup-nodekey` (backup-nodekey.ts) does besides its steps' plan: its facts, the node serving the
 * CN and the key files it runs, and copying one key file to the backup host through memory and stdin,
 * keeping a different earlier backup aside.
 */
import type { CnContext } from './failover-params.js';
import type { NodeInventoryEntry } from '../config/config.js';
import type { CnTarget } from './cell-nodes.js';
import { readKeyFile } from './key-files.js';
import { asidePath, nodeKeyPaths, type NodeOps } from './node-ops.js';
import { describeNodekeyProblem, isBlsKey, nodekeyChecksum } from './nodekey.js';
import { ExternalError, SafetyGateError } from '../errors.js';
import { servedHostOf } from './image-content.js';

/** Facts this runbook records: where the key was found and what it is (never the key). */
export const BACKUP_FACTS = {
  source: 'source',
  sourcePath: 'sourcePath',
  blsPath: 'blsPath',
  address: 'address',
  nodeId: 'nodeId',
  checksum: 'checksum',
} as const;

/**
 * The machine serving the CN role now: the configured CN, the standby recorded by a failover, or the
 * replacement a snapshot failover launched (reached at its address with its pinned host keys).
 */
export async function sourceNode(ctx: CnContext, t: CnTarget): Promise<NodeInventoryEntry> {
  const role = await ctx.ports.state.role(t.cn.name);
  const servedBy = role ? ctx.config.nodes[role.servedBy] : undefined;
  return servedBy ?? { ...t.cn, host: servedHostOf(t.cn, role) };
}

/** The node the key was located on (recorded by locate-key), else the machine serving the CN. */
export async function sourceOf(ctx: CnContext, t: CnTarget): Promise<NodeInventoryEntry> {
  const name = ctx.fact<string>(BACKUP_FACTS.source);
  const node = name ? ctx.config.nodes[name] : undefined;
  // The CN's own name also stands for a replacement serving it: its host comes from the role.
  return node !== undefined && node.name !== t.cn.name ? node : sourceNode(ctx, t);
}

export async function readValidKey(ops: NodeOps, node: NodeInventoryEntry, path: string): Promise<string> {
  const read = await readKeyFile(ops, node.host, path);
  if (read.problem === 'absent') throw new SafetyGateError(`${node.name} has no nodekey at ${path}.`);
  if (read.problem)
    throw new SafetyGateError(
      `The nodekey at ${node.name}:${path} is malformed (${describeNodekeyProblem(read.problem)}); not backing it up. kcnd would not load it either.`,
    );
  return read.key;
}

/** The bls-nodekey file kcnd loads on the node (the legacy location wins), or null when there is none. */
export async function blsKeyPath(ops: NodeOps, node: NodeInventoryEntry): Promise<string | null> {
  const p = nodeKeyPaths(node.dataDir);
  if (await ops.exists(node.host, p.legacyBlsNodekey)) return p.legacyBlsNodekey;
  return (await ops.exists(node.host, p.blsNodekey)) ? p.blsNodekey : null;
}

/** One key file to copy: from the source node to the backup host. */
export interface BackupCopy {
  readonly from: string;
  readonly to: string;
  readonly what: 'nodekey' | 'bls-nodekey';
}

/**
 * Writes `content` (the file `from` on the source node) to the backup host with mode 0600, unless it is
 * already there; a different earlier backup is moved aside once per run. Checked by checksum.
 */
export async function copyToBackup(
  ctx: CnContext,
  ops: NodeOps,
  t: CnTarget,
  node: NodeInventoryEntry,
  { from, to, what }: BackupCopy,
  content: string | undefined,
): Promise<void> {
  const host = t.backupHost.host;
  if (content === undefined) throw new SafetyGateError(`${node.name}:${from} disappeared during the backup.`);
  // kcnd loads a bls-nodekey trimmed, with an optional 0x; a failover refuses any other backup.
  if (what === 'bls-nodekey' && !isBlsKey(content))
    throw new SafetyGateError(
      `${node.name}:${from} is not a bls-nodekey (expected 64 hex characters); not backing it up. Check the node's BLS key before relying on this backup.`,
    );
  const sum = nodekeyChecksum(content);
  const existing = await ops.sha256(host, to);
  if (existing === sum) {
    ctx.output(`${t.backupHost.name}:${to} already holds this ${what}`);
    return;
  }
  if (existing !== undefined && !(await ops.exists(host, asidePath(to, ctx.runId)))) {
    await ops.move(host, to, asidePath(to, ctx.runId));
    ctx.output(`kept the previous ${what} backup as ${asidePath(to, ctx.runId)}`);
  }
  await ops.writeFile(host, to, content);
  if ((await ops.sha256(host, to)) !== sum)
    throw new ExternalError(
      'checksum_mismatch',
      `The ${what} written to ${t.backupHost.name}:${to} does not match ${node.name}:${from}.`,
    );
  ctx.output(`wrote ${what} to ${t.backupHost.name}:${to} (mode 0600, checksum verified)`);
}
