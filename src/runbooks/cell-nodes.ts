/**
 * Who is who in the cell for a runbook: the CN a run is about, its failover configuration, its standby and
 * backup host, the PNs that give the reference height. Shared by the failover, backup-nodekey and check
 * runbooks so that they resolve names and report unknown ones the same way.
 */
import type { CellopsConfig, NodeInventoryEntry } from '../config/config.js';
import type { FailoverConfig } from '../config/schema.js';
import type { NodeEndpoint, NodeHealth, ProbeOptions } from '../ports/node-rpc.js';
import type { RunbookPorts } from './types.js';
import type { CellState, RoleAssignment } from '../ports/cell-state.js';
import { InputError, SafetyGateError, describeError } from '../errors.js';

/** How long one health or address probe may take. Probes are cheap; a slow answer counts as no answer. */
export const PROBE_TIMEOUT_MS = 5_000;

export type FailoverMode = FailoverConfig['mode'];

export interface CnTarget {
  /** The CN role's name, e.g. `cn1`: the key of its recorded roles and backup. */
  readonly role: string;
  /**
   * The machine serving the CN: as configured (the role's own node), or — for a standby failover that
   * follows the recorded roles — the machine that serves it now, under its own inventory name.
   */
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
  /** `active` and `standby`: the machines a standby failover acts on, settled from the recorded roles. */
  readonly params: { readonly cn: string; readonly active?: string; readonly standby?: string };
}

/** The machines of a standby-mode CN now: the one serving it, and the one ready to take over (if any). */
export interface StandbyLayout {
  readonly active: string;
  readonly standby: string | undefined;
  /** The recorded role the layout comes from; undefined: never recorded, the configuration's layout. */
  readonly recorded?: RoleAssignment;
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
  return { role: name, cn, failover: cn.failover, backupHost, backupPath: cn.failover.nodekeyBackup.path };
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

/**
 * The CN and its standby. Without `machines`, as configured; with them (settled from the recorded roles
 * by standbyLayout), the machine serving the CN now as `cn` and the recorded standby as `standby`.
 */
export function resolveStandby(
  config: CellopsConfig,
  name: string,
  machines?: { readonly active?: string | undefined; readonly standby?: string | undefined },
): StandbyTarget {
  const target = resolveCn(config, name);
  const standbyName = machines?.standby ?? target.failover.standby;
  if (!standbyName)
    throw new InputError(
      `${name} has failover mode standby but no standby: set nodes.${name}.failover.standby.`,
    );
  const standby = inventoryNode(config, standbyName, 'standby', name);
  if (machines?.standby === undefined && standby.role !== 'standby')
    throw new InputError(`the standby of ${name}, ${standbyName}, has role ${standby.role}, not standby.`);
  const active = machines?.active
    ? inventoryNode(config, machines.active, 'machine serving', name)
    : target.cn;
  if (active.name === standby.name)
    throw new InputError(`${name} is served by ${active.name}, which cannot also be its standby.`);
  return { ...target, cn: active, standby };
}

/** Machines that can serve a CN role: CNs and standbys of the inventory. */
export function isCnMachine(node: NodeInventoryEntry): boolean {
  return node.role === 'cn' || node.role === 'standby';
}

/**
 * Where a standby-mode CN stands now: the recorded role when there is one (the machine serving it and the
 * standby recorded by rebuild-standby, if any), else the configuration's layout.
 */
export async function standbyLayout(
  config: CellopsConfig,
  state: CellState,
  name: string,
): Promise<StandbyLayout> {
  const target = resolveCn(config, name);
  const recorded = await state.role(name);
  if (!recorded) return { active: name, standby: target.failover.standby };
  // Recorded on its own machine with no failover behind it (a seeded or older record): the configured standby.
  const standby =
    recorded.standby ??
    (recorded.servedBy === name && recorded.previous === undefined ? target.failover.standby : undefined);
  return { active: recorded.servedBy, standby, recorded };
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

/** The run's CN and its standby (resolveStandby, on the machines the run settled on), from a step's or plan's context. */
export function standbyTargetOf(ctx: CnNamed): StandbyTarget {
  const { cn, active, standby } = ctx.params;
  return resolveStandby(
    ctx.config,
    cn,
    active === undefined && standby === undefined ? undefined : { active, standby },
  );
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
