/**
 * `withLock` for every RunLock implementation: acquire, renew every ttl/3 while `fn` runs, abort `fn`'s
 * signal with a LockLostError when renewal fails, release when `fn` settles. The Redis and in-memory locks
 * share it so that they cannot drift apart in the part that is hardest to get right.
 *
 * As with redlock's `using`, `fn`'s own outcome is what withLock returns: the signal tells `fn` to stop,
 * and `fn` (the engine) decides how to record the stop. A failed release after `fn` is logged, not thrown:
 * the lease lapses by itself.
 */
import { describeError } from '../errors.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import { LockLostError, type LockHolder, type LockLease, type RunLock } from './types.js';

export type LockPrimitives = Pick<RunLock, 'acquire' | 'extend' | 'release'>;

export interface WithLockDeps {
  readonly lock: LockPrimitives;
  readonly clock: Clock;
  readonly logger?: Logger;
}

type ExtendOutcome =
  | { readonly kind: 'extended'; readonly lease: LockLease }
  | { readonly kind: 'failed'; readonly error: unknown }
  | { readonly kind: 'unanswered' };

export async function runWithLock<T>(
  deps: WithLockDeps,
  key: string,
  ttlMs: number,
  holder: LockHolder,
  fn: (signal: AbortSignal, lease: LockLease) => Promise<T>,
): Promise<T> {
  const { lock, clock, logger } = deps;
  const initial = await lock.acquire(key, ttlMs, holder);
  let current = initial;
  // `fn` keeps one lease object for the whole run; its expiry follows the renewals.
  const live: LockLease = {
    key: initial.key,
    token: initial.token,
    fencingToken: initial.fencingToken,
    get holder() {
      return current.holder;
    },
    get expiresAt() {
      return current.expiresAt;
    },
  };
  const stopped = new AbortController();
  const lost = new AbortController();
  const renewEveryMs = Math.max(1, Math.floor(ttlMs / 3));
  // Retrying a failed renewal more often than ttl/10 only adds load to a Redis that is already struggling.
  const retryEveryMs = Math.max(1, Math.floor(ttlMs / 10));

  const lose = (error: LockLostError): void => {
    if (stopped.signal.aborted || lost.signal.aborted) return;
    logger?.warn(
      { key, fencingToken: initial.fencingToken, err: error },
      'lock lost; aborting the work under it',
    );
    lost.abort(error);
  };

  const pause = (ms: number): Promise<boolean> =>
    clock.sleep(ms, stopped.signal).then(
      () => true,
      () => false,
    );

  // A renewal that Redis has not confirmed by the time the lease lapses is as good as failed: someone else
  // may own the key by then, so the work must stop even if the call is still hanging.
  const attemptExtend = async (lease: LockLease): Promise<ExtendOutcome> => {
    const deadline = new AbortController();
    try {
      return await Promise.race<ExtendOutcome>([
        lock.extend(lease, ttlMs).then(
          (extended) => ({ kind: 'extended', lease: extended }),
          (error: unknown) => ({ kind: 'failed', error }),
        ),
        clock.sleep(Math.max(0, lease.expiresAt - clock.now()), deadline.signal).then(
          () => ({ kind: 'unanswered' }),
          // Only reached after the race settled and the deadline was cancelled: the value is ignored.
          () => ({ kind: 'unanswered' }),
        ),
      ]);
    } finally {
      deadline.abort();
    }
  };

  const renew = async (): Promise<void> => {
    for (;;) {
      if (!(await pause(renewEveryMs))) return;
      for (;;) {
        const outcome = await attemptExtend(current);
        if (outcome.kind === 'extended') {
          current = outcome.lease;
          break;
        }
        if (stopped.signal.aborted) return;
        if (outcome.kind === 'unanswered') {
          lose(new LockLostError(key, 'the lock store did not confirm the renewal before the lease lapsed'));
          return;
        }
        if (outcome.error instanceof LockLostError) {
          lose(outcome.error);
          return;
        }
        if (current.expiresAt - clock.now() <= retryEveryMs) {
          lose(
            new LockLostError(
              key,
              `renewal kept failing until the lease lapsed (${describeError(outcome.error)})`,
              outcome.error,
            ),
          );
          return;
        }
        logger?.warn({ key, err: outcome.error }, 'lock renewal failed; retrying before the lease lapses');
        if (!(await pause(retryEveryMs))) return;
      }
    }
  };

  const renewal = renew().catch((error: unknown) => {
    lose(new LockLostError(key, `renewal stopped unexpectedly (${describeError(error)})`, error));
  });

  try {
    return await fn(lost.signal, live);
  } finally {
    stopped.abort();
    // Waiting for an in-flight renewal keeps the release from racing it.
    await renewal;
    try {
      await lock.release(current);
    } catch (error) {
      // The work is done; a failed release only means the lease lapses by itself after ttlMs.
      logger?.warn(
        { key, ttlMs, err: error },
        'could not release the lock; it lapses by itself when its lease ends',
      );
    }
  }
}
