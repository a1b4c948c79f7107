/**
 * The moves of a planned switchover (switchover.ts): the CN's key staged on the standby before anything
 * stops, the stop-to-start section itself, its rollback, and the count of blocks the CN missed in between.
 * Staged and moved-aside files are named after the run (`<path>.cellops-staged-<run>`,
 * `<path>.cellops-<run>`), so a resumed run and the undo find them without relying on facts.
 */
import type { FailoverContext } from './failover-params.js';
import type { BlockConsensusInfo } from '../ports/node-rpc.js';
import { PROBE_TIMEOUT_MS, pnReferenceHeight, type StandbyTarget } from './cell-nodes.js';
import { STANDBY_FACTS } from './failover-facts.js';
import { daemonState, fenceCnOverSsh, untrackedMessage } from './fencing.js';
import { asidePath, nodeKeyPaths, type NodeOps } from './node-ops.js';
import { nodeAddressFromKey, nodekeyChecksum, sameAddress } from './nodekey.js';
import { announceIp, moveAliasIpBack, moveEip, moveEipBack } from './standby-ip.js';
import { backupChecksumOf, restoreStandbyKeys, shortChecksum, startStandbyService } from './standby-keys.js';
import { SIGNING_WINDOW, consensusEndpoint, type VerifyWindow } from './verify-after-start.js';
import { readBackupKeys } from './backup-keys.js';
import { ExternalError, HostError, SafetyGateError, describeError } from '../errors.js';
import { formatDuration } from '../config/duration.js';

/** Facts of a switchover besides the standby failover's. */
export const SWITCHOVER_FACTS = {
  ...STANDBY_FACTS,
  /** When the active's stop was issued: the start of the gap. */
  stopAt: 'switchStopAt',
  /** The PNs' height just before the stop: the blocks missed are counted after it. */
  stopHeight: 'switchStopHeight',
  /** When kcnd's start on the standby returned. */
  startAt: 'switchStartAt',
  /** The PNs' height once the active was fenced: a signature of the CN on a later block is the standby's. */
  fencedHeight: 'switchFencedHeight',
  /** Blocks the CN was in the committee of and did not sign, between the active's last and the standby's first. */
  missedBlocks: 'missedBlocks',
} as const;

/** Where the CN's key waits on the standby until the switch: beside the key, under a name kcnd never loads. */
export function stagedPath(path: string, runId: string): string {
  return `${path}.cellops-staged-${runId}`;
}

/** The staged copies of the CN's nodekey and bls-nodekey on the standby. */
export function stagedPaths(t: StandbyTarget, runId: string): { nodekey: string; blsNodekey: string } {
  const p = nodeKeyPaths(t.standby.dataDir);
  return { nodekey: stagedPath(p.nodekey, runId), blsNodekey: stagedPath(p.blsNodekey, runId) };
}

/**
 * Writes the backup's nodekey (and bls-nodekey when there is one) to the staging names on the standby,
 * each checked by checksum. The standby keeps running with its own key: nothing loads these files.
 */
export async function stageKeys(ctx: FailoverContext, ops: NodeOps, t: StandbyTarget): Promise<void> {
  const keys = await readBackupKeys(ops, t);
  const backup = keys.key;
  const expected = ctx.fact<string>(STANDBY_FACTS.failedAddress);
  const address = nodeAddressFromKey(backup);
  if (expected !== undefined && !sameAddress(expected, address))
    throw new SafetyGateError(
      `The nodekey backup changed during the run: it now holds ${address}, not ${expected} as in preflight. Nothing was staged.`,
    );
  const staged = stagedPaths(t, ctx.runId);
  await writeChecked(ops, t, staged.nodekey, backup);
  ctx.output(
    `staged ${t.role}'s nodekey on ${t.standby.name} at ${staged.nodekey} (mode 0600, ${shortChecksum(nodekeyChecksum(backup))} verified); kcnd does not load it there`,
  );
  const bls = keys.bls;
  if (bls !== undefined) {
    await writeChecked(ops, t, staged.blsNodekey, bls);
    ctx.output(`staged ${t.role}'s bls-nodekey at ${staged.blsNodekey}`);
  } else ctx.output(`no bls-nodekey beside the backup: kcnd derives ${t.role}'s from the nodekey at start`);
}

