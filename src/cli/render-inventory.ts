/**
 * The resolved inventory `cellops check-config` prints: one line per node with where it runs and how it
 * is probed, its failover plan, and the monitor and approval settings, so an operator sees what the bot
 * will do with the file, not just that it parsed.
 */
import type { CellopsConfig } from '../config/config.js';
import { formatDuration } from '../config/duration.js';

export function renderInventory(config: CellopsConfig): string {
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
    }
  }
  const m = config.monitor;
  lines.push(
    `monitor: every ${formatDuration(m.intervalMs)}, lagging > ${m.lagBlocks} blocks for ${formatDuration(m.forMs)}, stalled after ${formatDuration(m.stallMs)}, down after ${m.failures} failures`,
  );
  lines.push(
    `approvals: ${config.slack.approvals} per destructive step, four-eyes ${config.slack.fourEyes ? 'on' : 'off'}, expire after ${formatDuration(config.slack.approvalTimeoutMs)}`,
  );
  return lines.join('\n');
}
