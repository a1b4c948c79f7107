/**
 * The run lock: one failover at a time per cell. Implementation in src/locks/redis-lock.ts.
 */
import { CellopsError } from '../errors.js';

/** Who holds a lock, stored next to it so that a refused requester can be told. */
export interface LockHolder {
  /** Slack user id of the person who started the work. */
  readonly requester: string;
  readonly runbook: string;
  readonly node: string;
  readonly runId: string;
  /** Epoch ms when the lock was taken. */
  readonly since: number;
  /** The run's Slack thread, when known, for a permalink. */
  readonly thread?: { readonly channel: string; readonly ts: string };
}

export interface LockLease {
  readonly key: string;
  /** Random owner token; only its owner can extend or release. */
  readonly token: string;
  /** Monotonically increasing per key, issued atomically with the acquisition. */
  readonly fencingToken: number;
  readonly holder: LockHolder;
  /** Epoch ms at which the lease lapses unless extended. */
  readonly expiresAt: number;
}

export class LockBusyError extends CellopsError {
  readonly holder: LockHolder | undefined;
  constructor(key: string, holder: LockHolder | undefined) {
    super(
      'lock_busy',
      holder
        ? `${holder.runbook} on ${holder.node} (run ${holder.runId}) started by <@${holder.requester}> holds the lock ${key}`
        : `the lock ${key} is held`,
      { retryable: true },
    );
    this.holder = holder;
  }
}

export class LockLostError extends CellopsError {
  constructor(key: string, reason: string, cause?: unknown) {
    super('lock_lost', `lost the lock ${key}: ${reason}; the run stopped before its next step`, { cause });
  }
}

/** Redis itself failed (connection refused, timeout): distinct from "someone else holds it". */
export class LockStoreError extends CellopsError {
  constructor(message: string, cause?: unknown) {
    super('lock_store_failed', message, { retryable: true, cause });
  }
}

export interface RunLock {
  /** Takes the lock or throws LockBusyError (with the holder) or LockStoreError. */
  acquire(key: string, ttlMs: number, holder: LockHolder): Promise<LockLease>;
  /** Extends the lease; throws LockLostError when the token no longer matches. */
  extend(lease: LockLease, ttlMs: number): Promise<LockLease>;
  /** Releases the lock only if the token still matches; returns whether it did. */
  release(lease: LockLease): Promise<boolean>;
  /** True when the lease is still the current holder (token matches). */
  isHeld(lease: LockLease): Promise<boolean>;
  /** The current holder, if any. */
  holder(key: string): Promise<(LockHolder & { fencingToken: number }) | undefined>;
  /** Records the run's Slack thread in the holder metadata, if the lease is still held. */
  setThread(lease: LockLease, thread: { channel: string; ts: string }): Promise<void>;
  /**
   * Runs `fn` while holding the lock, renewing it every ttl/3. When renewal fails or the lock is found
   * taken, `signal` aborts with a LockLostError as its reason. Releases the lock when `fn` settles.
   */
  withLock<T>(
    key: string,
    ttlMs: number,
    holder: LockHolder,
    fn: (signal: AbortSignal, lease: LockLease) => Promise<T>,
  ): Promise<T>;
}