async function writeChecked(ops: NodeOps, t: StandbyTarget, path: string, content: string): Promise<void> {
  await ops.writeFile(t.standby.host, path, content);
  if ((await ops.sha256(t.standby.host, path)) !== nodekeyChecksum(content))
    throw new ExternalError(
      'checksum_mismatch',
      `The copy written to ${t.standby.name}:${path} does not match the backup.`,
    );
}

export async function removeStagedKeys(ctx: FailoverContext, ops: NodeOps, t: StandbyTarget): Promise<void> {
  for (const path of Object.values(stagedPaths(t, ctx.runId))) {
    if (!(await ops.exists(t.standby.host, path))) continue;
    await ops.remove(t.standby.host, path, t.standby.dataDir);
    ctx.output(`removed the staged copy ${path} from ${t.standby.name}`);
  }
}

/** Runs both branches to the end (neither is left running behind an undo), then throws the first error. */
async function both(a: Promise<void>, b: Promise<void>): Promise<void> {
  const [first, second] = await Promise.allSettled([a, b]);
  if (first.status === 'rejected') throw first.reason;
  if (second.status === 'rejected') throw second.reason;
}

/** Stops the active and moves its key aside; a switchover needs it reachable, so anything else stops here. */
async function fenceActive(ctx: FailoverContext, ops: NodeOps, t: StandbyTarget): Promise<void> {
  await fenceCnOverSsh(ctx, ops, t);
  if (ctx.fact<string>(STANDBY_FACTS.fenceSsh) !== 'done')
    throw new SafetyGateError(
      `${t.cn.name} could not be reached to stop it (${ctx.fact<string>(STANDBY_FACTS.fenceSshError) ?? 'unknown error'}): a switchover needs both machines. Nothing was started on ${t.standby.name}; the undo puts ${t.role} back on ${t.cn.name}. Use /failover ${t.role} if ${t.cn.name} is down.`,
    );
}

/** Stops the standby, keeps its own keys aside (as the failover does) and moves the staged ones in place. */
async function swapStandbyKeys(ctx: FailoverContext, ops: NodeOps, t: StandbyTarget): Promise<void> {
  const host = t.standby.host;
  await ops.service(host, t.standby.service, 'stop');
  if ((await daemonState(ops, t.standby)) !== 'stopped')
    throw new SafetyGateError(
      `${untrackedMessage(t.standby, 'after stop')}, then start the switchover again.`,
    );
  const p = nodeKeyPaths(t.standby.dataDir);
  const staged = stagedPaths(t, ctx.runId);
  for (const [live, copy] of [
    [p.blsNodekey, staged.blsNodekey],
    [p.nodekey, staged.nodekey],
  ] as const) {
    const aside = asidePath(live, ctx.runId);
    // A resumed run may find the standby's own file aside already and the CN's in place.
    if ((await ops.exists(host, live)) && !(await ops.exists(host, aside))) await ops.move(host, live, aside);
    if (await ops.exists(host, copy)) await ops.move(host, copy, live);
  }
  const expected = await backupChecksumOf(ctx, ops, t);
  if ((await ops.sha256(host, p.nodekey)) !== expected)
    throw new SafetyGateError(
      `${t.standby.name}:${p.nodekey} is not ${t.role}'s key after the swap; not starting it. The undo restores ${t.standby.name}'s own key.`,
    );
}

/** Takes the alias off the fenced active, then puts it on the standby (never on both); an EIP is reassociated. */
async function moveIpFast(ctx: FailoverContext, ops: NodeOps, t: StandbyTarget): Promise<void> {
  const ip = t.failover.ip;
  if (ip.method === 'eip') return moveEip(ctx, t, ip);
  if (ip.method !== 'alias') return;
  if ((await ops.addresses(t.cn.host, ip.device)).includes(ip.address)) {
    await ops.ipDel(t.cn.host, ip.address, ip.device);
    ctx.output(`removed ${ip.address} from ${t.cn.name}`);
  }
  if (!(await ops.addresses(t.standby.host, ip.device)).includes(ip.address)) {
    await ops.ipAdd(t.standby.host, ip.address, ip.device);
    ctx.output(`added ${ip.address} to ${ip.device} on ${t.standby.name}`);
  }
}

/**
 * The gap: the active stops (fenced: kcnd stopped, key moved aside, no kcn left) while the standby stops
 * and takes the staged key; then the address moves and kcnd starts on the standby, the address announced
 * beside the start. Returns the milliseconds from the stop being issued to kcnd's start returning.
 */
