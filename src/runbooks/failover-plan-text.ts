/**
 * Wording shared by the plan texts (`describe`) of the failover steps. Plan text is rendered before and
 * during a run, from the configuration and the facts recorded so far, so these never throw: a missing
 * fact or a half-configured CN reads as a description of what the run will find.
 */
import type { FailoverPlan } from './failover-params.js';
import type { NodeInventoryEntry } from '../config/config.js';
import type { FailoverConfig } from '../config/schema.js';
import { SNAPSHOT_FACTS, STANDBY_FACTS } from './failover-facts.js';
import { nodeCommands, type ServiceAction } from './node-ops.js';
import { peekFactOf } from './shaped-facts.js';

/** "cn1's node address 0x…", or where it will come from before the preflight recorded it. */
export function addressText(ctx: FailoverPlan, cn: string): string {
  const address = ctx.fact<string>(STANDBY_FACTS.failedAddress);
  return address
    ? `${cn}'s node address ${address}`
    : `${cn}'s node address (read from the backup in preflight)`;
}

/** What the plan of a snapshot-mode failover knows of the CN's configuration, however incomplete. */
export interface SnapshotPeek {
  readonly cn?: NodeInventoryEntry;
  readonly failover?: FailoverConfig;
  readonly launch?: NonNullable<FailoverConfig['launch']>;
  readonly allocationId?: string;
  readonly snapshotFrom: readonly string[];
  readonly dataDir: string;
}

/** The snapshot-mode configuration for plan text (resolveSnapshot would throw on a half-configured CN). */
export function peekSnapshotTarget(ctx: FailoverPlan): SnapshotPeek {
  const cn = ctx.config.nodes[ctx.params.cn];
  const failover = cn?.failover;
  return {
    ...(cn ? { cn } : {}),
    ...(failover ? { failover } : {}),
    ...(failover?.launch ? { launch: failover.launch } : {}),
    ...(failover?.ip.method === 'eip' ? { allocationId: failover.ip.allocationId } : {}),
    snapshotFrom: failover?.snapshotFrom ?? [],
    dataDir: cn?.dataDir ?? '/var/kcnd/data',
  };
}

/** The PN the preflight chose to snapshot, or how it will be chosen. */
export function pnWords(ctx: FailoverPlan): { name: string; host: string; service: string } {
  const name = ctx.fact<string>(SNAPSHOT_FACTS.pn);
  const pn = name === undefined ? undefined : ctx.config.nodes[name];
  return pn
    ? { name: pn.name, host: `${pn.name} ${pn.host.address}`, service: pn.service }
    : {
        name: 'the PN',
        host: `the PN chosen by the preflight (first healthy of ${peekSnapshotTarget(ctx).snapshotFrom.join(', ')})`,
        service: 'kpnd',
      };
}

/** The service command as it will run, or its usual form when the configuration cannot render it. */
export function serviceWords(ctx: FailoverPlan, action: ServiceAction, service: string): string {
  try {
    return `\`${nodeCommands.service(ctx.config, action, service)}\``;
  } catch {
    return `\`systemctl ${action} ${service}\``;
  }
}

/** The replacement instance once launched, or what it will be. */
export function replacementWords(ctx: FailoverPlan): string {
  const id = peekFactOf(ctx, SNAPSHOT_FACTS.instanceId, 'instanceId');
  const ip = peekFactOf(ctx, SNAPSHOT_FACTS.privateIp, 'ipAddress');
  return id && ip
    ? `${ctx.params.cn}-replacement ${ip} (${id})`
    : `${ctx.params.cn}-replacement (the instance launched by this run, at its private IP)`;
}
