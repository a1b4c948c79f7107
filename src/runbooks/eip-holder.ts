/**
 * Who holds the Elastic IP before a failover moves it (docs/runbooks.md §Snapshot failover, `preflight` and
 * `confirm-eip-holder`): the failed CN's recorded instance, nothing, or the machine taking over (a resumed
 * run) are expected. Any other holder means the configuration or the cell is not what cellops believes — the
 * allocation id may be another service's — and an approver must confirm in so many words before the address
 * is taken from it.
 */
import type { FailoverContext, FailoverPlan, FailoverStep } from './failover-params.js';
import { SafetyGateError } from '../errors.js';

/** Facts of the Elastic IP check, shared by both modes. */
export const EIP_FACTS = {
  /** The instance holding the address when the run looked (null: none). */
  holder: 'eipHolder',
  /** The foreign holder an approver confirmed the address may be taken from. */
  confirmedForeign: 'eipForeignConfirmed',
} as const;

/** What the failover expects of the address: where it comes from, where it goes. */
export interface EipMove {
  readonly allocationId: string;
  /** The failed CN's recorded instance, if it has one. */
  readonly failedInstanceId?: string;
  /** The machine taking over, once known. */
  readonly takerInstanceId?: string;
}

export type EipHolderKind = 'none' | 'failed' | 'taker' | 'foreign';

export interface EipHolder {
  readonly kind: EipHolderKind;
  readonly instanceId?: string;
  readonly publicIp?: string;
}

/** Reads the address's holder (DescribeAddresses) and records it; a missing allocation is a SafetyGateError. */
export async function readEipHolder(ctx: FailoverContext, move: EipMove): Promise<EipHolder> {
  const eip = await ctx.ports.cloud.describeAddress(move.allocationId);
  if (!eip)
    throw new SafetyGateError(
      `Elastic IP ${move.allocationId} of ${ctx.params.cn} does not exist in this region`,
    );
  const id = eip.instanceId;
  const kind: EipHolderKind =
    id === undefined
      ? 'none'
      : id === move.failedInstanceId
        ? 'failed'
        : id === move.takerInstanceId
          ? 'taker'
          : 'foreign';
  ctx.setFact(EIP_FACTS.holder, id ?? null);
  return {
    kind,
    ...(id === undefined ? {} : { instanceId: id }),
    ...(eip.publicIp ? { publicIp: eip.publicIp } : {}),
  };
}

/** One line for the preflight's output about the holder. */
export function holderLine(move: EipMove, holder: EipHolder): string {
  const where = `Elastic IP ${move.allocationId} (${holder.publicIp ?? '?'})`;
  if (holder.kind === 'foreign')
    return `WARNING: ${where} is held by ${holder.instanceId}, which is neither ${move.failedInstanceId ?? "the failed CN's instance"} nor the new machine: an approver will have to confirm taking it`;
  return `${where} is on ${holder.instanceId ?? 'no instance'}${holder.kind === 'failed' ? " (the failed CN's instance)" : ''}`;
}

/**
 * Throws unless the address may be moved now: held by the expected instances or nothing, or by the very
 * foreign instance an approver confirmed.
 */
export async function requireEipMovable(ctx: FailoverContext, move: EipMove): Promise<EipHolder> {
  const holder = await readEipHolder(ctx, move);
  if (holder.kind !== 'foreign' || ctx.fact<string>(EIP_FACTS.confirmedForeign) === holder.instanceId)
    return holder;
  throw new SafetyGateError(
    `Elastic IP ${move.allocationId} is now held by ${holder.instanceId}, which is neither ${ctx.params.cn}'s instance ${move.failedInstanceId ?? '(none recorded)'} nor the new machine, and no approver confirmed taking it from there. Check nodes.${ctx.params.cn}.failover.ip.allocationId; resume to be asked to confirm, or abort.`,
  );
}

/**
 * The manual step before the move when the address is held by a foreign instance: an approver confirms,
 * in so many words, that taking the address from that instance is right. Skipped otherwise.
 */
export function confirmEipHolderStep(moveOf: (ctx: FailoverPlan) => EipMove | undefined): FailoverStep {
  return {
    id: 'confirm-eip-holder',
    title: 'Confirm taking the Elastic IP from an unexpected instance',
    destructive: true,
    kind: 'manual',
    describe(ctx) {
      const move = moveOf(ctx);
      const holder = ctx.fact<string | null>(EIP_FACTS.holder);
      return [
        `Only when Elastic IP ${move?.allocationId ?? '(not configured)'} is held by an instance other than ${ctx.params.cn}'s (${move?.failedInstanceId ?? 'none recorded'}) or the new machine${holder ? ` — it was on ${holder} when the run looked` : ''}.`,
        `Approve ONLY after you have checked, outside cellops, that ${holder ?? 'that instance'} does not serve anything that needs this address (it may belong to another service, or the configured allocation id may be wrong): the next step moves it to the machine taking over ${ctx.params.cn}.`,
      ].join('\n');
    },
    async when(ctx) {
      const move = moveOf(ctx);
      if (!move) return false;
      return (await readEipHolder(ctx, move)).kind === 'foreign';
    },
    async run(ctx) {
      const holder = ctx.fact<string | null>(EIP_FACTS.holder);
      if (holder) ctx.setFact(EIP_FACTS.confirmedForeign, holder);
      ctx.output(`an approver confirmed taking the Elastic IP from ${holder ?? 'its holder'}`);
    },
    async verify(ctx) {
      return ctx.fact<string>(EIP_FACTS.confirmedForeign) !== undefined;
    },
  };
}
