/**
 * A cellops configuration for a running lab, as the YAML file would hold it (schema input: durations as
 * strings), so tests can go through the same parsing as production:
 *
 *   const raw = labConfig(lab, { slack: { fourEyes: false } });
 *   const config = resolveConfig(configSchema.parse(raw));      // or write YAML.stringify(raw) to a file
 *   const shell = createSshShell({ ssh: config.ssh, logger });
 *
 * Every lab host becomes a node with its lab address, metrics and JSON-RPC URLs, DATA_DIR and service. A CN
 * `X` with a standby `Xs` in the lab gets `failover: mode standby` with the VIP as `ip: alias` on eth0
 * (namespace mode; `manual` in the loopback fallback) and its nodekey backup on the standby at
 * `<standby root>/var/cellops/backup/X.nodekey` (not written: the backup-nodekey runbook, or the test, does).
 * `overrides` is deep-merged (objects merge, arrays and values replace).
 */
import { join } from 'node:path';
import type { CellopsConfig } from '../../src/config/config.js';
import type { Lab } from './lab.js';

export type LabConfigObject = Record<string, unknown>;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function deepMerge(base: LabConfigObject, overrides: LabConfigObject): LabConfigObject {
  const out: LabConfigObject = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

/** Where labConfig puts the nodekey backup of CN `cn` on its standby. */
export function labBackupPath(lab: Lab, cn: string): string {
  return join(lab.host(`${cn}s`).root, 'var', 'cellops', 'backup', `${cn}.nodekey`);
}

export function labConfig(lab: Lab, overrides: LabConfigObject = {}): LabConfigObject {
  const nodes: Record<string, unknown> = {};
  for (const host of Object.values(lab.hosts)) {
    const standby = lab.hosts[`${host.name}s`];
    const failover =
      host.role === 'cn' && standby?.role === 'standby'
        ? {
            mode: 'standby',
            standby: standby.name,
            ip:
              lab.namespaces && lab.vip !== undefined
                ? { method: 'alias', address: lab.vip, device: lab.device }
                : { method: 'manual', instructions: 'the loopback lab has no VIP: approve to continue' },
            nodekeyBackup: { host: standby.name, path: labBackupPath(lab, host.name) },
          }
        : undefined;
    nodes[host.name] = {
      role: host.role,
      host: host.address,
      metrics: host.metricsUrl,
      rpc: host.rpcUrl,
      dataDir: host.dataDir,
      service: host.service,
      ...(failover ? { failover } : {}),
    };
  }
  const base: LabConfigObject = {
    cell: `lab-${lab.id}`,
    slack: {
      channel: 'C0LAB',
      approvers: { users: ['U0APPROVER1', 'U0APPROVER2'] },
      operators: { users: ['U0OPERATOR'] },
      fourEyes: true,
      approvals: 1,
      approvalTimeout: '15m',
    },
    ssh: {
      user: lab.user,
      privateKey: lab.privateKeyPath,
      knownHosts: lab.knownHostsPath,
      port: lab.sshPort,
      connectTimeout: '5s',
      commandTimeout: '30s',
      serviceCommand: lab.serviceCommand,
      attachCommand: lab.attachCommand,
      ...(lab.hostHelper === undefined ? {} : { hostHelper: lab.hostHelper }),
    },
    monitor: { interval: '1s', lagBlocks: 10, for: '3s', stall: '5s', failures: 3 },
    redis: { prefix: `cellops:lab-${lab.id}:` },
    nodes,
  };
  return deepMerge(base, overrides);
}

/**
 * Resolved SSH settings for the lab, for tests that build an SSH shell directly: the lab's key, known_hosts,
 * port and command templates, with `overrides` on top. `withKey: false` leaves the key file out (ssh-agent).
 */
export function labSshSettings(
  lab: Lab,
  overrides: Partial<CellopsConfig['ssh']> = {},
  options: { withKey?: boolean } = {},
): CellopsConfig['ssh'] {
  return {
    user: lab.user,
    ...(options.withKey === false ? {} : { privateKeyPath: lab.privateKeyPath }),
    knownHostsPath: lab.knownHostsPath,
    port: lab.sshPort,
    connectTimeoutMs: 5_000,
    commandTimeoutMs: 20_000,
    serviceCommand: lab.serviceCommand,
    attachCommand: lab.attachCommand,
    ...(lab.hostHelper === undefined ? {} : { hostHelper: lab.hostHelper }),
    ...overrides,
  };
}
