/**
 * How the PNs reach a CN, and keeping that link when the CN moves to a new machine (docs/runbooks.md
 * §Snapshot failover, steps `preflight` and `move-ip`). PNs dial the CN by the kni URLs in their
 * static-nodes.json: when those name the CN's Elastic IP, moving the EIP is enough; when they name a private
 * address, only a secondary private IP can follow the CN (`nodes.<cn>.failover.privateIp`): a primary one
 * stays with the failed instance.
 */
import type { FailoverContext } from './failover-params.js';
import type { CellopsConfig } from '../config/config.js';
import type { HostRef } from '../ports/shell.js';
import type { SnapshotTarget } from './cell-nodes.js';
import { proxyNodes } from './cell-nodes.js';
import { staticNodesPaths } from './check-conditions.js';
import { ipOf, type NodeOps } from './node-ops.js';
import { SafetyGateError, describeError } from '../errors.js';

/** Facts of the private IP move. */
export const LINK_FACTS = {
  /** "pn1 → 10.0.2.11:32323; pn2 → 203.0.113.25:32323": where the PNs dial the CN. */
  pnLinks: 'pnLinks',
  /** The failed CN's interface the secondary private IP was taken from (for the undo). */
  privateIpFrom: 'privateIpFrom',
} as const;

export interface PnLink {
  readonly pn: string;
  /** `host:port` of every entry for the CN's node ID, or why the file could not be read. */
  readonly endpoints: readonly string[];
  readonly problem?: string;
}

/** The `host:port` of kni/enode URLs in a static-nodes.json whose node ID is `nodeId`. */
export function linksTo(staticNodes: string, nodeId: string): string[] {
  let entries: unknown;
  try {
    entries = JSON.parse(staticNodes);
  } catch {
    return [];
  }
  if (!Array.isArray(entries)) return [];
  const id = nodeId.toLowerCase().replace(/^0x/, '');
  const found: string[] = [];
  for (const entry of entries) {
    if (typeof entry !== 'string') continue;
    const at = entry.indexOf('@');
    const scheme = entry.indexOf('://');
    if (at < 0 || scheme < 0 || entry.slice(scheme + 3, at).toLowerCase() !== id) continue;
    const rest = entry.slice(at + 1);
    const end = rest.search(/[?/]/);
    found.push(end < 0 ? rest : rest.slice(0, end));
  }
  return found;
}

/** Where each PN dials the CN whose node ID is `nodeId` (its static-nodes.json, legacy location first). */
export async function pnLinks(
  ops: NodeOps,
  config: Pick<CellopsConfig, 'nodes'>,
  nodeId: string,
): Promise<PnLink[]> {
  const links: PnLink[] = [];
  for (const pn of proxyNodes(config as CellopsConfig)) {
    try {
      let content: string | undefined;
      for (const path of staticNodesPaths(pn.dataDir)) {
        content = await ops.readFile(pn.host, path);
        if (content !== undefined) break;
      }
      links.push({ pn: pn.name, endpoints: content === undefined ? [] : linksTo(content, nodeId) });
    } catch (error) {
      links.push({ pn: pn.name, endpoints: [], problem: describeError(error) });
    }
  }
  return links;
}

/** "pn1 → 10.0.2.11:32323; pn2 → not listed" for plans and outputs. */
export function linksText(links: readonly PnLink[]): string {
  return links
    .map((l) => `${l.pn} → ${l.problem ? `unknown (${l.problem})` : l.endpoints.join(', ') || 'not listed'}`)
    .join('; ');
}

/**
 * PNs that dial the CN at an address that will not follow it: neither its Elastic IP nor its configured
 * secondary private IP.
 */
export function strandedLinks(links: readonly PnLink[], movable: readonly string[]): PnLink[] {
  return links.filter((l) =>
    l.endpoints.some(
      (e) => !movable.includes(e.slice(0, e.lastIndexOf(':') < 0 ? e.length : e.lastIndexOf(':'))),
    ),
  );
}

/**
 * Moves the CN's secondary private IP from the failed instance's interface to the replacement's, and puts
 * it on the replacement's network device. Idempotent: each part is skipped when already done.
 */
export async function movePrivateIp(
  ctx: FailoverContext,
  ops: NodeOps,
  t: SnapshotTarget,
  failedInstanceId: string,
  replacement: { readonly instanceId: string; readonly host: HostRef },
): Promise<void> {
  const cfg = t.failover.privateIp;
  if (!cfg) return;
  const ip = ipOf(cfg.address);
  const { cloud } = ctx.ports;
  const from = await cloud.describeNetwork(failedInstanceId);
  const held = from?.privateIps.find((a) => a.address === ip);
  if (held?.primary)
    throw new SafetyGateError(
      `${ip} is the primary private IP of ${failedInstanceId}: it cannot move. Set nodes.${ctx.params.cn}.failover.privateIp to a secondary IP (and use it in the PNs' static-nodes.json), or remove it.`,
    );
  if (from && held) {
    await cloud.unassignPrivateIp(from.networkInterfaceId, ip);
    ctx.setFact(LINK_FACTS.privateIpFrom, from.networkInterfaceId);
    ctx.output(`private IP ${ip} taken off ${failedInstanceId} (${from.networkInterfaceId})`);
  }
  const to = await cloud.describeNetwork(replacement.instanceId);
  if (!to) throw new SafetyGateError(`the replacement ${replacement.instanceId} has no network interface`);
  if (!to.privateIps.some((a) => a.address === ip)) {
    await cloud.assignPrivateIp(to.networkInterfaceId, ip);
    ctx.output(`private IP ${ip} assigned to ${replacement.instanceId} (${to.networkInterfaceId})`);
  }
  if (!(await ops.addresses(replacement.host, cfg.device)).includes(cfg.address)) {
    await ops.ipAdd(replacement.host, cfg.address, cfg.device);
    ctx.output(`${cfg.address} added on ${cfg.device} of ${replacement.host.name}`);
  }
}

/** Whether the replacement holds the CN's secondary private IP (true when none is configured). */
export async function privateIpMoved(
  ctx: FailoverContext,
  ops: NodeOps,
  t: SnapshotTarget,
  replacement: { readonly instanceId: string; readonly host: HostRef },
): Promise<boolean> {
  const cfg = t.failover.privateIp;
  if (!cfg) return true;
  const to = await ctx.ports.cloud.describeNetwork(replacement.instanceId);
  if (!to?.privateIps.some((a) => a.address === ipOf(cfg.address))) return false;
  return (await ops.addresses(replacement.host, cfg.device)).includes(cfg.address);
}

/** Undo of movePrivateIp: the address back on the failed CN's interface it came from. */
export async function movePrivateIpBack(
  ctx: FailoverContext,
  ops: NodeOps,
  t: SnapshotTarget,
  replacementHost: HostRef | undefined,
): Promise<void> {
  const cfg = t.failover.privateIp;
  const from = ctx.fact<string>(LINK_FACTS.privateIpFrom);
  if (!cfg || from === undefined) return;
  if (replacementHost) {
    try {
      if ((await ops.addresses(replacementHost, cfg.device)).includes(cfg.address))
        await ops.ipDel(replacementHost, cfg.address, cfg.device);
    } catch (error) {
      ctx.output(`could not take ${cfg.address} off ${replacementHost.name}: ${describeError(error)}`);
    }
  }
  await ctx.ports.cloud.assignPrivateIp(from, ipOf(cfg.address));
  ctx.output(`private IP ${ipOf(cfg.address)} assigned back to ${from}`);
}
