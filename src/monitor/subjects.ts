/**
 * What the monitor probes, and under which name. When the cell state says a CN role is served by another
 * machine (after a failover), that machine is probed as the CN, under the role's name; it is not watched
 * as a standby any more, and the fenced old machine is not watched at all. The extra reference endpoints
 * of the configuration are probed too, only to work out the reference height.
 */
import type { CellopsConfig, NodeRole } from '../config/config.js';
import type { CellState, RoleAssignment } from '../ports/cell-state.js';
import type { Logger } from '../ports/logger.js';
import type { NodeEndpoint } from '../ports/node-rpc.js';

/** One watched node: the node itself, or a CN role under its name, served by another machine. */
export interface Subject {
  /** The node, or the CN role name. */
  readonly name: string;
  readonly role: NodeRole;
  readonly endpoint: NodeEndpoint;
  readonly servedBy?: string;
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
 * The subjects of this round: every CN role (on the machine serving it), then every other node that does
 * not serve a role. A role whose state cannot be read is taken to be where the configuration puts it.
 */
export async function resolveSubjects(
  nodes: Nodes,
  cnRoles: readonly string[],
  state: CellState,
  logger: Logger,
): Promise<Subject[]> {
  const serving = new Set<string>();
  const out: Subject[] = [];
  // All roles asked at once: one round of requests to the state store per tick, not one per CN.
  const assignments = await Promise.all(
    cnRoles.map(async (name) => {
      try {
        return await state.role(name);
      } catch (error) {
        logger.warn({ node: name, err: error }, 'cell state unreadable; using config');
        return undefined;
      }
    }),
  );
  let index = 0;
  for (const node of Object.values(nodes)) {
    if (node.role !== 'cn') continue;
    const assignment = assignments[index++];
    if (!assignment || assignment.servedBy === node.name) {
      out.push({ name: node.name, role: 'cn', endpoint: node.endpoint });
      continue;
    }
    serving.add(assignment.servedBy);
    const endpoint = servingEndpoint(nodes, node.endpoint, node.dataDir, assignment);
    out.push({ name: node.name, role: 'cn', endpoint, servedBy: assignment.servedBy });
  }
  for (const node of Object.values(nodes)) {
    if (node.role === 'cn' || serving.has(node.name)) continue;
    out.push({ name: node.name, role: node.role, endpoint: node.endpoint });
  }
  return out;
}

/**
 * Where to probe a role served by another machine: the configured node of that name, else the address
 * the state recorded (a machine launched by a failover), else the role's own configured endpoint.
 */
function servingEndpoint(
  nodes: Nodes,
  own: NodeEndpoint,
  dataDir: string,
  assignment: RoleAssignment,
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
  return a.length === b.length && a.every((s, i) => s.name === b[i]?.name && s.servedBy === b[i]?.servedBy);
}

function safeHost(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}