export async function switchOver(ctx: FailoverContext, ops: NodeOps, t: StandbyTarget): Promise<number> {
  const clock = ctx.ports.clock;
  const probe = { timeoutMs: PROBE_TIMEOUT_MS, signal: ctx.signal };
  const before = await pnReferenceHeight(ctx.ports, ctx.config, probe);
  if (before.height !== undefined) ctx.setFact(SWITCHOVER_FACTS.stopHeight, before.height);
  const stopAt = clock.now();
  ctx.setFact(SWITCHOVER_FACTS.stopAt, stopAt);
  await both(fenceActive(ctx, ops, t), swapStandbyKeys(ctx, ops, t));
  const [, reference] = await Promise.all([
    moveIpFast(ctx, ops, t),
    pnReferenceHeight(ctx.ports, ctx.config, probe),
  ]);
  if (reference.height !== undefined) ctx.setFact(SWITCHOVER_FACTS.fencedHeight, reference.height);
  await both(
    ops.service(t.standby.host, t.standby.service, 'start'),
    announceIp(ctx, ops, t.standby, t.failover.ip),
  );
  const startAt = clock.now();
  ctx.setFact(SWITCHOVER_FACTS.startAt, startAt);
  return startAt - stopAt;
}

/**
 * Puts the CN back where it was: the standby stopped and given its own key again, the address back on the
 * active, the active's key back and kcnd started there, then the standby started with its own key.
 * Each part checks before it acts, so it can run after a switch that failed anywhere, or twice.
 */
export async function switchBack(ctx: FailoverContext, ops: NodeOps, t: StandbyTarget): Promise<void> {
  if ((await daemonState(ops, t.standby)) !== 'stopped') {
    await ops.service(t.standby.host, t.standby.service, 'stop');
    if ((await daemonState(ops, t.standby)) !== 'stopped')
      throw new SafetyGateError(
        `Could not stop ${t.standby.service} on ${t.standby.name}, which may run as ${t.role}: not starting ${t.cn.name} again. Stop it by hand, then resume the undo by aborting the run again.`,
      );
    ctx.output(`stopped ${t.standby.service} on ${t.standby.name}`);
  }
  await restoreStandbyKeys(ctx, ops, t);
  const ip = t.failover.ip;
  if (ip.method === 'alias') await moveAliasIpBack(ctx, ops, t, ip);
  else if (ip.method === 'eip') await moveEipBack(ctx, ip);
  await restartActive(ctx, ops, t);
  await startStandbyService(ctx, ops, t);
}

async function restartActive(ctx: FailoverContext, ops: NodeOps, t: StandbyTarget): Promise<void> {
  const p = nodeKeyPaths(t.cn.dataDir);
  try {
    for (const path of [p.nodekey, p.legacyNodekey]) {
      const aside = asidePath(path, ctx.runId);
      if ((await ops.exists(t.cn.host, aside)) && !(await ops.exists(t.cn.host, path))) {
        await ops.move(t.cn.host, aside, path);
        ctx.output(`moved ${t.role}'s key back to ${path} on ${t.cn.name}`);
      }
    }
    if ((await daemonState(ops, t.cn)) === 'stopped') {
      await ops.service(t.cn.host, t.cn.service, 'start');
      ctx.output(`started ${t.cn.service} on ${t.cn.name} again: it serves ${t.role} as before`);
    }
  } catch (error) {
    if (!(error instanceof HostError)) throw error;
    ctx.output(
      `could not reach ${t.cn.name} to start ${t.role} there again (${error.message}): do it by hand`,
    );
  }
}

export interface MissedBlocks {
  /** Blocks the CN should have signed (in their committee) and did not. */
  readonly count: number;
  readonly first?: number;
  readonly last?: number;
  /** False when no signature after the gap was found among the blocks: count is a floor. */
  readonly complete: boolean;
}

/**
 * The blocks `address` missed in its first gap after block `after` (the head when the active was told to
 * stop): past the blocks it still signed, every block whose committee holds it and whose committers do
 * not, until the first it signed again. No gap at all counts 0.
 */
