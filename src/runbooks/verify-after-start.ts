/**
 * Verify after start, one strict check for both failover modes (docs/runbooks.md §Standby failover and
 * §Snapshot failover, step `verify`): the machine that took over runs kcnd, reports the failed CN's node
 * address, has CN and PN peers, reaches the PNs' reference height, and signs as the failed CN within the
 * deadline. Any of these failing fails the run, whose undos then roll it back. All waits share one deadline.
 */
import type { FailoverContext, FailoverPlan } from './failover-params.js';
import type { HostRef } from '../ports/shell.js';
import type { NodeEndpoint } from '../ports/node-rpc.js';
import { PROBE_TIMEOUT_MS, lagOf, proxyNodes, referenceHeight, reportedAddress } from './cell-nodes.js';
import { STANDBY_FACTS, recordSigning } from './failover-facts.js';
import { opsOf } from './node-ops.js';
import { sameAddress } from './nodekey.js';
import { SafetyGateError, describeError } from '../errors.js';
import { formatDuration } from '../config/duration.js';

/** The machine that took over the CN's identity, as the checks reach it. */
export interface Takeover {
  /** The CN role, e.g. `cn2`. */
  readonly cn: string;
  /** Its name in messages: `cn1s`, `cn2-replacement`. */
  readonly name: string;
  readonly host: HostRef;
  readonly service: string;
  readonly endpoint: NodeEndpoint;
}

/** Blocks inspected for the standby's signature. */
export const SIGNING_WINDOW = 30;

/** When Verify gives up, how long that is in all, and how often it looks again. */
export interface VerifyWindow {
  readonly deadline: number;
  readonly catchUpMs: number;
  readonly pollMs: number;
}

/** The endpoint to read committers from: the node's own JSON-RPC, else any PN's. */
export function consensusEndpoint(ctx: FailoverPlan, endpoint: NodeEndpoint): NodeEndpoint | undefined {
  if (endpoint.rpcUrl) return endpoint;
  return proxyNodes(ctx.config).find((pn) => pn.endpoint.rpcUrl !== undefined)?.endpoint;
}

/** Waits for the node to report its node address, which must be the failed CN's; returns it. */
export async function waitForFailedAddress(
  ctx: FailoverContext,
  t: Takeover,
  failedAddress: string,
  window: VerifyWindow,
): Promise<string> {
  const clock = ctx.ports.clock;
  let address: string | undefined;
  while ((address = await reportedAddress(ctx.ports, t.endpoint, ctx.signal)) === undefined) {
    if (clock.now() >= window.deadline)
      throw new SafetyGateError(
        `${t.name} did not report its node address within ${formatDuration(window.catchUpMs)}.`,
      );
    await clock.sleep(window.pollMs, ctx.signal);
  }
  if (!sameAddress(address, failedAddress))
    throw new SafetyGateError(
      `${t.name} reports node address ${address}, not ${t.cn}'s ${failedAddress}: kcnd loaded another key (a malformed or shadowing file). The run stops and its steps are undone.`,
    );
  ctx.output(`${t.name} reports node address ${address} — ${t.cn}'s`);
  return address;
}

/** Why a node's peers do not yet make it part of the cell, or undefined when they do (or are not reported). */
function peersProblem(cnPeers: number | undefined, pnPeers: number | undefined): string | undefined {
  if (cnPeers === 0) return 'it has no CN peers';
  // The PNs dial the CN by the address in their static-nodes.json: none means they cannot reach it.
  if (pnPeers === 0)
    return 'it has no PN peers (do the PNs reach it at the address in their static-nodes.json?)';
  return undefined;
}

/** Waits until the node answers within lagBlocks of the PNs, with CN and PN peers (when its source counts them). */
export async function waitInSync(ctx: FailoverContext, t: Takeover, window: VerifyWindow): Promise<void> {
  const clock = ctx.ports.clock;
  const { lagBlocks } = ctx.config.monitor;
  let last: string;
  for (;;) {
    const reference = await referenceHeight(ctx.ports, ctx.config, ctx.signal);
    let health;
    try {
      health = await ctx.ports.rpc.health(t.endpoint, { timeoutMs: PROBE_TIMEOUT_MS, signal: ctx.signal });
    } catch (error) {
      if (ctx.signal.aborted) throw error;
      health = describeError(error);
    }
    if (typeof health !== 'string') {
      const lag = lagOf(health.height, reference.height);
      const peers = peersProblem(health.cnPeers, health.pnPeers);
      if (lag <= lagBlocks && peers === undefined) {
        ctx.output(
          `height ${health.height} (PNs ${reference.height}), ${health.cnPeers === undefined ? 'CN peer count not reported by this source' : `${health.cnPeers} CN peers`}, ${health.pnPeers === undefined ? 'PN peer count not reported' : `${health.pnPeers} PN peers`}`,
        );
        return;
      }
      last = peers === undefined ? `it is ${lag} blocks behind the PNs` : `${peers} (lag ${lag})`;
    } else last = `it does not answer (${health})`;
    if (clock.now() >= window.deadline)
      throw new SafetyGateError(
        `${t.name} is not in sync after ${formatDuration(window.catchUpMs)}: ${last}.`,
      );
    await clock.sleep(window.pollMs, ctx.signal);
  }
}

/**
 * Waits for the failed CN's address among the committers of recent blocks. Not signing by the deadline
 * fails only when the address is in the committee; otherwise the monitor keeps watching.
 */
