/**
 * The run lock in Redis: one key per lock holding a random owner token (SET NX PX), a holder record next
 * to it with the same lease, and a fencing counter that never expires.
 *
 * Every state change is one Lua script, so that
 * - the fencing token is issued in the same atomic step as the acquisition (two acquisitions can never
 *   share a token, and a token is never issued without the lock),
 * - extend, release and setThread act only when the stored owner token still matches.
 *
 * Failures of Redis itself become LockStoreError; "someone else holds it" is LockBusyError with the holder.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { describeError } from '../errors.js';
import type { RedisKeys } from '../infra/redis-keys.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import { LockBusyError, LockLostError, LockStoreError, type RunLock } from './types.js';
import { runWithLock } from './with-lock.js';
import { holderRecord, parseStoredHolder, validateTtl } from './holder.js';

interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

function lua(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * KEYS: lock, holder, fence. ARGV: token, ttlMs, holder JSON without its opening brace (and without
 * fencingToken). Returns the fencing token (an integer) when taken; when someone else holds it, their
 * holder JSON, or 0 if it is missing. The fencing token is spliced into the holder JSON as text: cheaper
 * than a cjson round trip on the hot path, and safe because ARGV[3] is a JSON object with at least one
 * field, minus its `{`.
 */
const ACQUIRE = lua(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fence = redis.call('INCR', KEYS[3])
  redis.call('SET', KEYS[2], '{"fencingToken":' .. fence .. ',' .. ARGV[3], 'PX', ARGV[2])
  return fence
end
return redis.call('GET', KEYS[2]) or 0
`);

/** KEYS: lock, holder. ARGV: token, ttlMs. Returns 1 when extended, 0 when the token no longer matches. */
const EXTEND = lua(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
`);

/** KEYS: lock, holder. ARGV: token. Returns 1 when released, 0 when the token no longer matches. */
const RELEASE = lua(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
`);

/** KEYS: lock, holder. ARGV: token, channel, ts. Returns 1 when recorded, 0 when the token no longer matches. */
const SET_THREAD = lua(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local raw = redis.call('GET', KEYS[2])
if not raw then
  return 0
end
local holder = cjson.decode(raw)
holder['thread'] = {channel = ARGV[2], ts = ARGV[3]}
redis.call('SET', KEYS[2], cjson.encode(holder), 'KEEPTTL')
return 1
`);

export interface RedisLockDeps {
  /**
   * The connection to use. Its options decide how fast a dead Redis is noticed: with the ioredis
   * defaults a command waits through 20 reconnection attempts; set `maxRetriesPerRequest` (and a
   * `commandTimeout` below the lock TTL) so that a renewal fails in time rather than hanging.
   */
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly clock: Clock;
  readonly logger?: Logger;
}

export function createRedisLock(deps: RedisLockDeps): RunLock {
  const { redis, keys, clock, logger } = deps;

  /** Runs a script (loading it again if Redis forgot it); any failure of Redis becomes a LockStoreError. */
  const run = async (
    what: string,
    key: string,
    script: LuaScript,
    scriptKeys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> => {
    try {
      try {
        return await redis.evalsha(script.sha, scriptKeys.length, ...scriptKeys, ...args);
      } catch (error) {
        // Scripts live in Redis's script cache, which a restart or SCRIPT FLUSH empties.
        if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
          return await redis.eval(script.source, scriptKeys.length, ...scriptKeys, ...args);
        }
        throw error;
      }
    } catch (error) {
      throw storeError(what, key, error);
    }
  };

  const store = async <T>(what: string, key: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      throw storeError(what, key, error);
    }
  };

  const lockKeys = (name: string) => [keys.lock(name), keys.lockHolder(name)] as const;

  const lock: RunLock = {
    async acquire(key, ttlMs, holder) {
      validateTtl(ttlMs);
      const token = randomBytes(16).toString('hex');
      // Measured before the call: the lease is taken to end no later than Redis ends it.
      const startedAt = clock.now();
      const reply = await run(
        'acquiring',
        key,
        ACQUIRE,
        [keys.lock(key), keys.lockHolder(key), keys.lockFence(key)],
        [token, ttlMs, JSON.stringify(holderRecord(holder)).slice(1)],
      );
      if (typeof reply === 'number' && reply > 0) {
        return { key, token, fencingToken: reply, holder, expiresAt: startedAt + ttlMs };
      }
      throw new LockBusyError(key, typeof reply === 'string' ? parseStoredHolder(reply) : undefined);
    },

    async extend(lease, ttlMs) {
      validateTtl(ttlMs);
      const startedAt = clock.now();
      const reply = await run('extending', lease.key, EXTEND, lockKeys(lease.key), [lease.token, ttlMs]);
      if (reply !== 1) {
        throw new LockLostError(lease.key, 'another owner holds it now, or its lease lapsed');
      }
      return {
        key: lease.key,
        token: lease.token,
        fencingToken: lease.fencingToken,
        holder: lease.holder,
        expiresAt: startedAt + ttlMs,
      };
    },

    async release(lease) {
      const reply = await run('releasing', lease.key, RELEASE, lockKeys(lease.key), [lease.token]);
      return reply === 1;
    },

    async isHeld(lease) {
      const token = await store('checking', lease.key, () => redis.get(keys.lock(lease.key)));
      return token === lease.token;
    },

    async holder(key) {
      const [token, raw] = await store('reading', key, () =>
        redis.mget(keys.lock(key), keys.lockHolder(key)),
      );
      if (token === null || token === undefined || typeof raw !== 'string') return undefined;
      return parseStoredHolder(raw);
    },

    async setThread(lease, thread) {
      const reply = await run('recording the thread of', lease.key, SET_THREAD, lockKeys(lease.key), [
        lease.token,
        thread.channel,
        thread.ts,
      ]);
      if (reply !== 1) {
        logger?.debug({ key: lease.key }, 'thread not recorded: the lease is no longer held');
      }
    },

    withLock(key, ttlMs, holder, fn) {
      return runWithLock({ lock, clock, ...(logger ? { logger } : {}) }, key, ttlMs, holder, fn);
    },
  };
  return lock;
}

function storeError(what: string, key: string, error: unknown): LockStoreError {
  return new LockStoreError(
    `Redis failed while ${what} the lock ${key}: ${describeError(error)}; check that Redis is reachable and healthy`,
    error,
  );
}
