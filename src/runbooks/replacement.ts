/**
 * The replacement a snapshot-mode failover launches (failover-snapshot.ts): how it is reached (SSH and
 * RPC at the private IP RunInstances gave it), and the wait until a fresh instance answers SSH.
 */
import type { FailoverContext } from './failover-params.js';
import type { NodeInventoryEntry } from '../config/config.js';
import type { NodeEndpoint } from '../ports/node-rpc.js';
import type { HostRef } from '../ports/shell.js';
import type { SnapshotFailoverTimings } from './failover-timings.js';
import { SNAPSHOT_FACTS } from './failover-facts.js';
import { opsContextOf, ping } from './snapshot-ops.js';
import { CellopsError, SafetyGateError, StepTimeoutError, describeError } from '../errors.js';
import { requireFactOf } from './shaped-facts.js';

/** How the replacement is reached: over SSH at the private IP RunInstances gave it. */
export function replacementHost(cn: string, privateIp: string): HostRef {
  return { name: `${cn}-replacement`, address: privateIp };
}

/** The replacement's metrics and RPC endpoints: the CN's, with the host swapped for the private IP. */
export function replacementEndpoint(node: NodeInventoryEntry, privateIp: string): NodeEndpoint {
  const host = replacementHost(node.name, privateIp);
  const swap = (url: string): string => {
    const parsed = new URL(url);
    parsed.hostname = privateIp.includes(':') ? `[${privateIp}]` : privateIp;
    return parsed.toString();
  };
  return {
    name: host.name,
    host,
    metricsUrl: swap(node.endpoint.metricsUrl),
    ...(node.endpoint.rpcUrl === undefined ? {} : { rpcUrl: swap(node.endpoint.rpcUrl) }),
    dataDir: node.dataDir,
    binary: 'kcn',
  };
}

/** The replacement this run launched, from the facts `launch` recorded. */
export function replacementOf(ctx: FailoverContext): { instanceId: string; host: HostRef } {
  const instanceId = requireFactOf(ctx, SNAPSHOT_FACTS.instanceId, 'instanceId');
  return {
    instanceId,
    host: replacementHost(ctx.params.cn, requireFactOf(ctx, SNAPSHOT_FACTS.privateIp, 'ipAddress')),
  };
}

/**
 * A fresh instance answers SSH some time after `running`. Unreachable and timeouts are waited out; a
 * refused host key is not: a new instance has a host key known_hosts does not list unless the image keeps
 * its host keys and known_hosts has an entry for the subnet (a pattern such as `10.0.2.*`).
 */
export async function waitForSsh(
  ctx: FailoverContext,
  host: HostRef,
  instanceId: string,
  timings: SnapshotFailoverTimings,
): Promise<void> {
  const deadline = ctx.ports.clock.now() + timings.sshReadyMs;
  for (;;) {
    try {
      await ping(opsContextOf(ctx, timings.commandMs), host, Math.min(timings.commandMs, 30_000));
      ctx.output(`${host.name} ${host.address} answers over SSH`);
      return;
    } catch (error) {
      if (
        error instanceof CellopsError &&
        (error.code === 'host_key_unknown' || error.code === 'host_key_mismatch')
      )
        throw new SafetyGateError(
          `${instanceId} at ${host.address} presents a host key known_hosts does not list (${error.message}). ` +
            'Keep the SSH host keys in the CN image and add a known_hosts entry for the subnet (e.g. a 10.0.2.* pattern), then resume.',
        );
      if (error instanceof CellopsError && !error.retryable && error.code !== 'command_failed') throw error;
      if (ctx.ports.clock.now() >= deadline)
        throw new StepTimeoutError(
          `${instanceId} at ${host.address} did not answer SSH within ${Math.round(timings.sshReadyMs / 1000)} s: ${describeError(error)}`,
        );
      await ctx.ports.clock.sleep(timings.pollMs, ctx.signal);
    }
  }
}