export async function waitForSigning(
  ctx: FailoverContext,
  t: Takeover,
  address: string,
  failedAddress: string,
  window: VerifyWindow,
): Promise<void> {
  const source = consensusEndpoint(ctx, t.endpoint);
  if (!source) {
    ctx.output(
      `could not check that ${t.name} signs blocks: neither it nor any PN has HTTP JSON-RPC configured`,
    );
    return;
  }
  const clock = ctx.ports.clock;
  let inCommittee = false;
  let readError: string | undefined;
  for (;;) {
    let signed = false;
    try {
      const blocks = await ctx.ports.rpc.recentBlocks(source, SIGNING_WINDOW, {
        timeoutMs: PROBE_TIMEOUT_MS,
        signal: ctx.signal,
      });
      inCommittee ||= blocks.some((b) => b.committee.some((a) => sameAddress(a, failedAddress)));
      signed = blocks.some((b) => b.committers.some((a) => sameAddress(a, failedAddress)));
      // The report's end of the outage: when and in which block the CN was first seen signing again.
      recordSigning(ctx, blocks, (a) => sameAddress(a, failedAddress));
    } catch (error) {
      if (ctx.signal.aborted) throw error;
      readError = describeError(error);
    }
    if (signed) {
      ctx.output(`${address} is among the committers of recent blocks: ${t.name} signs as ${t.cn}`);
      return;
    }
    if (clock.now() >= window.deadline) {
      if (inCommittee)
        throw new SafetyGateError(
          `${t.name} is in the committee as ${failedAddress} but signed none of the last ${SIGNING_WINDOW} blocks within ${formatDuration(window.catchUpMs)} (check its bls-nodekey and peers).`,
        );
      ctx.output(
        `${failedAddress} was not in the committee of the recent blocks, so signing could not be confirmed yet; the monitor keeps watching${readError ? ` (last error reading blocks from ${source.name}: ${readError})` : ''}`,
      );
      return;
    }
    await clock.sleep(window.pollMs, ctx.signal);
  }
}

/** Records and reports the time from the start of the run until the node serves the CN. */
export function recordTimeToRecover(ctx: FailoverContext, t: Takeover): void {
  const startedAt = ctx.fact<number>(STANDBY_FACTS.startedAt);
  if (startedAt === undefined) return;
  const ttr = ctx.ports.clock.now() - startedAt;
  ctx.setFact(STANDBY_FACTS.timeToRecoverMs, ttr);
  ctx.output(
    `${t.cn} is served by ${t.name}; time to recover ${formatDuration(ttr)} from the start of the run`,
  );
}

/** The plan text of verifyTakeover, the same in both modes. */
export function describeVerify(
  ctx: FailoverPlan,
  t: { name: string; endpoint?: NodeEndpoint },
  catchUpMs: number,
  address: string,
): string {
  const source = t.endpoint
    ? consensusEndpoint(ctx, t.endpoint)
    : proxyNodes(ctx.config).find((pn) => pn.endpoint.rpcUrl);
  return [
    `Waits up to ${formatDuration(catchUpMs)} for ${t.name} to show that:`,
    `• kcnd is active (\`systemctl is-active\`);`,
    `• the node address it reports (kaia_nodeAddress, or admin.nodeInfo over IPC) is ${address} — anything else stops the run;`,
    `• it has CN peers and PN peers, and its height is within ${ctx.config.monitor.lagBlocks} blocks of the PNs';`,
    source
      ? `• it signs blocks: its address among the committers of the last ${SIGNING_WINDOW} blocks (read from ${source.name}); in the committee but not signing by the deadline fails the run.`
      : `• signing cannot be checked: neither ${t.name} nor any PN has HTTP JSON-RPC configured.`,
    `Any check failing fails the run, and the completed steps are undone. Then reports the time to recover.`,
  ].join('\n');
}

/**
 * The whole check: kcnd active, the failed CN's address, in sync with CN and PN peers, signing. Records
 * `verifiedAt` when every check passed, so that a Verify interrupted midway runs again in full.
 */
export async function verifyTakeover(
  ctx: FailoverContext,
  t: Takeover,
  failedAddress: string,
  catchUpMs: number,
): Promise<void> {
  const window = {
    deadline: ctx.ports.clock.now() + catchUpMs,
    catchUpMs,
    pollMs: ctx.config.monitor.intervalMs,
  };
  const ops = opsOf(ctx);
  for (;;) {
    if (await ops.isActive(t.host, t.service)) break;
    if (ctx.ports.clock.now() >= window.deadline)
      throw new SafetyGateError(
        `${t.service} is not active on ${t.name} after start: see its log (/var/log/kcnd/kcnd.out).`,
      );
    await ctx.ports.clock.sleep(window.pollMs, ctx.signal);
  }
  const address = await waitForFailedAddress(ctx, t, failedAddress, window);
  await waitInSync(ctx, t, window);
  await waitForSigning(ctx, t, address, failedAddress, window);
  recordTimeToRecover(ctx, t);
  ctx.setFact(STANDBY_FACTS.verifiedAt, ctx.ports.clock.now());
}

/** The post-condition of Verify: it finished once, and the node still runs as the failed CN. */
export async function takeoverHolds(
  ctx: FailoverContext,
  t: Takeover,
  failedAddress: string,
): Promise<boolean> {
  if (ctx.fact<number>(STANDBY_FACTS.verifiedAt) === undefined) return false;
  if (!(await opsOf(ctx).isActive(t.host, t.service))) return false;
  const address = await reportedAddress(ctx.ports, t.endpoint, ctx.signal);
  return address !== undefined && sameAddress(address, failedAddress);
}
