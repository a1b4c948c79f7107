/**
 * The run lock in process memory, with the same semantics as the Redis lock: random owner tokens, a
 * fencing counter per key that survives releases, leases that lapse by the Clock. For the sandbox when no
 * Redis exists, and for unit tests driven by a manual clock. It protects one process only.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import { LockBusyError, LockLostError, type LockHolder, type LockLease, type RunLock } from './types.js';
import { runWithLock } from './with-lock.js';
import { holderRecord, validateTtl, type StoredHolder } from './holder.js';

interface Entry {
  readonly token: string;
  readonly fencingToken: number;
  holder: LockHolder;
  expiresAt: number;
}

export interface MemoryLockDeps {
  readonly clock: Clock;
  readonly logger?: Logger;
}

export function createMemoryLock(deps: MemoryLockDeps): RunLock {
  const { clock, logger } = deps;
  const entries = new Map<string, Entry>();
  const fences = new Map<string, number>();

  /** The live entry of `key`; a lapsed one is dropped, as Redis drops an expired key. */
  const live = (key: string): Entry | undefined => {
    const entry = entries.get(key);
    if (entry && entry.expiresAt <= clock.now()) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  };

  const owned = (lease: LockLease): Entry | undefined => {
    const entry = live(lease.key);
    return entry?.token === lease.token ? entry : undefined;
  };

  const stored = (entry: Entry): StoredHolder => ({
    ...holderRecord(entry.holder),
    fencingToken: entry.fencingToken,
  });

  const lock: RunLock = {
    async acquire(key, ttlMs, holder) {
      validateTtl(ttlMs);
      const current = live(key);
      if (current) {
        throw new LockBusyError(key, stored(current));
      }
      const fencingToken = (fences.get(key) ?? 0) + 1;
      fences.set(key, fencingToken);
      const token = randomBytes(16).toString('hex');
      const expiresAt = clock.now() + ttlMs;
      entries.set(key, { token, fencingToken, holder: holderRecord(holder), expiresAt });
      return { key, token, fencingToken, holder, expiresAt };
    },

    async extend(lease, ttlMs) {
      validateTtl(ttlMs);
      const entry = owned(lease);
      if (!entry) throw new LockLostError(lease.key, 'another owner holds it now, or its lease lapsed');
      entry.expiresAt = clock.now() + ttlMs;
      return { ...lease, expiresAt: entry.expiresAt };
    },

    async release(lease) {
      if (!owned(lease)) return false;
      entries.delete(lease.key);
      return true;
    },

    async isHeld(lease) {
      return owned(lease) !== undefined;
    },

    async holder(key) {
      const entry = live(key);
      return entry ? stored(entry) : undefined;
    },

    async setThread(lease, thread) {
      const entry = owned(lease);
      if (!entry) {
        logger?.debug({ key: lease.key }, 'thread not recorded: the lease is no longer held');
        return;
      }
      entry.holder = { ...entry.holder, thread: { channel: thread.channel, ts: thread.ts } };
    },

    withLock(key, ttlMs, holder, fn) {
      return runWithLock({ lock, clock, ...(logger ? { logger } : {}) }, key, ttlMs, holder, fn);
    },
  };
  return lock;
}
