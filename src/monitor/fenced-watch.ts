/**
 * Watching the machine a failover fenced (docs/runbooks.md: the last step of both failover modes, and §After
 * the failover): once a CN's role moved, its old machine must stay down. Every `everyMs` the leader looks,
 * for each role whose cell state records a fenced machine:
 * - its EC2 instance started again (pending or running);
 * - kcnd running again on it (systemd active, or a kcn process outside systemd), over SSH when it answers;
 * - the CN's node address answering from anywhere but its new server: the old machine, or any other node
 *   of the inventory.
 * Each finding is posted once in the channel and in the thread of the run that fenced the machine, and
 * again only after it cleared. An unreachable machine is the expected state and says nothing.
 */
import type { CellopsConfig, NodeInventoryEntry } from '../config/config.js';
import type { CellState, FencedMachine, RoleAssignment } from '../ports/cell-state.js';
import type { Chat, MessageRef } from '../ports/chat.js';
import type { Clock } from '../ports/clock.js';
import type { Cloud } from '../ports/cloud.js';
import type { Logger } from '../ports/logger.js';
import type { NodeEndpoint, NodeRpc } from '../ports/node-rpc.js';
import type { Shell } from '../ports/shell.js';
import { daemonState } from '../runbooks/fencing.js';
import { createNodeOps } from '../runbooks/node-ops.js';
import { sameAddress } from '../runbooks/nodekey.js';
import { replacementEndpoint } from '../runbooks/replacement.js';

export interface FencedWatchDeps {
  readonly config: Pick<CellopsConfig, 'nodes' | 'slack' | 'ssh'>;
  readonly state: CellState;
  readonly rpc: NodeRpc;
  readonly chat: Chat;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Absent: instance states are not watched (no EC2 in this deployment). */
  readonly cloud?: Cloud;
  /** Absent: kcnd on the old host is not watched over SSH. */
  readonly shell?: Shell;
  /** The Slack thread of the run that fenced the machine, when it has one. */
  readonly runThread: (runId: string) => Promise<MessageRef | undefined>;
  /** How often the fenced machines are looked at. Default 30 s. */
  readonly everyMs?: number;
  /** One probe or command. Default 5 s. */
  readonly probeMs?: number;
}

/** Something the fenced machine must not do, found by one look. */
export interface FencedFinding {
  readonly cn: string;
  /** Stable per kind and place, for posting each finding once. */
  readonly key: string;
  readonly text: string;
  readonly runId: string;
}

export interface FencedWatch {
  /** Looks when `everyMs` has passed since the last look (the monitor's leader calls it every tick). */
  tick(): Promise<void>;
  /** One look now; posts new findings and returns everything found. */
  check(): Promise<FencedFinding[]>;
}

const PROBE_MS = 5_000;

/** Where the fenced machine's node answers: the CN's metrics/RPC endpoints at the machine's address. */
function fencedEndpoint(cn: NodeInventoryEntry, fenced: FencedMachine): NodeEndpoint {
  return fenced.address === cn.host.address
    ? cn.endpoint
    : replacementEndpoint(cn, fenced.address, fenced.hostKeys);
}

