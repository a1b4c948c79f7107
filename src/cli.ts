/**
 * `cellops <command>` for operators at a terminal. Today: `check-config [file]`, which prints the resolved
 * inventory, or every problem with exit status 1.
 */
import { loadConfigFile } from './config/load.js';
import { readEnv } from './config/env.js';
import type { CellopsConfig } from './config/config.js';
import { formatDuration } from './config/duration.js';
import { describePagers } from './escalation/pager-env.js';
import { ConfigError, describeError } from './errors.js';

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

export async function runCli(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'check-config') {
    if (rest.length > 1) {
      out('usage: cellops check-config [file]');
      return 2;
    }
    try {
      const file = rest[0] ?? readEnv(env).configPath;
      const config = await loadConfigFile(file);
      out(renderInventory(config));
      if (config.escalation) out(['escalation:', ...describePagers(config.escalation, env)].join('\n'));
      out('configuration OK');
      return 0;
    } catch (error) {
      if (error instanceof ConfigError) {
        for (const problem of error.problems) out(problem);
        return 1;
      }
      out(`error: ${describeError(error)}`);
      return 1;
    }
  }
  out('usage: cellops check-config [file]');
  return 2;
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  runCli(process.argv.slice(2), process.env, (line) => process.stdout.write(`${line}\n`)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`${describeError(error)}\n`);
      process.exit(1);
    },
  );
}
