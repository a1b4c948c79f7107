/**
 * What a CN's machine image contains that matters for a failover: the kcn binary and kcnd.conf. `image`
 * records their sha256 at image time; the readiness check compares them with the live CN's, on whichever
 * machine serves the CN now (the replacement after a snapshot failover). Content, not modification
 * times: package upgrades install binaries with their build time, so an upgraded kcn can look older
 * than the image that lacks it.
 */
import type { NodeInventoryEntry } from '../config/config.js';
import type { CellState, RoleAssignment } from '../ports/cell-state.js';
import type { HostRef } from '../ports/shell.js';
import { replacementHost } from './replacement.js';
import type { NodeOps } from './node-ops.js';

export interface ImageContent {
  /** sha256 of the kcn binary (`/usr/bin/kcn`). */
  readonly binarySha256: string;
  /** sha256 of kcnd.conf (`/etc/kcnd/conf/kcnd.conf`). */
  readonly confSha256: string;
}

/** The files an image must match: the node's kcnd.conf and its binary. */
export function imageContentFiles(node: NodeInventoryEntry): {
  readonly conf: string;
  readonly binary: string;
} {
  return {
    conf: `/etc/${node.service}/conf/${node.service}.conf`,
    binary: `/usr/bin/${node.endpoint.binary}`,
  };
}

/** The machine serving the CN now: the replacement recorded by a snapshot failover, else its own host. */
export async function servingHost(state: CellState, cn: NodeInventoryEntry): Promise<HostRef> {
  return servedHostOf(cn, await state.role(cn.name));
}

/**
 * How SSH reaches the machine a recorded role names: a replacement at its address with the host keys
 * pinned from its console when it was launched (recorded with the role), else the CN's own host.
 */
export function servedHostOf(cn: NodeInventoryEntry, role: RoleAssignment | undefined): HostRef {
  if (role?.address !== undefined && role.address !== cn.host.address)
    return replacementHost(cn.name, role.address, role.hostKeys);
  return cn.host;
}

/** Hashes both files on `host`; names the file that is missing. HostError when the host does not answer. */
export async function readImageContent(
  ops: NodeOps,
  host: HostRef,
  node: NodeInventoryEntry,
): Promise<ImageContent | { readonly missing: string }> {
  const files = imageContentFiles(node);
  const binarySha256 = await ops.sha256(host, files.binary);
  if (binarySha256 === undefined) return { missing: files.binary };
  const confSha256 = await ops.sha256(host, files.conf);
  if (confSha256 === undefined) return { missing: files.conf };
  return { binarySha256, confSha256 };
}

/** What differs between the image and the live CN, in words; undefined when nothing does. */
export function contentChange(
  node: NodeInventoryEntry,
  recorded: ImageContent,
  live: ImageContent,
): string | undefined {
  const files = imageContentFiles(node);
  const changed = [
    recorded.binarySha256 !== live.binarySha256 ? `${files.binary} (the ${node.endpoint.binary} binary)` : '',
    recorded.confSha256 !== live.confSha256 ? files.conf : '',
  ].filter((c) => c !== '');
  return changed.length === 0 ? undefined : changed.join(' and ');
}
