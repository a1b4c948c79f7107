/**
 * A node's key files as the runbooks meet them over SSH: which file kcnd loads, what a file holds (its
 * address, never the key), a legacy file that would shadow an installed one, a free name to move one
 * aside to. Shared by the failover modes, backup-nodekey and check, so that they judge key files alike.
 */
import type { HostRef } from '../ports/shell.js';
import type { NodeInventoryEntry } from '../config/config.js';
import { asidePath, nodeKeyPaths, type NodeOps } from './node-ops.js';
import { nodeAddressFromKey, nodekeyProblem, type NodekeyProblem } from './nodekey.js';

/** A nodekey file read into memory (the caller must never log it), or why it cannot be used. */
export type KeyFileRead =
  | { readonly key: string; readonly problem?: undefined }
  | { readonly key?: undefined; readonly problem: 'absent' | NodekeyProblem };

export async function readKeyFile(ops: NodeOps, host: HostRef, path: string): Promise<KeyFileRead> {
  const key = await ops.readFile(host, path);
  if (key === undefined) return { problem: 'absent' };
  const problem = nodekeyProblem(key);
  return problem ? { problem } : { key };
}

/** The address of a valid nodekey file on a host, or undefined (absent or malformed). Never returns the key. */
export async function keyFileAddress(ops: NodeOps, host: HostRef, path: string): Promise<string | undefined> {
  const { key } = await readKeyFile(ops, host, path);
  return key === undefined ? undefined : nodeAddressFromKey(key);
}

/** The key file kcnd loads on the node: the legacy `$DATA_DIR/nodekey` when present, else `klay/nodekey`. */
export async function effectiveKeyPath(ops: NodeOps, node: NodeInventoryEntry): Promise<string> {
  const p = nodeKeyPaths(node.dataDir);
  return (await ops.exists(node.host, p.legacyNodekey)) ? p.legacyNodekey : p.nodekey;
}

/**
 * The first legacy key file (`$DATA_DIR/nodekey`, then `$DATA_DIR/bls-nodekey`) present on the host: kcnd
 * loads it instead of the one cellops installs under `klay/`.
 */
export async function presentLegacyKey(
  ops: NodeOps,
  host: HostRef,
  dataDir: string,
): Promise<string | undefined> {
  const paths = nodeKeyPaths(dataDir);
  for (const legacy of [paths.legacyNodekey, paths.legacyBlsNodekey])
    if (await ops.exists(host, legacy)) return legacy;
  return undefined;
}

/** The file a legacy key file shadows: `$DATA_DIR/nodekey` → `$DATA_DIR/klay/nodekey`. */
export function shadowedPath(legacy: string): string {
  return legacy.replace(/\/([^/]+)$/, '/klay/$1');
}

/** A free name to move `path` aside to: never overwrites an earlier copy (it may be the only one left). */
export async function freeAsidePath(
  ops: NodeOps,
  host: HostRef,
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
