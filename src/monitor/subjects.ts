/**
 * What the monitor probes, and under which name, from the roles the cell state records (the configuration's
 * layout until a change is recorded). When a CN role is served by another machine (after a failover), that
 * machine is probed as the CN, under the role's name; the CN's recorded standby is probed as a standby; a
 * fenced former server is not watched at all. The extra reference endpoints of the configuration are
 * probed too, only to work out the reference height.
 */
import type { CellopsConfig, NodeRole } from '../config/config.js';
import { configuredRoles, type CellState, type CnRoles } from '../ports/cell-state.js';
import type { Logger } from '../ports/logger.js';
import type { NodeEndpoint } from '../ports/node-rpc.js';

/** One watched node: the node itself, or a CN role under its name, served by another machine. */
export interface Subject {
  /** The node, the CN role name, or `standby:<machine>` for a CN's own machine now standing by. */
  readonly name: string;
  readonly role: NodeRole;
  readonly endpoint: NodeEndpoint;
  readonly servedBy?: string;
  /** For a standby: the CN role it stands by for (from the recorded or configured roles). */
  readonly standbyOf?: string;
  /** The inventory node alerts, buttons and mutes name when it is not `name` (a `standby:<machine>`). */
  readonly node?: string;
}

/** What one round watches, and the roles it was worked out from. */
export interface ResolvedCell {
  readonly subjects: Subject[];
  /** Every CN role's roles now (recorded, else configured), by CN. */
  readonly roles: ReadonlyMap<string, CnRoles>;
  /** The cell state's roles version they were read at; undefined when it could not be read. */
  readonly rolesVersion: number | undefined;
}

type Nodes = CellopsConfig['nodes'];

/** The names of the configured CNs, i.e. the CN roles, in configuration order. */
export function cnRoleNames(nodes: Nodes): string[] {
  return Object.values(nodes)
    .filter((n) => n.role === 'cn')
    .map((n) => n.name);
}

/** The configured reference endpoints as probe targets named `reference-1`, `reference-2`… */
export function referenceTargets(urls: readonly string[]): NodeEndpoint[] {
  return urls.map((url, i) => {
    const name = `reference-${i + 1}`;
    const host = { name, address: safeHost(url) };
    return { name, host, metricsUrl: url, rpcUrl: url, dataDir: '', binary: 'kpn' };
  });
}

/**
 * The subjects of this round: every CN role (on the machine serving it), every CN's standby, then every
 * other node that neither serves, stands by, nor served a role before (a fenced former server is not
 * watched). A role whose state cannot be read is taken to be where the configuration puts it.
 */
export async function resolveSubjects(
  config: Pick<CellopsConfig, 'nodes'>,
  cnRoles: readonly string[],
  state: CellState,
  logger: Logger,
): Promise<ResolvedCell> {
  const nodes = config.nodes;
  // The version first: a change recorded while the roles are read shows as a newer version next time.
  const rolesVersion = await state.rolesVersion().catch((error: unknown) => {
    logger.warn({ err: error }, 'cell state unreadable; using config');
    return undefined;
  });
  // All roles asked at once: one round of requests to the state store per tick, not one per CN.
  const recorded = await Promise.all(
    cnRoles.map(async (name) => {
      try {
        return (await state.roles(name)) ?? configuredRoles(config, name);
      } catch (error) {
        logger.warn({ node: name, err: error }, 'cell state unreadable; using config');
        return configuredRoles(config, name);
      }
    }),
  );
  const roles = new Map(recorded.map((r) => [r.cn, r]));
  const taken = new Set<string>();
  const out: Subject[] = [];
  for (const r of recorded) {
    const node = nodes[r.cn];
    if (!node) continue;
    if (r.servedBy === r.cn) {
      out.push({ name: r.cn, role: 'cn', endpoint: node.endpoint });
    } else {
      const endpoint = servingEndpoint(nodes, node.endpoint, node.dataDir, r);
      out.push({ name: r.cn, role: 'cn', endpoint, servedBy: r.servedBy });
    }
    taken.add(r.servedBy);
    for (const former of r.formerServers) taken.add(former);
  }
  for (const r of recorded) {
    const machine = r.standby === undefined ? undefined : nodes[r.standby];
    if (!machine || machine.name === r.servedBy) continue;
    taken.add(machine.name);
    // A CN's own machine standing by keeps its name for the role: it is watched under another one.
    const alias = roles.has(machine.name);
    out.push({
      name: alias ? `standby:${machine.name}` : machine.name,
      role: 'standby',
      endpoint: machine.endpoint,
      standbyOf: r.cn,
      ...(alias ? { node: machine.name } : {}),
    });
  }
  for (const node of Object.values(nodes)) {
    if (node.role === 'cn' || taken.has(node.name)) continue;
    out.push({ name: node.name, role: node.role, endpoint: node.endpoint });
  }
  return { subjects: out, roles, rolesVersion };
}

/**
 * Where to probe a role served by another machine: the configured node of that name, else the address
 * the state recorded (a machine launched by a failover), else the role's own configured endpoint.
 */
function servingEndpoint(
  nodes: Nodes,
  own: NodeEndpoint,
  dataDir: string,
  assignment: CnRoles,
): NodeEndpoint {
  const machine = nodes[assignment.servedBy];
  if (machine) return machine.endpoint;
  if (!assignment.address) return own;
  const host = { name: assignment.servedBy, address: assignment.address };
  const hostForUrl = assignment.address.includes(':') ? `[${assignment.address}]` : assignment.address;
  return {
    name: assignment.servedBy,
    host,
    metricsUrl: `http://${hostForUrl}:61001/metrics`,
    dataDir,
    binary: 'kcn',
  };
}

/** Same nodes watched, served by the same machines. */
export function sameSubjects(a: readonly Subject[], b: readonly Subject[]): boolean {
  return (
    a.length === b.length &&
    a.every(
      (s, i) =>
        s.name === b[i]?.name &&
        s.servedBy === b[i]?.servedBy &&
        s.standbyOf === b[i]?.standbyOf &&
        s.role === b[i]?.role,
    )
  );
}

function safeHost(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}
