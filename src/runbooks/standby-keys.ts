/**
 * The standby mode's key handling (failover-standby.ts): refusing a legacy key file that would shadow the installed one, installing the failed CN's identity on
 * the standby and putting the standby's own identity back. Keys stay in the memory of these calls.
 */
import type { FailoverContext } from './failover-params.js';
import type { NodeInventoryEntry } from '../config/config.js';
import type { StandbyTarget } from './cell-nodes.js';
import { STANDBY_FACTS } from './failover-facts.js';
import type { BackupKeys } from './backup-keys.js';
import { presentLegacyKey, shadowedPath } from './key-files.js';
import { asidePath, blsBackupPath, nodeKeyPaths, type NodeOps } from './node-ops.js';
import { nodekeyChecksum } from './nodekey.js';
import { ExternalError, SafetyGateError, describeError } from '../errors.js';

/** "sha256 0123456789ab…": enough of a checksum to compare by eye, in outputs and errors. */
export function shortChecksum(checksum: string): string {
  return `sha256 ${checksum.slice(0, 12)}…`;
}

export async function refuseLegacyKeys(ops: NodeOps, node: NodeInventoryEntry): Promise<void> {
  const legacy = await presentLegacyKey(ops, node.host, node.dataDir);
  if (legacy !== undefined)
    throw new SafetyGateError(
      `${node.name} has a file at the legacy location ${legacy}, which kcnd loads instead of ${shadowedPath(legacy)}: the installed key would be shadowed. Move it away on ${node.name} (it is ${node.name}'s own identity, keep it), then start again.`,
    );
}

export async function backupChecksumOf(
  ctx: FailoverContext,
  ops: NodeOps,
  t: StandbyTarget,
): Promise<string | undefined> {
  return (
    ctx.fact<string>(STANDBY_FACTS.backupChecksum) ?? (await ops.sha256(t.backupHost.host, t.backupPath))
  );
}

/**
 * Writes the failed CN's nodekey (and its bls-nodekey when the backup has one) on the stopped standby,
 * keeping the standby's own files aside, each write checked by checksum. On any failure the standby's own
 * identity is put back before the error goes on.
 */
export async function installBackupKeys(
  ctx: FailoverContext,
  ops: NodeOps,
  t: StandbyTarget,
  backup: BackupKeys,
): Promise<void> {
  const { bls } = backup;
  try {
    await keepStandbyKeysAside(ctx, ops, t);
    await writeKey(ops, t, 'nodekey', backup.key);
    const p = nodeKeyPaths(t.standby.dataDir);
    ctx.output(
      `installed ${t.role}'s nodekey at ${p.nodekey} (mode 0600, ${shortChecksum(backup.checksum)} verified)`,
    );
    if (bls !== undefined) {
      await writeKey(ops, t, 'bls-nodekey', bls);
      ctx.setFact(STANDBY_FACTS.blsSource, 'backup');
      ctx.output(`installed ${t.role}'s bls-nodekey from ${blsBackupPath(t.backupPath)} (checksum verified)`);
    } else {
      ctx.setFact(STANDBY_FACTS.blsSource, 'derived');
      ctx.output(
        `no bls-nodekey next to the backup: none left on ${t.standby.name}, so kcnd derives ${t.role}'s from the nodekey at start (right when its registered BLS key was derived, the default)`,
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
}

async function keepStandbyKeysAside(ctx: FailoverContext, ops: NodeOps, t: StandbyTarget): Promise<void> {
  const host = t.standby.host;
  const p = nodeKeyPaths(t.standby.dataDir);
  for (const path of [p.blsNodekey, p.nodekey]) {
    const aside = asidePath(path, ctx.runId);
    // An earlier attempt already kept the standby's own file: what is there now may be the failed CN's.
    if ((await ops.exists(host, path)) && !(await ops.exists(host, aside))) {
      await ops.move(host, path, aside);
      ctx.output(`kept ${t.standby.name}'s own ${path.slice(path.lastIndexOf('/') + 1)} aside as ${aside}`);
    }
  }
}

async function writeKey(
  ops: NodeOps,
  t: StandbyTarget,
  what: 'nodekey' | 'bls-nodekey',
  content: string,
): Promise<void> {
  const p = nodeKeyPaths(t.standby.dataDir);
  const path = what === 'nodekey' ? p.nodekey : p.blsNodekey;
  await ops.writeFile(t.standby.host, path, content);
  const written = await ops.sha256(t.standby.host, path);
  if (written === nodekeyChecksum(content)) return;
  throw new ExternalError(
    'checksum_mismatch',
    what === 'nodekey'
      ? `The nodekey written to ${t.standby.name}:${path} does not match the backup (${written ? shortChecksum(written) : 'missing'} vs ${shortChecksum(nodekeyChecksum(content))}).`
      : `The bls-nodekey written to ${t.standby.name}:${path} does not match the backup.`,
  );
}

/**
 * Puts the standby's own identity back: the nodekey and bls-nodekey moved aside by this run, or — when the
 * standby had none — removes what the run installed. Safe to call more than once.
 */
export async function restoreStandbyKeys(
  ctx: FailoverContext,
  ops: NodeOps,
  t: StandbyTarget,
): Promise<void> {
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
      await ops.remove(host, paths.nodekey, t.standby.dataDir);
      ctx.output(
        `removed ${t.role}'s nodekey from ${t.standby.name} (it had no key of its own; kcnd generates one at start)`,
      );
      touched = true;
    }
  }
  if (await ops.exists(host, blsAside)) {
    await ops.move(host, blsAside, paths.blsNodekey);
    ctx.output(`restored ${t.standby.name}'s own bls-nodekey`);
  } else if (touched && (await ops.exists(host, paths.blsNodekey))) {
    // The standby had no bls-nodekey of its own: what is there now belongs to the failed CN's identity.
    await ops.remove(host, paths.blsNodekey, t.standby.dataDir);
    ctx.output(
      `removed ${t.role}'s bls-nodekey from ${t.standby.name} (kcnd derives the standby's own at start)`,
    );
  }
}

/** Starts the standby again with its own identity (undo of "Stop kcnd on the standby"). */
export async function startStandbyService(
  ctx: FailoverContext,
  ops: NodeOps,
  t: StandbyTarget,
): Promise<void> {
  // Never start the standby while it holds the failed CN's key: that is only for "Start kcnd on the standby".
  const paths = nodeKeyPaths(t.standby.dataDir);
  const current = await ops.sha256(t.standby.host, paths.nodekey);
  const failedSum = await backupChecksumOf(ctx, ops, t);
  if (current !== undefined && current === failedSum)
    throw new SafetyGateError(
      `Not restarting ${t.standby.service} on ${t.standby.name}: it still holds ${t.role}'s nodekey. Restore its own key first.`,
    );
  await ops.service(t.standby.host, t.standby.service, 'start');
  ctx.output(`started ${t.standby.service} on ${t.standby.name} again with its own key`);
}
