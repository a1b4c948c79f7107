/**
 * The one place that creates ioredis clients, from REDIS_URL (parsed by redis-url.ts, Sentinel included)
 * with reconnection settings for a bot that must not lose its state:
 *
 * - It never gives up reconnecting (bounded exponential backoff, for the server and for the sentinels): a
 *   client that ends rejects every later command, and the bot would be up but unable to reach its runs.
 * - A command waits through a few reconnection attempts (`maxRetriesPerRequest`) and at most
 *   `commandTimeout`, then fails. The lock and the engine treat a failure as "unknown" and retry or pause;
 *   a command that waited for minutes would outlive the lock's lease. So a failover neither hangs
 *   commands nor makes them fail for longer than it lasts.
 * - After a Sentinel failover the old primary comes back as a replica and answers writes with READONLY
 *   until the client notices: it then reconnects (asking Sentinel for the new primary) and sends the
 *   command again. A replica performs no write, so sending it again cannot apply it twice.
 * - Sentinel's +switch-master notifications are followed (`failoverDetector`), so that a failover is
 *   noticed when it happens rather than at the next failed command.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../ports/logger.js';
import { redactSecrets } from './redact.js';
import { parseRedisUrl, type RedisUrlEnv } from './redis-url.js';

/** Delay before reconnection attempt `attempt` (1, 2, …): 100 ms doubling up to 2 s, never giving up. */
export function redisRetryDelay(attempt: number): number {
  return Math.min(100 * 2 ** Math.min(Math.max(attempt - 1, 0), 5), 2_000);
}

/** `2`: reconnect and send the command again; `false`: let the error through. */
export function reconnectOnReadonly(error: Error): 2 | false {
  // Redis 7 wraps a write refused inside a script as "... -READONLY ...", hence not only the prefix.
  return /\bREADONLY\b/.test(error.message) ? 2 : false;
}

export const REDIS_CLIENT_DEFAULTS = {
  maxRetriesPerRequest: 4,
  commandTimeout: 5_000,
  connectTimeout: 5_000,
  retryStrategy: redisRetryDelay,
  sentinelRetryStrategy: redisRetryDelay,
  reconnectOnError: reconnectOnReadonly,
  failoverDetector: true,
} as const satisfies RedisOptions;

export interface RedisClientOptions {
  /** Connection problems are logged here once per distinct error, and the recovery once. */
  readonly logger?: Logger;
  /** Replaces the defaults above (probes that must fail fast, tests, `lazyConnect`). */
  readonly overrides?: RedisOptions;
}

/**
 * A client for REDIS_URL. Throws ConfigError for a malformed URL (nothing is connected then); connection
 * errors afterwards are logged, not thrown.
 */
export function createRedisClient(url: string, env: RedisUrlEnv, options: RedisClientOptions = {}): Redis {
  const { options: target, description } = parseRedisUrl(url, env);
  const redis = new Redis({ ...REDIS_CLIENT_DEFAULTS, ...options.overrides, ...target });
  const { logger } = options;
  let lastError = '';
  // Without a listener ioredis prints every error to the console; with one, repeats are quiet.
  redis.on('error', (error: Error) => {
    const message = redactSecrets(error.message);
    if (message !== lastError)
      logger?.warn({ error: message, redis: description }, 'Redis connection problem');
    lastError = message;
  });
  redis.on('ready', () => {
    if (lastError) logger?.info({ redis: description }, 'Redis connection restored');
    lastError = '';
  });
  return redis;
}
