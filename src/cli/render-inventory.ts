/**
 * The resolved inventory `cellops check-config` prints: one line per node with where it runs and how it
 * is probed, its failover plan (with how a replacement's SSH host key is learned), and the monitor and
 * approval settings, so an operator sees what the bot will do with the file, not just that it parsed.
 */
import { readFile } from 'node:fs/promises';
import { parseKnownHosts, type KnownHosts } from '../adapters/ssh/known-hosts.js';
import type { CellopsConfig, NodeInventoryEntry } from '../config/config.js';
import { formatDuration } from '../config/duration.js';
import { describeError } from '../errors.js';

/**
 * Which way the replacement's SSH host key is learned, and whether it can work as far as a file can tell:
 * `console` needs ec2:GetConsoleOutput (checked against EC2 by `/cell check <cn>`); `known_hosts` needs an
 * entry that matches the CN's address (a subnet pattern), checked here.
 */
function replacementHostKeyLine(
  node: NodeInventoryEntry,
  knownHosts: KnownHosts | string | undefined,
  port: number,
): string {
  const mode = node.failover?.launch?.hostKeys ?? 'console';
  if (typeof knownHosts !== 'object') {
    const why = knownHosts === undefined ? 'known_hosts not read' : `known_hosts unreadable: ${knownHosts}`;
    return `replacement host key: ${mode}; ${why}`;
  }
  const listed = knownHosts.keysFor(node.host.address, port).length;
  const entry =
    listed > 0
      ? `known_hosts matches ${node.host.address}`
      : `known_hosts has no entry matching ${node.host.address}`;
  if (mode === 'known_hosts')
    return `replacement host key: known_hosts only — ${entry}${listed ? '' : ' (PROBLEM: a replacement could not be verified; add a subnet pattern or use hostKeys: console)'}`;
  return `replacement host key: console (pinned from EC2 GetConsoleOutput; needs ec2:GetConsoleOutput, see /cell check ${node.name}); ${entry}`;
}

/** The known_hosts file the configuration names, parsed, or why it cannot be read. */
export async function readKnownHosts(config: CellopsConfig): Promise<KnownHosts | string> {
  try {
    return parseKnownHosts(await readFile(config.ssh.knownHostsPath, 'utf8'));
  } catch (error) {
    return `${config.ssh.knownHostsPath}: ${describeError(error)}`;
  }
}

export function renderInventory(config: CellopsConfig, knownHosts?: KnownHosts | string): string {
  const lines = [
    `cell ${config.cell}: ${Object.keys(config.nodes).length} nodes, channel ${config.slack.channel}`,
  ];
  for (const node of Object.values(config.nodes)) {
    const where = [node.host.address, node.instanceId].filter(Boolean).join(' ');
    const probe = node.endpoint.rpcUrl
      ? `rpc ${node.endpoint.rpcUrl}`
      : `metrics ${node.endpoint.metricsUrl}`;
    lines.push(
      `  ${node.name.padEnd(8)} ${node.role.padEnd(8)} ${where.padEnd(32)} ${node.service.padEnd(6)} ${node.dataDir}  ${probe}`,
    );
    const f = node.failover;
    if (f) {
      const target =
        f.mode === 'standby'
          ? `standby ${f.standby ?? '?'}`
          : `snapshot from ${(f.snapshotFrom ?? []).join(', ')}`;
      const ip =
        f.ip.method === 'alias'
          ? `alias ${f.ip.address} on ${f.ip.device}`
          : f.ip.method === 'eip'
            ? `eip ${f.ip.allocationId}`
            : 'manual';
      lines.push(
        `           failover: ${target}; ip ${ip}; nodekey backup ${f.nodekeyBackup.host}:${f.nodekeyBackup.path}`,
      );
      if (f.mode === 'snapshot')
        lines.push(`           ${replacementHostKeyLine(node, knownHosts, config.ssh.port)}`);
    }
  }
  const m = config.monitor;
  lines.push(
    `monitor: every ${formatDuration(m.intervalMs)}, lagging > ${m.lagBlocks} blocks for ${formatDuration(m.forMs)}, stalled after ${formatDuration(m.stallMs)}, down after ${m.failures} failures`,
  );
  lines.push(
    `approvals: ${config.slack.approvals} per destructive step, four-eyes ${config.slack.fourEyes ? 'on' : 'off'}, expire after ${formatDuration(config.slack.approvalTimeoutMs)}`,
  );
  lines.push(
    config.ssh.hostHelper === undefined
      ? `privileges: plain sudo -n as ${config.ssh.user} (no ssh.hostHelper: the hosts' sudoers must allow every command in docs/runbooks.md §Privileges)`
      : `privileges: the host helper ${config.ssh.hostHelper} as ${config.ssh.user}, with each run's fencing token (deploy/host)`,
  );
  return lines.join('\n');
}
