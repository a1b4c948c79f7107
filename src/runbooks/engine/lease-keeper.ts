/**
 * The two leases a driven run holds, and the checkpoint that depends on one of them:
 * - the owner lease (this process drives the run): every save is guarded by it, and when it is gone the
 *   driver stops, unless Redis lost everything and the run is restored from memory;
 * - the run lock (the run may act on the cell): taken again on resume, checked right before every step
 *   (the fencing check), renewed by the heartbeat; losing it aborts the driver's lock signal.
 */
import { describeError } from '../../errors.js';
import { LockBusyError, LockLostError } from '../../locks/types.js';
import {
  type DriverContext,
  abortRequested,
  audit,
  auditSoon,
  throwIfStopped,
  wake,
} from './driver-context.js';
import { RunHandedOverError } from './engine-errors.js';
import { lockHolderOf } from './run-record.js';

/** Saves the run record while this process holds its owner lease; stops the driver when it does not. */
export async function save(ctx: DriverContext): Promise<void> {
  const { store, run, ownerId } = ctx;
  throwIfStopped(ctx);
  if (
    (await store.saveRun(run, { owner: ownerId })) ||
    ((await restoreLostState(ctx)) && (await store.saveRun(run, { owner: ownerId })))
  ) {
    ctx.saves += 1;
    return;
  }
  ctx.stopCtl.abort(
    new RunHandedOverError(run.id, 'its owner lease lapsed and another process may drive it'),
  );
  throwIfStopped(ctx);
}

/**
 * Our owner lease is gone. Usually another process took the run over and this one must stop. But when
 * the record is gone too, nobody can: Redis lost its data (restarted without persistence, flushed),
 * and the only copy of the run is this process's memory. Then the run is taken back and written again,
 * and the lock counts as lost, so that the run pauses before its next step (a step in flight is
 * interrupted, as when the lock is lost) and says why; resume takes a new lock. Returns whether it did.
 */
export function restoreLostState(ctx: DriverContext): Promise<boolean> {
  // The heartbeat and a save can notice at the same moment: one restoration serves both.
  ctx.restoring ??= restoreOnce(ctx).finally(() => {
    ctx.restoring = undefined;
  });
  return ctx.restoring;
}

async function restoreOnce(ctx: DriverContext): Promise<boolean> {
  const { store, run, ownerId, timings, logger } = ctx;
  const [owner, stored] = await Promise.all([store.ownerOf(run.id), store.loadRun(run.id)]);
  if (owner !== undefined || stored !== undefined) return false;
  if (!(await store.acquireOwner(run.id, ownerId, timings.ownerLeaseMs))) return false;
  logger.error(
    {},
    'Redis lost the run record, its owner lease and lock (restarted without persistence?); recording the run again from memory and pausing it',
  );
  if (!run.dryRun && !ctx.lockCtl.signal.aborted) {
    ctx.lockCtl.abort(
      new LockLostError(
        run.lockKey,
        "Redis lost this run's record and lock (restarted without persistence, or flushed; its audit trail " +
          'before now is gone too) and the run was recorded again from the memory of the process driving it',
      ),
    );
  }
  auditSoon(ctx, {
    what: 'run-restored',
    detail: 'Redis had lost the run record; written again from memory',
  });
  wake(ctx);
  return true;
}

/** Releases the owner lease at the end, or when handing the run over; a failure is only logged. */
export async function releaseOwnerLease(ctx: DriverContext): Promise<void> {
  await ctx.store
    .releaseOwner(ctx.run.id, ctx.ownerId)
    .catch((error: unknown) => ctx.logger.warn({ err: error }, 'releasing the owner lease failed'));
}

