/**
 * A node's key files as the runbooks meet them over SSH: which file kcnd loads, what a file holds (its
 * address, never the key), a legacy file that would shadow an installed one, a free name to move one
 * aside to. Shared by the failover modes, backup-nodekey and check, so that they judge key files alike.
 */
import type { HostRef } from '../ports/shell.js';
import type { NodeInventoryEntry } from '../config/config.js';
import { asidePath, nodeKeyPaths, type NodeOps } from './node-ops.js';
import { nodeAddressFromKey, nodekeyProblem, type NodekeyProblem } from './nodekey.js';
import { KCND_CONF_PATH, parseKeyFlags } from './kcnd-conf.js';
import { SafetyGateError } from '../errors.js';

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

/** Where kcnd on a host loads its nodekey from, and what says so. */
export interface KeyLocation {
  readonly path: string;
  /** `conf`: `--nodekey` in kcnd.conf's ADDITIONAL; `legacy`: `$DATA_DIR/nodekey`; else `klay/nodekey`. */
  readonly source: 'conf' | 'legacy' | 'data-dir';
}

/**
 * The `--nodekey` file kcnd.conf on the host names, if any. A key passed as `--nodekeyhex` is refused: it
 * sits on kcn's command line (in the process list and shell history), and no file can be fenced or backed
 * up. The conf's content is a secret then, and is never logged or returned.
 */
export async function confKeyPath(ops: NodeOps, host: HostRef): Promise<string | undefined> {
  const conf = await ops.readFile(host, KCND_CONF_PATH);
  if (conf === undefined) return undefined;
  const flags = parseKeyFlags(conf);
  if (flags.nodekeyHex)
    throw new SafetyGateError(
      `${KCND_CONF_PATH} on ${host.name} (${host.address}) passes the nodekey on kcn's command line (--nodekeyhex in ADDITIONAL): it is readable in the process list, and cellops cannot fence, back up or install a key it cannot find in a file. Write the key to a file (mode 0600), use --nodekey <file> instead, and start again.`,
    );
  if (flags.unresolved !== undefined)
    throw new SafetyGateError(
      `${KCND_CONF_PATH} on ${host.name} (${host.address}) names the nodekey file as ${JSON.stringify(flags.unresolved)} in ADDITIONAL, which cellops cannot resolve to an absolute path: write the absolute path there.`,
    );
  return flags.nodekeyPath;
}

/** The key file kcnd loads: kcnd.conf's `--nodekey`, else the legacy `$DATA_DIR/nodekey` when present, else `klay/nodekey`. */
export async function keyLocation(ops: NodeOps, host: HostRef, dataDir: string): Promise<KeyLocation> {
  const configured = await confKeyPath(ops, host);
  if (configured !== undefined) return { path: configured, source: 'conf' };
  const p = nodeKeyPaths(dataDir);
  return (await ops.exists(host, p.legacyNodekey))
    ? { path: p.legacyNodekey, source: 'legacy' }
    : { path: p.nodekey, source: 'data-dir' };
}

/** The key file kcnd loads on the node (keyLocation). */
export async function effectiveKeyPath(ops: NodeOps, node: NodeInventoryEntry): Promise<string> {
  return (await keyLocation(ops, node.host, node.dataDir)).path;
}

/**
 * Every file a fence must move aside on a host so that no restart brings the identity back: kcnd.conf's
 * `--nodekey` file (when there is one) and both DATA_DIR locations.
 */
export async function fenceKeyPaths(ops: NodeOps, host: HostRef, dataDir: string): Promise<string[]> {
  const p = nodeKeyPaths(dataDir);
  const configured = await confKeyPath(ops, host);
  return [...new Set([...(configured === undefined ? [] : [configured]), p.nodekey, p.legacyNodekey])];
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
