/**
 * Who is who in the cell for a runbook: the CN a run is about, its failover configuration, its standby and
 * backup host, the PNs that give the reference height. Shared by the failover, backup-nodekey and check
 * runbooks so that they resolve names and report unknown ones the same way.
 */
import type { CellopsConfig, NodeInventoryEntry } from '../config/config.js';
import type { FailoverConfig } from '../config/schema.js';
import type { NodeEndpoint, NodeHealth, ProbeOptions } from '../ports/node-rpc.js';
import type { RunbookPorts } from './types.js';
import { InputError, SafetyGateError, describeError } from '../errors.js';

/** How long one health or address probe may take. Probes are cheap; a slow answer counts as no answer. */
export const PROBE_TIMEOUT_MS = 5_000;

export type FailoverMode = FailoverConfig['mode'];

export interface CnTarget {
  /** The CN as configured (its role name, its own host). */
  readonly cn: NodeInventoryEntry;
  readonly failover: FailoverConfig;
  readonly backupHost: NodeInventoryEntry;
  readonly backupPath: string;
}

export interface StandbyTarget extends CnTarget {
  readonly standby: NodeInventoryEntry;
}

export interface SnapshotTarget extends CnTarget {
  readonly launch: NonNullable<FailoverConfig['launch']>;
  readonly allocationId: string;
  readonly snapshotFrom: readonly string[];
}

/** What a step or its plan text knows that names the CN: the configuration and the run's parameters. */
interface CnNamed {
  readonly config: CellopsConfig;
  readonly params: { readonly cn: string };
}

/** CNs that have a failover configuration, which are the ones runbooks can act on. */
export function knownCns(config: CellopsConfig): string[] {
  return Object.values(config.nodes)
    .filter((node) => node.role === 'cn' && node.failover !== undefined)
    .map((node) => node.name)
    .sort();
}

function knownList(config: CellopsConfig): string {
  const names = knownCns(config);
  return names.length > 0 ? names.join(', ') : 'none: no CN has a failover section in the configuration';
}

function inventoryNode(config: CellopsConfig, name: string, what: string, cn: string): NodeInventoryEntry {
  const node = config.nodes[name];
  if (!node)
    throw new InputError(
      `${what} "${name}" of ${cn} is not a node of the configuration (nodes: ${Object.keys(config.nodes).join(', ')})`,
    );
  return node;
}

/** The CN named by an operator, with its failover and backup configuration. InputError lists known CNs. */
export function resolveCn(config: CellopsConfig, name: string): CnTarget {
  const cn = config.nodes[name];
  if (!cn) throw new InputError(`Unknown CN "${name}". Known CNs: ${knownList(config)}.`);
  if (cn.role !== 'cn')
    throw new InputError(`"${name}" is a ${cn.role}, not a CN. Known CNs: ${knownList(config)}.`);
  if (!cn.failover)
    throw new InputError(
      `${name} has no failover section in the configuration, so cellops does not know its standby or nodekey backup. Known CNs: ${knownList(config)}.`,
    );
  const backupHost = inventoryNode(config, cn.failover.nodekeyBackup.host, 'nodekey backup host', name);
  return { cn, failover: cn.failover, backupHost, backupPath: cn.failover.nodekeyBackup.path };
}

/**
 * The CN named by an operator, whether or not it has a failover section: a machine image can be taken of
 * any CN (image.ts). InputError lists the CNs.
 */
export function resolveCnNode(config: CellopsConfig, name: string): NodeInventoryEntry {
  const node = config.nodes[name];
  if (!node)
    throw new InputError(
      `Unknown CN "${name}". Known CNs: ${
        Object.values(config.nodes)
          .filter((n) => n.role === 'cn')
          .map((n) => n.name)
          .join(', ') || 'none'
      }.`,
    );
  if (node.role !== 'cn') throw new InputError(`"${name}" is a ${node.role}, not a CN`);
  return node;
}

/** The mode a failover of `name` runs in: the requested one, which must match the configured one. */
export function resolveMode(config: CellopsConfig, name: string, requested?: FailoverMode): FailoverMode {
  const { failover } = resolveCn(config, name);
  if (requested !== undefined && requested !== failover.mode)
    throw new InputError(
      `${name} is configured for failover mode ${failover.mode}, not ${requested}: change nodes.${name}.failover.mode to use ${requested}.`,
    );
  return failover.mode;
}

export function resolveStandby(config: CellopsConfig, name: string): StandbyTarget {
  const target = resolveCn(config, name);
  const standbyName = target.failover.standby;
  if (!standbyName)
    throw new InputError(
      `${name} has failover mode standby but no standby: set nodes.${name}.failover.standby.`,
    );
  const standby = inventoryNode(config, standbyName, 'standby', name);
  if (standby.role !== 'standby')
    throw new InputError(`the standby of ${name}, ${standbyName}, has role ${standby.role}, not standby.`);
  return { ...target, standby };
}

