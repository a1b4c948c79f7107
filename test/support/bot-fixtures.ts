/**
 * Builders for the bot's tests: a small cell configuration and run records.
 */
import { configSchema } from '../../src/config/schema.js';
import { resolveConfig, type CellopsConfig } from '../../src/config/config.js';
import type { RunRecord, StepRecord } from '../../src/runbooks/types.js';

export const APPROVER_A = 'U0AAA';
export const APPROVER_B = 'U0BBB';
export const OPERATOR = 'U0CCC';
export const GROUP_MEMBER = 'U0GRP';
export const STRANGER = 'U0NOBODY';
export const CHANNEL = 'C0ALERTS';

export function testConfig(
  overrides: { prefix?: string; approvals?: number; fourEyes?: boolean; approvalTimeout?: string } = {},
): CellopsConfig {
  return resolveConfig(
    configSchema.parse({
      cell: 'test-cell',
      slack: {
        channel: CHANNEL,
        approvers: { users: [APPROVER_A, APPROVER_B], usergroups: ['S0ONCALL'] },
        operators: { users: [OPERATOR] },
        fourEyes: overrides.fourEyes ?? true,
        approvals: overrides.approvals ?? 1,
        approvalTimeout: overrides.approvalTimeout ?? '15m',
      },
      ssh: { user: 'ops', privateKey: '/etc/cellops/id', knownHosts: '/etc/cellops/known_hosts' },
      redis: overrides.prefix === undefined ? {} : { prefix: overrides.prefix },
      nodes: {
        cn1: {
          role: 'cn',
          host: '10.0.1.11',
          failover: {
            mode: 'standby',
            standby: 'cn1s',
            ip: { method: 'alias', address: '10.0.1.100/24', device: 'eth0' },
            nodekeyBackup: { host: 'cn1s', path: '/var/cellops/backup/cn1.nodekey' },
          },
        },
        cn1s: { role: 'standby', host: '10.0.1.12' },
        cn3: { role: 'cn', host: '10.0.1.13' },
        pn1: { role: 'pn', host: '10.0.3.11', dataDir: '/var/kpnd/data' },
      },
    }),
  );
}

export function stepRecord(overrides: Partial<StepRecord> & { id: string }): StepRecord {
  return {
    title: `Step ${overrides.id}`,
    description: `Does ${overrides.id}`,
    destructive: false,
    kind: 'auto',
    status: 'pending',
    attempts: 0,
    output: [],
    approvals: [],
    approvalRound: 0,
    ...overrides,
  };
}

export function runRecord(overrides: Partial<RunRecord> = {}): RunRecord {
  return {
    id: 'r-abc123',
    runbook: 'failover',
    runbookVersion: 1,
    params: { cn: 'cn1', mode: 'standby' },
    node: 'cn1',
    summary: 'failover cn1 (standby → cn1s)',
    requester: OPERATOR,
    dryRun: false,
    createdAt: Date.UTC(2026, 10, 26, 12, 0, 0),
    status: 'running',
    steps: [
      stepRecord({ id: 'preflight', title: 'Preflight', status: 'succeeded' }),
      stepRecord({
        id: 'fence',
        title: 'Fence the old active',
        description: 'run `sudo -n systemctl stop kcnd` on cn1 10.0.1.11',
        destructive: true,
      }),
    ],
    facts: {},
    lockKey: 'cell',
    ...overrides,
  };
}
