/**
 * The snapshot mode's key handling (failover-snapshot.ts): reading and validating the failed CN's backup
 * (with its bls-nodekey, like the standby mode), and installing them on the replacement. Keys stay in the
 * memory of these calls.
 */
import type { FailoverContext } from './failover-params.js';
import type { HostRef } from '../ports/shell.js';
import type { SnapshotTarget } from './cell-nodes.js';
import { presentLegacyKey, readKeyFile, shadowedPath } from './key-files.js';
import { blsBackupPath, nodeKeyPaths, opsOf, type NodeOps } from './node-ops.js';
import { describeNodekeyProblem, isBlsKey, nodeAddressFromKey, nodekeyChecksum } from './nodekey.js';
import { SafetyGateError } from '../errors.js';

export interface BackupKeys {
  /** The nodekey file's content. In memory only: never logged, never a fact. */
  readonly key: string;
  readonly checksum: string;
  readonly address: string;
  /** The bls-nodekey kept next to the backup (node-ops.ts blsBackupPath), when there is one. */
  readonly bls?: string;
}

/** Reads and validates the failed CN's backup (and its bls-nodekey, like the standby mode does). */
export async function readBackup(ctx: FailoverContext, t: SnapshotTarget): Promise<BackupKeys> {
  const ops = opsOf(ctx);
  const where = `${t.backupHost.name}:${t.backupPath}`;
  const read = await readKeyFile(ops, t.backupHost.host, t.backupPath);
  if (read.problem === 'absent')
    throw new SafetyGateError(
      `there is no nodekey backup of ${ctx.params.cn} at ${where}: without it the replacement cannot take ${ctx.params.cn}'s identity`,
    );
  if (read.problem)
    throw new SafetyGateError(
      `the nodekey backup ${where} is not usable: ${describeNodekeyProblem(read.problem)}; kcnd would silently start with a fresh identity`,
    );
  const { key } = read;
  const blsPath = blsBackupPath(t.backupPath);
  const bls = await ops.readFile(t.backupHost.host, blsPath);
  if (bls !== undefined && !isBlsKey(bls))
    throw new SafetyGateError(
      `the bls-nodekey backup ${t.backupHost.name}:${blsPath} is malformed (expected 64 hex characters): the node's proposals would be rejected with a wrong BLS key. Fix or remove that file and start again.`,
    );
  return {
    key,
    checksum: nodekeyChecksum(key),
    address: nodeAddressFromKey(key),
    ...(bls === undefined ? {} : { bls }),
  };
}

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
  dataDir: string,
  backup: BackupKeys,
): Promise<void> {
  const keys = nodeKeyPaths(dataDir);
  await ops.writeFile(host, keys.nodekey, backup.key);
  if ((await ops.sha256(host, keys.nodekey)) !== backup.checksum)
    throw new SafetyGateError(
      `the nodekey written to ${host.name} ${host.address} does not match the backup by checksum`,
    );
  ctx.output(
    `${ctx.params.cn}'s nodekey (address ${backup.address}) installed at ${keys.nodekey}, mode 0600, sha256 ${backup.checksum.slice(0, 12)}… verified`,
  );
  if (backup.bls === undefined) {
    await ops.remove(host, keys.blsNodekey);
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
