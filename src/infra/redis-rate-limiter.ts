/**
 * A fixed-window rate limit in Redis: one counter per subject that expires with its window, counted and
 * checked in one script so concurrent clicks on several replicas cannot all slip through.
 */
import type { Redis } from 'ioredis';
import type { RateLimiter } from '../ports/rate-limiter.js';

/** KEYS: counter. ARGV: limit, window ms. Returns {allowed 1|0, ms left in the window}. */
const TAKE = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if count >= tonumber(ARGV[1]) then
  local left = redis.call('PTTL', KEYS[1])
  if left < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]); left = tonumber(ARGV[2]) end
  return {0, left}
end
redis.call('INCR', KEYS[1])
if count == 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {1, redis.call('PTTL', KEYS[1])}
`;

export function createRedisRateLimiter(deps: {
  readonly redis: Redis;
  /** The counter's key of a subject (RedisKeys.dryRuns). */
  readonly key: (subject: string) => string;
  readonly limit: number;
  readonly windowMs: number;
}): RateLimiter {
  const { redis, key, limit, windowMs } = deps;
  return {
    async take(subject) {
      const [allowed, left] = (await redis.eval(TAKE, 1, key(subject), limit, windowMs)) as [number, number];
      return allowed === 1 ? { allowed: true } : { allowed: false, limit, retryAfterMs: Math.max(0, left) };
    },
  };
}
