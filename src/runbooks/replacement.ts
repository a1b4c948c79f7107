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

/**
 * How the replacement is reached: over SSH at the private IP RunInstances gave it, with the host keys
 * pinned for it from its console when there are (replacement-host-key.ts), else checked by known_hosts.
 */
export function replacementHost(cn: string, privateIp: string, hostKeys?: readonly string[]): HostRef {
  return { name: `${cn}-replacement`, address: privateIp, ...(hostKeys === undefined ? {} : { hostKeys }) };
}

/** The replacement's metrics and RPC endpoints: the CN's, with the host swapped for the private IP. */
export function replacementEndpoint(
  node: NodeInventoryEntry,
  privateIp: string,
  hostKeys?: readonly string[],
): NodeEndpoint {
  const host = replacementHost(node.name, privateIp, hostKeys);
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

/**
 * The replacement this run launched, from the facts `launch` recorded, with the host keys pinned for it:
 * every SSH command to the replacement goes to this HostRef, so none can skip the pin.
 */
export function replacementOf(ctx: FailoverContext): { instanceId: string; host: HostRef } {
  const instanceId = requireFactOf(ctx, SNAPSHOT_FACTS.instanceId, 'instanceId');
  return {
    instanceId,
    host: replacementHost(
      ctx.params.cn,
      requireFactOf(ctx, SNAPSHOT_FACTS.privateIp, 'ipAddress'),
      ctx.fact<readonly string[]>(SNAPSHOT_FACTS.hostKeys),
    ),
  };
}

/**
 * The machine that served the CN when this run started, as the fence reaches it: a replacement an earlier
 * failover launched carries the host keys pinned for it then (recorded with the role).
 */
export function failedHostOf(ctx: FailoverContext): HostRef {
  const keys = ctx.fact<readonly string[]>(SNAPSHOT_FACTS.failedHostKeys);
  return {
    name: ctx.params.cn,
    address: requireFactOf(ctx, SNAPSHOT_FACTS.failedHost, 'host'),
    ...(keys === undefined ? {} : { hostKeys: keys }),
  };
}

/**
 * A fresh instance answers SSH some time after `running`. Unreachable and timeouts are waited out; a
 * refused host key is not: either the host presents another key than the one pinned from its console
 * (not the instance we launched, or its keys were changed), or, without a pin, known_hosts has no entry
 * for it.
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
      ) {
        if (host.hostKeys !== undefined)
          throw new SafetyGateError(
            `${instanceId} at ${host.address} does not present the host key its console printed, so it is not trusted and nothing was run there: ${error.message} ` +
              `Inspect the instance (EC2 serial console), terminate it, and start the failover again.`,
          );
        throw new SafetyGateError(
          `${instanceId} at ${host.address} presents a host key known_hosts does not list (${error.message}). ` +
            'Keep the SSH host keys in the CN image and add a known_hosts entry for the subnet (e.g. a 10.0.2.* pattern), then resume; ' +
            'or set nodes.<cn>.failover.launch.hostKeys: console to pin the key the instance prints on its console.',
        );
      }
      if (error instanceof CellopsError && !error.retryable && error.code !== 'command_failed') throw error;
      if (ctx.ports.clock.now() >= deadline)
        throw new StepTimeoutError(
          `${instanceId} at ${host.address} did not answer SSH within ${Math.round(timings.sshReadyMs / 1000)} s: ${describeError(error)}`,
        );
      await ctx.ports.clock.sleep(timings.pollMs, ctx.signal);
    }
  }
}
