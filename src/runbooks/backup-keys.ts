/**
 * The failed CN's nodekey backup, read and validated the same way by both failover modes (and the
 * snapshot mode's preflight): the 64-hex-character key (kcnd silently makes a fresh key from a malformed
 * file), its checksum and node address, and the bls-nodekey kept next to it. The key stays in the memory
 * of the caller, which must never log it or record it as a fact.
 */
import type { CnTarget } from './cell-nodes.js';
import { readKeyFile } from './key-files.js';
import { blsBackupPath, type NodeOps } from './node-ops.js';
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

/** Reads and validates the backup of `t.cn` and its bls-nodekey. */
export async function readBackupKeys(ops: NodeOps, t: CnTarget): Promise<BackupKeys> {
  const where = `${t.backupHost.name}:${t.backupPath}`;
  const read = await readKeyFile(ops, t.backupHost.host, t.backupPath);
  if (read.problem === 'absent')
    throw new SafetyGateError(
      `There is no nodekey backup of ${t.cn.name} at ${where}. Without it no machine can take over ${t.cn.name}'s identity; restore the backup (or run /cell backup-nodekey ${t.cn.name} while ${t.cn.name} is healthy) and start again.`,
    );
  if (read.problem)
    throw new SafetyGateError(
      `The nodekey backup at ${where} is malformed: ${describeNodekeyProblem(read.problem)}. kcnd would silently generate a fresh key from it and the node would not run as ${t.cn.name}; nothing was installed. Replace the backup with the 64-hex-character key and start again.`,
    );
  const { key } = read;
  const blsPath = blsBackupPath(t.backupPath);
  const bls = await ops.readFile(t.backupHost.host, blsPath);
  if (bls !== undefined && !isBlsKey(bls))
    throw new SafetyGateError(
      `The bls-nodekey backup at ${t.backupHost.name}:${blsPath} is malformed (expected 64 hex characters): the node's proposals would be rejected with a wrong BLS key. Fix or remove that file and start again.`,
    );
  return {
    key,
    checksum: nodekeyChecksum(key),
    address: nodeAddressFromKey(key),
    ...(bls === undefined ? {} : { bls }),
  };
}
