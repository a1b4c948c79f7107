/**
 * The snapshot mode's key handling (failover-snapshot.ts): installing the failed CN's backup (read by
 * backup-keys.ts, like the standby mode) on the replacement. Keys stay in the memory of these calls.
 */
import type { FailoverContext } from './failover-params.js';
import type { HostRef } from '../ports/shell.js';
import type { BackupKeys } from './backup-keys.js';
import { confKeyPath, presentLegacyKey, shadowedPath } from './key-files.js';
import { nodeKeyPaths, type NodeKeyPaths, type NodeOps } from './node-ops.js';
import { nodekeyChecksum } from './nodekey.js';
import { SafetyGateError } from '../errors.js';

/** A legacy key file on the replacement would shadow the installed one (it comes from the image). */
export async function refuseLegacyKeys(ops: NodeOps, host: HostRef, dataDir: string): Promise<void> {
  const legacy = await presentLegacyKey(ops, host, dataDir);
  if (legacy !== undefined)
    throw new SafetyGateError(
      `${host.name} ${host.address} has ${legacy}, which kcnd loads instead of ${shadowedPath(legacy)}: the installed key would be shadowed. Remove it there and resume.`,
    );
}

/**
 * Writes the backup's nodekey (and its bls-nodekey, else removes any so that kcnd derives it) on the
 * replacement, each write checked by checksum.
 */
export async function installBackupKeys(
  ctx: FailoverContext,
  ops: NodeOps,
  host: HostRef,
  keys: NodeKeyPaths,
  backup: BackupKeys,
): Promise<void> {
  await ops.writeFile(host, keys.nodekey, backup.key);
  if ((await ops.sha256(host, keys.nodekey)) !== backup.checksum)
    throw new SafetyGateError(
      `the nodekey written to ${host.name} ${host.address} does not match the backup by checksum`,
    );
  ctx.output(
    `${ctx.params.cn}'s nodekey (address ${backup.address}) installed at ${keys.nodekey}, mode 0600, sha256 ${backup.checksum.slice(0, 12)}… verified`,
  );
  if (backup.bls === undefined) {
    await ops.remove(host, keys.blsNodekey, keys.dataDir);
    ctx.output(`no bls-nodekey backup: none on ${host.name}, so kcnd derives it from the nodekey at start`);
  } else {
    await ops.writeFile(host, keys.blsNodekey, backup.bls);
    if ((await ops.sha256(host, keys.blsNodekey)) !== nodekeyChecksum(backup.bls))
      throw new SafetyGateError(
        `the bls-nodekey written to ${host.name} ${host.address} does not match its backup by checksum`,
      );
    ctx.output(`${ctx.params.cn}'s bls-nodekey installed at ${keys.blsNodekey} (checksum verified)`);
  }
}

/**
 * The key files on the replacement: kcnd.conf's `--nodekey` file when the image's conf names one (kcnd
 * loads that and ignores DATA_DIR's), else `$DATA_DIR/klay/nodekey`.
 */
export async function replacementKeyPaths(
  ops: NodeOps,
  host: HostRef,
  dataDir: string,
): Promise<NodeKeyPaths> {
  const paths = nodeKeyPaths(dataDir);
  const configured = await confKeyPath(ops, host);
  if (configured === undefined) return paths;
  // The run's undo removes the key it installed, and cellops deletes only inside DATA_DIR.
  if (!configured.startsWith(`${paths.dataDir}/`))
    throw new SafetyGateError(
      `kcnd.conf on ${host.name} (${host.address}) names the nodekey file ${configured}, outside DATA_DIR ${paths.dataDir}: cellops installs (and on undo removes) keys only inside DATA_DIR. Point --nodekey inside ${paths.dataDir} in the image's kcnd.conf, or drop it, and start again.`,
    );
  return { ...paths, nodekey: configured };
}