export function createFencedWatch(deps: FencedWatchDeps): FencedWatch {
  const { config, clock, logger } = deps;
  const everyMs = deps.everyMs ?? 30_000;
  const probeMs = deps.probeMs ?? PROBE_MS;
  const posted = new Set<string>();
  let lastAt: number | undefined;

  const instanceFinding = async (
    role: RoleAssignment,
    fenced: FencedMachine,
  ): Promise<string | undefined> => {
    if (!deps.cloud || fenced.instanceId === undefined) return undefined;
    const state = (await deps.cloud.describeInstance(fenced.instanceId))?.state;
    return state === 'pending' || state === 'running'
      ? `the fenced instance ${fenced.instanceId} of ${role.role} (${fenced.name}) is ${state} again`
      : undefined;
  };

  const daemonFinding = async (
    cn: NodeInventoryEntry,
    fenced: FencedMachine,
  ): Promise<string | undefined> => {
    if (!deps.shell) return undefined;
    const ops = createNodeOps({ shell: deps.shell, config: config as CellopsConfig, timeoutMs: probeMs });
    const host = { name: fenced.name, address: fenced.address };
    try {
      const state = await daemonState(ops, { ...cn, host });
      if (state === 'stopped') return undefined;
      return state === 'active'
        ? `${cn.service} is running again on the fenced ${fenced.name} (${fenced.address})`
        : `a ${cn.endpoint.binary} process runs again on the fenced ${fenced.name} (${fenced.address}), outside systemd`;
    } catch {
      // Unreachable or refusing: the fenced machine is expected to be down.
      return undefined;
    }
  };

  const addressFindings = async (
    role: RoleAssignment,
    cn: NodeInventoryEntry,
    fenced: FencedMachine,
  ): Promise<{ key: string; text: string }[]> => {
    const newServer = role.address ?? config.nodes[role.servedBy]?.host.address;
    const places: NodeEndpoint[] = [
      fencedEndpoint(cn, fenced),
      ...Object.values(config.nodes)
        .filter((n) => n.role !== 'pn' && n.host.address !== fenced.address)
        .map((n) => n.endpoint),
    ].filter((e) => e.host.address !== newServer);
    const found: { key: string; text: string }[] = [];
    for (const endpoint of places) {
      try {
        const address = await deps.rpc.nodeAddress(endpoint, { timeoutMs: probeMs });
        if (sameAddress(address, fenced.nodeAddress))
          found.push({
            key: `address@${endpoint.host.address}`,
            text: `${role.role}'s node address ${fenced.nodeAddress} answers from ${endpoint.name} (${endpoint.host.address}), not only from its new server ${role.servedBy}: two nodes may be running one nodekey`,
          });
      } catch {
        // Not answering is what a fenced or foreign node should do here.
      }
    }
    return found;
  };

  const findingsOf = async (role: RoleAssignment): Promise<FencedFinding[]> => {
    const fenced = role.fenced;
    const cn = config.nodes[role.role];
    if (!fenced || !cn) return [];
    const base = { cn: role.role, runId: role.runId };
    const [instance, daemon, addresses] = await Promise.all([
      instanceFinding(role, fenced).catch((error: unknown) => {
        logger.warn({ cn: role.role, err: error }, 'could not read the fenced instance');
        return undefined;
      }),
      daemonFinding(cn, fenced),
      addressFindings(role, cn, fenced),
    ]);
    return [
      ...(instance ? [{ ...base, key: `${role.role}:instance`, text: instance }] : []),
      ...(daemon ? [{ ...base, key: `${role.role}:daemon`, text: daemon }] : []),
      ...addresses.map((a) => ({ ...base, key: `${role.role}:${a.key}`, text: a.text })),
    ];
  };

  const announce = async (finding: FencedFinding): Promise<void> => {
    const text = `:rotating_light: Fenced machine alert: ${finding.text}. Fence it again now (stop it; move its nodekey aside).`;
    await deps.chat.post({ channel: config.slack.channel, text });
    const thread = await deps.runThread(finding.runId);
    if (thread) await deps.chat.post({ channel: thread.channel, threadTs: thread.ts, text });
  };

  const watch: FencedWatch = {
    async tick() {
      const now = clock.now();
      if (lastAt !== undefined && now - lastAt < everyMs) return;
      lastAt = now;
      await watch.check();
    },

    async check() {
      const roles = Object.values(config.nodes)
        .filter((n) => n.role === 'cn')
        .map((n) => n.name);
      const all: FencedFinding[] = [];
      for (const name of roles) {
        const role = await deps.state.role(name);
        if (role?.fenced) all.push(...(await findingsOf(role)));
      }
      const current = new Set(all.map((f) => f.key));
      for (const key of [...posted]) if (!current.has(key)) posted.delete(key);
      for (const finding of all) {
        if (posted.has(finding.key)) continue;
        try {
          await announce(finding);
          posted.add(finding.key);
        } catch (error) {
          logger.error({ cn: finding.cn, err: error }, 'could not post a fenced machine alert');
        }
      }
      return all;
    },
  };
  return watch;
}