export function countMissedBlocks(
  blocks: readonly BlockConsensusInfo[],
  address: string,
  after: number,
): MissedBlocks {
  const sorted = blocks.filter((b) => b.number > after).sort((a, b) => a.number - b.number);
  const signed = (b: BlockConsensusInfo) => b.committers.some((a) => sameAddress(a, address));
  const expected = (b: BlockConsensusInfo) =>
    b.committee.length === 0 || b.committee.some((a) => sameAddress(a, address));
  let index = 0;
  while (index < sorted.length && signed(sorted[index]!)) index++;
  let count = 0;
  let first: number | undefined;
  let last: number | undefined;
  for (; index < sorted.length; index++) {
    const block = sorted[index]!;
    if (signed(block)) return { count, complete: true, ...(first === undefined ? {} : { first, last }) };
    if (!expected(block)) continue;
    count++;
    first ??= block.number;
    last = block.number;
  }
  return {
    count,
    complete: sorted.length > 0 && count === 0,
    ...(first === undefined ? {} : { first, last }),
  };
}

/** Reads the blocks since the stop from the chain's committers and reports the ones the CN missed. */
export async function reportMissedBlocks(
  ctx: FailoverContext,
  t: StandbyTarget,
  address: string,
): Promise<void> {
  const source = consensusEndpoint(ctx, t.standby.endpoint);
  const stopAt = ctx.fact<number>(SWITCHOVER_FACTS.stopAt);
  const stopHeight = ctx.fact<number>(SWITCHOVER_FACTS.stopHeight);
  if (!source || stopAt === undefined || stopHeight === undefined) {
    ctx.output(
      'could not count the blocks missed: no JSON-RPC endpoint to read committers from, or no height recorded at the stop',
    );
    return;
  }
  // One block a second on Kaia; a margin before the stop finds the active's last signature.
  const count = Math.min(600, Math.ceil((ctx.ports.clock.now() - stopAt) / 1000) + 10);
  try {
    const blocks = await ctx.ports.rpc.recentBlocks(source, count, {
      timeoutMs: PROBE_TIMEOUT_MS,
      signal: ctx.signal,
    });
    const missed = countMissedBlocks(blocks, address, stopHeight);
    ctx.setFact(SWITCHOVER_FACTS.missedBlocks, missed.count);
    const range =
      missed.first === undefined
        ? ''
        : missed.first === missed.last
          ? ` (#${missed.first})`
          : ` (#${missed.first}–#${missed.last})`;
    ctx.output(
      `${t.role} missed ${missed.complete ? '' : 'at least '}${missed.count} block${missed.count === 1 ? '' : 's'}${range} between its last signature on ${t.cn.name} and its first on ${t.standby.name}, counted from block #${stopHeight + 1} (committers read from ${source.name})`,
    );
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    ctx.output(`could not count the blocks missed (${describeError(error)})`);
  }
}

/**
 * Waits until the CN's address signs a block made after the active was fenced (one block of margin for a
 * seal given just before the stop): before that, recent blocks still carry the active's own signatures.
 * Not signing by the deadline fails when the address is in the committee.
 */
export async function waitForSigningAfterSwitch(
  ctx: FailoverContext,
  t: StandbyTarget,
  address: string,
  window: VerifyWindow,
): Promise<void> {
  const source = consensusEndpoint(ctx, t.standby.endpoint);
  if (!source) {
    ctx.output(
      `could not check that ${t.standby.name} signs: neither it nor any PN has HTTP JSON-RPC configured`,
    );
    return;
  }
  const after = (ctx.fact<number>(SWITCHOVER_FACTS.fencedHeight) ?? -1) + 1;
  let inCommittee = false;
  for (;;) {
    try {
      const blocks = await ctx.ports.rpc.recentBlocks(source, SIGNING_WINDOW, {
        timeoutMs: PROBE_TIMEOUT_MS,
        signal: ctx.signal,
      });
      inCommittee ||= blocks.some((b) => b.committee.some((a) => sameAddress(a, address)));
      const first = blocks.find((b) => b.number > after && b.committers.some((a) => sameAddress(a, address)));
      if (first) {
        ctx.output(
          `${t.standby.name} signs as ${t.role}: ${address} among the committers of block #${first.number}`,
        );
        return;
      }
    } catch (error) {
      if (ctx.signal.aborted) throw error;
    }
    if (ctx.ports.clock.now() >= window.deadline) {
      if (inCommittee)
        throw new SafetyGateError(
          `${t.standby.name} runs as ${t.role} but signed no block after the switch within ${formatDuration(window.catchUpMs)} (check its bls-nodekey and peers).`,
        );
      ctx.output(
        `${address} was not in the committee of the recent blocks, so signing could not be confirmed yet; the monitor keeps watching`,
      );
      return;
    }
    await ctx.ports.clock.sleep(window.pollMs, ctx.signal);
  }
}
