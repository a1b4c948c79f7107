/**
 * The waits of the snapshot mode's Verify (failover-snapshot.ts): the replacement runs kcnd as the failed
 * CN, with CN peers and within lagBlocks of the PNs. Signing is reported, not required.
 */
import type { FailoverContext } from './failover-params.js';
import type { SnapshotFailoverTimings } from './failover-timings.js';
import { pnReferenceHeight, snapshotTargetOf } from './cell-nodes.js';
import { SNAPSHOT_FACTS, recordSigning, requireFact } from './failover-facts.js';
import { opsOf } from './node-ops.js';
import { sameAddress } from './nodekey.js';
import { replacementEndpoint, replacementOf } from './replacement.js';
import { SafetyGateError, StepTimeoutError, describeError } from '../errors.js';

/** Blocks inspected for the replacement's signature. */
export const SIGNING_WINDOW = 20;

/** What one look at the replacement found; `problem` says why it is not done yet. */
export interface Observation {
  readonly active: boolean;
  readonly address?: string;
  readonly height?: number;
  readonly cnPeers?: number;
  readonly reference?: number;
  readonly problem?: string;
}

/** One look at the replacement. Throws only when it runs with another identity than the failed CN's. */
export async function observe(ctx: FailoverContext, timings: SnapshotFailoverTimings): Promise<Observation> {
  const t = snapshotTargetOf(ctx);
  const probe = { timeoutMs: timings.probeMs, signal: ctx.signal };
  const { host } = replacementOf(ctx);
  const endpoint = replacementEndpoint(t.cn, host.address);
  const active = await opsOf(ctx).isActive(host, t.cn.service);
  if (!active) return { active, problem: `${t.cn.service} is not active` };
  let address: string;
  try {
    address = await ctx.ports.rpc.nodeAddress(endpoint, probe);
  } catch (error) {
    return { active, problem: `node address not available yet (${describeError(error)})` };
  }
  const expected = requireFact<string>(ctx, SNAPSHOT_FACTS.failedAddress);
  if (!sameAddress(address, expected))
    throw new SafetyGateError(
      `${host.name} ${host.address} reports node address ${address}, not ${ctx.params.cn}'s ${expected}: kcnd did not load the installed nodekey`,
    );
  const reference = (await pnReferenceHeight(ctx.ports, ctx.config, probe)).height;
  let health;
  try {
    health = await ctx.ports.rpc.health(endpoint, probe);
  } catch (error) {
    return { active, address, problem: `no height yet (${describeError(error)})` };
  }
  const base = {
    active,
    address,
    height: health.height,
    ...(health.cnPeers === undefined ? {} : { cnPeers: health.cnPeers }),
  };
  if (reference === undefined) return { ...base, problem: 'no PN answers, so no reference height' };
  const withRef = { ...base, reference };
  if (!health.cnPeers) return { ...withRef, problem: 'no CN peers yet' };
  if (reference - health.height > ctx.config.monitor.lagBlocks)
    return { ...withRef, problem: `${reference - health.height} blocks behind the PNs` };
  return withRef;
}

/** Looks at the replacement every pollMs until it is in sync, at most catchUpMs. */
export async function waitInSync(ctx: FailoverContext, timings: SnapshotFailoverTimings): Promise<void> {
  const deadline = ctx.ports.clock.now() + timings.catchUpMs;
  let last: string | undefined;
  for (;;) {
    const seen = await observe(ctx, timings);
    if (seen.problem === undefined) {
      ctx.output(
        `in sync: address ${seen.address}, height ${seen.height} (PNs ${seen.reference}), ${seen.cnPeers} CN peers`,
      );
      return;
    }
    if (seen.problem !== last) ctx.output(`waiting: ${seen.problem}`);
    last = seen.problem;
    if (ctx.ports.clock.now() >= deadline)
      throw new StepTimeoutError(
        `${ctx.params.cn}'s replacement is not in sync after ${Math.round(timings.catchUpMs / 60_000)} min: ${seen.problem}`,
      );
    await ctx.ports.clock.sleep(timings.pollMs, ctx.signal);
  }
}

/** Signing is reported, not required: a lazily loaded volume may need a while before it commits. */
export async function reportSigning(ctx: FailoverContext, timings: SnapshotFailoverTimings): Promise<void> {
  const t = snapshotTargetOf(ctx);
  const { host } = replacementOf(ctx);
  const address = requireFact<string>(ctx, SNAPSHOT_FACTS.failedAddress);
  try {
    const blocks = await ctx.ports.rpc.recentBlocks(replacementEndpoint(t.cn, host.address), SIGNING_WINDOW, {
      timeoutMs: timings.probeMs,
      signal: ctx.signal,
    });
    const signed = blocks.filter((b) => b.committers.some((a) => sameAddress(a, address))).length;
    recordSigning(ctx, blocks, (a) => sameAddress(a, address));
    const inCommittee = blocks.filter((b) => b.committee.some((a) => sameAddress(a, address))).length;
    ctx.output(
      signed > 0
        ? `signing again: ${address} committed ${signed} of the last ${blocks.length} blocks`
        : `not among the committers of the last ${blocks.length} blocks yet (in the committee of ${inCommittee}); watch the alert thread`,
    );
  } catch (error) {
    ctx.output(`could not read recent blocks to check signing: ${describeError(error)}`);
  }
}

/** Reports the time from the preflight until the replacement is in sync. */
export function reportTimeToRecover(ctx: FailoverContext): void {
  const startedAt = ctx.fact<number>(SNAPSHOT_FACTS.startedAt);
  if (startedAt !== undefined)
    ctx.output(
      `time to recover: ${Math.round((ctx.ports.clock.now() - startedAt) / 1000)} s since the preflight`,
    );
}
