/**
 * The resolved configuration every module receives: durations in milliseconds (`…Ms`), defaults applied,
 * node endpoints worked out. Built from the parsed file by `resolveConfig` (a pure function).
 */
import type { HostRef } from '../ports/shell.js';
import type { NodeEndpoint } from '../ports/node-rpc.js';
import type { FailoverConfig, ParsedConfig, ParsedEscalation } from './schema.js';

export type NodeRole = 'cn' | 'standby' | 'pn';

export interface UserSet {
  readonly users: readonly string[];
  readonly usergroups: readonly string[];
}

export interface NodeInventoryEntry {
  readonly name: string;
  readonly role: NodeRole;
  readonly host: HostRef;
  readonly endpoint: NodeEndpoint;
  readonly dataDir: string;
  /** systemd unit: kcnd (CN, standby) or kpnd (PN) unless configured. */
  readonly service: string;
  readonly instanceId?: string;
  readonly dataVolumeId?: string;
  readonly dataDevice: string;
  readonly failover?: FailoverConfig;
}

/** Where pages go and when (src/escalation). Secrets are named here and read from the environment at start. */
export interface EscalationConfig {
  readonly pagerduty?: { readonly routingKeyEnv: string; readonly url: string };
  readonly opsgenie?: { readonly apiKeyEnv: string; readonly url: string };
  readonly webhook?: { readonly url: string; readonly secretEnv: string };
  readonly pageAfterMs: number;
  readonly approvalReminderMs: number;
  readonly approvalPageMs: number;
}

export interface CellopsConfig {
  readonly cell: string;
  readonly slack: {
    readonly channel: string;
    readonly approvers: UserSet;
    readonly operators: UserSet;
    readonly fourEyes: boolean;
    readonly approvals: number;
    readonly approvalTimeoutMs: number;
  };
  readonly ssh: {
    readonly user: string;
    /** Absent when only the ssh-agent is used. */
    readonly privateKeyPath?: string;
    /** Environment variable with the key's passphrase. Default SSH_KEY_PASSPHRASE. */
    readonly passphraseEnv?: string;
    /** Use the ssh-agent at SSH_AUTH_SOCK. Default false. */
    readonly agent?: boolean;
    /** Offer the SHA-1 ssh-rsa host-key algorithm. Default false. */
    readonly allowSha1Rsa?: boolean;
    readonly knownHostsPath: string;
    readonly port: number;
    readonly bastion?: { readonly host: string; readonly user: string; readonly port: number };
    readonly connectTimeoutMs: number;
    readonly commandTimeoutMs: number;
    readonly serviceCommand: string;
    readonly attachCommand: string;
    /** The host helper's path on every host (least-privilege sudo, fencing at the host); absent: plain sudo. */
    readonly hostHelper?: string;
  };
  readonly monitor: {
    readonly intervalMs: number;
    readonly lagBlocks: number;
    readonly forMs: number;
    readonly stallMs: number;
    readonly failures: number;
    readonly referenceEndpoints: readonly string[];
    readonly checkIntervalMs: number;
  };
  readonly aws: { readonly region?: string };
  /** Prefix of every Redis key, e.g. `cellops:my-core-cell:`. */
  readonly redisPrefix: string;
  readonly runs: {
    /** A finished run (record, approvals, audit) is kept this long. */
    readonly retentionMs: number;
    readonly dryRunsPerMinute: number;
  };
  readonly nodes: Readonly<Record<string, NodeInventoryEntry>>;
  /** Absent: nothing is paged and approvals are not reminded. */
  readonly escalation?: EscalationConfig;
}

function resolveEscalation(parsed: ParsedEscalation): EscalationConfig {
  return {
    ...(parsed.pagerduty === undefined ? {} : { pagerduty: parsed.pagerduty }),
    ...(parsed.opsgenie === undefined ? {} : { opsgenie: parsed.opsgenie }),
    ...(parsed.webhook === undefined ? {} : { webhook: parsed.webhook }),
    pageAfterMs: parsed.pageAfter,
    approvalReminderMs: parsed.approvalReminder,
    approvalPageMs: parsed.approvalPage,
  };
}

export function resolveConfig(parsed: ParsedConfig): CellopsConfig {
  const nodes: Record<string, NodeInventoryEntry> = {};
  for (const [name, node] of Object.entries(parsed.nodes)) {
    const host: HostRef = { name, address: node.host };
    const binary = node.role === 'pn' ? 'kpn' : 'kcn';
    const hostForUrl = node.host.includes(':') ? `[${node.host}]` : node.host;
    nodes[name] = {
      name,
      role: node.role,
      host,
      endpoint: {
        name,
        host,
        metricsUrl: node.metrics ?? `http://${hostForUrl}:61001/metrics`,
        ...(node.rpc === undefined ? {} : { rpcUrl: node.rpc }),
        dataDir: node.dataDir,
        binary,
      },
      dataDir: node.dataDir,
      service: node.service ?? (node.role === 'pn' ? 'kpnd' : 'kcnd'),
      ...(node.instanceId === undefined ? {} : { instanceId: node.instanceId }),
      ...(node.dataVolumeId === undefined ? {} : { dataVolumeId: node.dataVolumeId }),
      dataDevice: node.dataDevice,
      ...(node.failover === undefined ? {} : { failover: node.failover }),
    };
  }
  const { ssh, monitor, slack } = parsed;
  return {
    cell: parsed.cell,
    slack: {
      channel: slack.channel,
      approvers: slack.approvers,
      operators: slack.operators,
      fourEyes: slack.fourEyes,
      approvals: slack.approvals,
      approvalTimeoutMs: slack.approvalTimeout,
    },
    ssh: {
      user: ssh.user,
      ...(ssh.privateKey === undefined ? {} : { privateKeyPath: ssh.privateKey }),
      passphraseEnv: ssh.passphraseEnv,
      agent: ssh.agent,
      allowSha1Rsa: ssh.allowSha1Rsa,
      knownHostsPath: ssh.knownHosts,
      port: ssh.port,
      ...(ssh.bastion === undefined ? {} : { bastion: ssh.bastion }),
      connectTimeoutMs: ssh.connectTimeout,
      commandTimeoutMs: ssh.commandTimeout,
      serviceCommand: ssh.serviceCommand,
      attachCommand: ssh.attachCommand,
      ...(ssh.hostHelper === undefined ? {} : { hostHelper: ssh.hostHelper }),
    },
    monitor: {
      intervalMs: monitor.interval,
      lagBlocks: monitor.lagBlocks,
      forMs: monitor.for,
      stallMs: monitor.stall,
      failures: monitor.failures,
      referenceEndpoints: monitor.referenceEndpoints,
      checkIntervalMs: monitor.checkInterval,
    },
    aws: parsed.aws.region === undefined ? {} : { region: parsed.aws.region },
    redisPrefix: parsed.redis.prefix ?? `cellops:${parsed.cell}:`,
    runs: { retentionMs: parsed.runs.retention, dryRunsPerMinute: parsed.runs.dryRunsPerMinute },
    nodes,
    ...(parsed.escalation === undefined ? {} : { escalation: resolveEscalation(parsed.escalation) }),
  };
}
