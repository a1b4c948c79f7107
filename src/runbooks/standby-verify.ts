/**
 * The waits of the standby mode's Verify (failover-standby.ts): the standby reports the failed CN's
 * address, catches up with CN peers, and signs as the failed CN. All share one deadline.
 */
import type { FailoverContext, FailoverPlan } from './failover-params.js';
import type { NodeEndpoint } from '../ports/node-rpc.js';
import {
  PROBE_TIMEOUT_MS,
  lagOf,
  probe,
  proxyNodes,
  referenceHeight,
  reportedAddress,
  type StandbyTarget,
} from './cell-nodes.js';
import { STANDBY_FACTS } from './failover-facts.js';
import { sameAddress } from './nodekey.js';
import { SafetyGateError, describeError } from '../errors.js';
import { formatDuration } from '../config/duration.js';

/** Blocks inspected for the standby's signature. */
export const SIGNING_WINDOW = 30;

/** When Verify gives up, how long that is in all, and how often it looks again. */
export interface VerifyWindow {
  readonly deadline: number;
  readonly catchUpMs: number;
  readonly pollMs: number;
}

/** The endpoint to read committers from: the standby's own JSON-RPC, else any PN's. */
export function consensusEndpoint(ctx: FailoverPlan, t: StandbyTarget): NodeEndpoint | undefined {
  if (t.standby.endpoint.rpcUrl) return t.standby.endpoint;
  return proxyNodes(ctx.config).find((pn) => pn.endpoint.rpcUrl !== undefined)?.endpoint;
}

/** Waits for the standby to report its node address, which must be the failed CN's; returns it. */
export async function waitForFailedAddress(
  ctx: FailoverContext,
  t: StandbyTarget,
  failedAddress: string,
  window: VerifyWindow,
): Promise<string> {
  const clock = ctx.ports.clock;
  let address: string | undefined;
  while ((address = await reportedAddress(ctx.ports, t.standby.endpoint, ctx.signal)) === undefined) {
    if (clock.now() >= window.deadline)
      throw new SafetyGateError(
        `${t.standby.name} did not report its node address within ${formatDuration(window.catchUpMs)}.`,
      );
    await clock.sleep(window.pollMs, ctx.signal);
  }
  if (!sameAddress(address, failedAddress))
    throw new SafetyGateError(
      `${t.standby.name} runs as ${address}, not as ${t.role} (${failedAddress}): kcnd loaded another key (a malformed or shadowing file). The run stops and its steps are undone.`,
    );
  ctx.output(`${t.standby.name} reports node address ${address} — ${t.role}'s`);
  return address;
}

/** Waits until the standby answers within lagBlocks of the PNs with CN peers (when its source counts them). */
export async function waitInSync(
  ctx: FailoverContext,
  t: StandbyTarget,
  window: VerifyWindow,
): Promise<void> {
  const clock = ctx.ports.clock;
  const { lagBlocks } = ctx.config.monitor;
  let last: string;
  for (;;) {
    const reference = await referenceHeight(ctx.ports, ctx.config, ctx.signal);
    const health = await probe(ctx.ports, t.standby, ctx.signal);
    if (health.ok) {
      const lag = lagOf(health.health.height, reference.height);
      const peers = health.health.cnPeers;
      if (lag <= lagBlocks && (peers === undefined || peers > 0)) {
        ctx.output(
          `height ${health.health.height} (PNs ${reference.height}), ${peers === undefined ? 'CN peer count not reported by this source' : `${peers} CN peers`}`,
        );
        return;
      }
      last = peers === 0 ? `it has no CN peers (lag ${lag})` : `it is ${lag} blocks behind the PNs`;
    } else last = `it does not answer (${health.reason})`;
    if (clock.now() >= window.deadline)
      throw new SafetyGateError(
        `${t.standby.name} is not in sync after ${formatDuration(window.catchUpMs)}: ${last}. The standby fell behind.`,
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
  t: StandbyTarget,
  address: string,
  failedAddress: string,
  window: VerifyWindow,
): Promise<void> {
  const source = consensusEndpoint(ctx, t);
  if (!source) {
    ctx.output(
      `could not check that ${t.standby.name} signs blocks: neither it nor any PN has HTTP JSON-RPC configured`,
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
    } catch (error) {
      if (ctx.signal.aborted) throw error;
      readError = describeError(error);
    }
    if (signed) {
      ctx.output(`${address} is among the committers of recent blocks: ${t.standby.name} signs as ${t.role}`);
      return;
    }
    if (clock.now() >= window.deadline) {
      if (inCommittee)
        throw new SafetyGateError(
          `${t.standby.name} is in the committee as ${failedAddress} but signed none of the last ${SIGNING_WINDOW} blocks within ${formatDuration(window.catchUpMs)} (check its bls-nodekey and peers).`,
        );
      ctx.output(
        `${failedAddress} was not in the committee of the recent blocks, so signing could not be confirmed yet; the monitor keeps watching${readError ? ` (last error reading blocks from ${source.name}: ${readError})` : ''}`,
      );
      return;
    }
    await clock.sleep(window.pollMs, ctx.signal);
  }
}

/** Records and reports the time from the start of the run until the standby serves the CN. */
export function recordTimeToRecover(ctx: FailoverContext, t: StandbyTarget): void {
  const startedAt = ctx.fact<number>(STANDBY_FACTS.startedAt);
  if (startedAt === undefined) return;
  const ttr = ctx.ports.clock.now() - startedAt;
  ctx.setFact(STANDBY_FACTS.timeToRecoverMs, ttr);
  ctx.output(
    `${t.cn.name} is served by ${t.standby.name}; time to recover ${formatDuration(ttr)} from the start of the run`,
  );
}