/** The CN's snapshot-mode configuration, or an InputError naming the key to fix. */
export function resolveSnapshot(config: CellopsConfig, name: string): SnapshotTarget {
  const target = resolveCn(config, name);
  const { failover } = target;
  if (!failover.launch)
    throw new InputError(
      `nodes.${name}.failover.launch is needed for mode snapshot (instanceType, subnetId, securityGroupIds)`,
    );
  if (failover.ip.method !== 'eip')
    throw new InputError(
      `nodes.${name}.failover.ip.method must be eip for mode snapshot: the replacement is a new instance and takes the Elastic IP (got ${failover.ip.method})`,
    );
  const snapshotFrom = failover.snapshotFrom ?? [];
  if (snapshotFrom.length === 0)
    throw new InputError(`nodes.${name}.failover.snapshotFrom must name at least one PN`);
  return { ...target, launch: failover.launch, allocationId: failover.ip.allocationId, snapshotFrom };
}

/** The run's CN (resolveCn), from a step's or plan's context. */
export function cnTargetOf(ctx: CnNamed): CnTarget {
  return resolveCn(ctx.config, ctx.params.cn);
}

/** The run's CN and its standby (resolveStandby), from a step's or plan's context. */
export function standbyTargetOf(ctx: CnNamed): StandbyTarget {
  return resolveStandby(ctx.config, ctx.params.cn);
}

/** The run's CN in snapshot mode (resolveSnapshot), from a step's context. */
export function snapshotTargetOf(ctx: CnNamed): SnapshotTarget {
  return resolveSnapshot(ctx.config, ctx.params.cn);
}

export function proxyNodes(config: CellopsConfig): NodeInventoryEntry[] {
  return Object.values(config.nodes).filter((node) => node.role === 'pn');
}

/** Health of a node, or the reason it gave none. */
export async function probe(
  ports: RunbookPorts,
  node: NodeInventoryEntry,
  signal?: AbortSignal,
): Promise<{ ok: true; health: NodeHealth } | { ok: false; reason: string }> {
  try {
    const health = await ports.rpc.health(node.endpoint, {
      timeoutMs: PROBE_TIMEOUT_MS,
      ...(signal ? { signal } : {}),
    });
    return { ok: true, health };
  } catch (error) {
    if (signal?.aborted) throw error;
    return { ok: false, reason: describeError(error) };
  }
}

/** The address a node's rpc reports, or undefined when it does not answer. */
export async function reportedAddress(
  ports: RunbookPorts,
  endpoint: NodeEndpoint,
  signal: AbortSignal,
): Promise<string | undefined> {
  try {
    return await ports.rpc.nodeAddress(endpoint, { timeoutMs: PROBE_TIMEOUT_MS, signal });
  } catch (error) {
    if (signal.aborted) throw error;
    return undefined;
  }
}

/** Blocks a node at `height` is behind the reference height (never negative). */
export function lagOf(height: number, reference: number): number {
  return Math.max(0, reference - height);
}

export interface ReferenceHeight {
  readonly height: number;
  /** PNs that answered. */
  readonly from: readonly string[];
}

/** The highest block height among the PNs that answer. No PN answering is a safety gate: we cannot judge sync. */
export async function referenceHeight(
  ports: RunbookPorts,
  config: CellopsConfig,
  signal?: AbortSignal,
): Promise<ReferenceHeight> {
  const pns = proxyNodes(config);
  const results = await Promise.all(pns.map(async (pn) => ({ pn, result: await probe(ports, pn, signal) })));
  let height = -1;
  const from: string[] = [];
  for (const { pn, result } of results) {
    if (!result.ok) continue;
    from.push(pn.name);
    height = Math.max(height, result.health.height);
  }
  if (from.length === 0)
    throw new SafetyGateError(
      pns.length === 0
        ? "No PN is configured, so there is no reference height to judge sync against: add the cell's PNs to the configuration."
        : `No PN answered (${pns.map((pn) => pn.name).join(', ')}), so the reference height is unknown and sync cannot be judged: check the PNs first.`,
    );
  return { height, from };
}

/**
 * The heights of the PNs that answer and the highest of them, undefined when none answers: for a caller
 * that decides itself what no answer means (an unreachable PN is simply not a reference).
 */
export async function pnReferenceHeight(
  ports: RunbookPorts,
  config: CellopsConfig,
  options: ProbeOptions,
): Promise<{ height: number | undefined; heights: Map<string, number> }> {
  const heights = new Map<string, number>();
  await Promise.all(
    proxyNodes(config).map(async (pn) => {
      try {
        heights.set(pn.name, (await ports.rpc.health(pn.endpoint, options)).height);
      } catch {
        // An unreachable PN is simply not a reference (and not a snapshot source).
      }
    }),
  );
  const values = [...heights.values()];
  return { height: values.length > 0 ? Math.max(...values) : undefined, heights };
}