/** Makes sure the run holds its lock, taking it again if needed; the reason when it cannot. */
export async function ensureLock(ctx: DriverContext): Promise<true | string> {
  const { run, lock, timings, clock } = ctx;
  if (run.dryRun) return true;
  if (ctx.lease && !ctx.lockCtl.signal.aborted && (await lock.isHeld(ctx.lease))) return true;
  try {
    ctx.lease = await lock.acquire(run.lockKey, timings.lockTtlMs, lockHolderOf(run, clock.now()));
  } catch (error) {
    if (error instanceof LockBusyError) return error.message;
    throw error;
  }
  ctx.lockCtl = new AbortController();
  run.fencingToken = ctx.lease.fencingToken;
  await audit(ctx, { what: 'lock-acquired', detail: `fencing token ${ctx.lease.fencingToken}` });
  return true;
}

/** The fencing check before every step. */
export async function fenced(ctx: DriverContext): Promise<boolean> {
  if (ctx.run.dryRun) return true;
  if (!ctx.lease || ctx.lockCtl.signal.aborted) return false;
  return ctx.lock.isHeld(ctx.lease);
}

/**
 * Renews the owner lease and the run lock every third of the shorter TTL until `signal` aborts, and
 * polls for a remote abort while a step runs. Stops the driver when the owner lease is lost.
 */
export async function keepLeases(ctx: DriverContext, signal: AbortSignal): Promise<void> {
  const { timings, clock } = ctx;
  const every = Math.max(1, Math.floor(Math.min(timings.lockTtlMs, timings.ownerLeaseMs) / 3));
  let ownerExpiresAt = clock.now() + timings.ownerLeaseMs;
  for (;;) {
    try {
      await clock.sleep(every, signal);
    } catch {
      return;
    }
    const renewed = await renewOwnerLease(ctx, ownerExpiresAt);
    if (renewed === 'lost') return;
    if (renewed === 'renewed') ownerExpiresAt = clock.now() + timings.ownerLeaseMs;
    await renewLock(ctx);
    // The poll fallback for a remote abort while a step runs (notifications are the fast path).
    try {
      if (!ctx.abortCtl.signal.aborted && (await abortRequested(ctx))) wake(ctx);
    } catch (error) {
      ctx.logger.warn({ err: error }, 'reading the abort request failed');
    }
  }
}

/** One renewal of the owner lease; 'lost' once the driver was stopped for it. */
async function renewOwnerLease(
  ctx: DriverContext,
  ownerExpiresAt: number,
): Promise<'renewed' | 'failed' | 'lost'> {
  const { store, run, ownerId, timings, clock } = ctx;
  try {
    if (!(await store.renewOwner(run.id, ownerId, timings.ownerLeaseMs)) && !(await restoreLostState(ctx))) {
      ctx.stopCtl.abort(
        new RunHandedOverError(run.id, 'its owner lease lapsed and another process may drive it'),
      );
      return 'lost';
    }
    return 'renewed';
  } catch (error) {
    if (clock.now() >= ownerExpiresAt) {
      ctx.stopCtl.abort(
        new RunHandedOverError(run.id, `its owner lease could not be renewed: ${describeError(error)}`),
      );
      return 'lost';
    }
    ctx.logger.warn({ err: error }, 'renewing the owner lease failed; trying again');
    return 'failed';
  }
}

/** One renewal of the run lock, if held; losing it (or failing past its expiry) aborts the lock signal. */
async function renewLock(ctx: DriverContext): Promise<void> {
  const current = ctx.lease;
  if (!current || ctx.lockCtl.signal.aborted) return;
  try {
    const extended = await ctx.lock.extend(current, ctx.timings.lockTtlMs);
    if (ctx.lease === current) ctx.lease = extended;
  } catch (error) {
    if (error instanceof LockLostError) ctx.lockCtl.abort(error);
    else if (ctx.clock.now() >= current.expiresAt) {
      ctx.lockCtl.abort(
        new LockLostError(ctx.run.lockKey, `could not renew it: ${describeError(error)}`, error),
      );
    } else ctx.logger.warn({ err: error }, 'renewing the run lock failed; trying again');
    wake(ctx);
  }
}
