/**
 * Drops Slack redeliveries. Socket Mode retries an envelope it thinks was not acked, possibly to another
 * replica, so the first delivery of a request is remembered in Redis (SET NX with a TTL) under its trigger
 * id; a later delivery of the same id is recognised and dropped. The check runs after the ack, never
 * before it: a Redis round trip must not delay Slack's 3-second acknowledgement.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../ports/logger.js';
import type { RedisKeys } from '../infra/redis-keys.js';

/** True when this is the first delivery of `id` (or there is no id to tell); false for a redelivery. */
export type FirstDelivery = (id: string | undefined, retryNum: number | undefined) => Promise<boolean>;

export function createRedeliveryFilter(deps: {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly logger: Logger;
  /** How long a delivery is remembered. */
  readonly ttlSeconds: number;
}): FirstDelivery {
  const { redis, keys, logger, ttlSeconds } = deps;
  return async (id, retryNum) => {
    if (!id) return true;
    try {
      const set = await redis.set(keys.dedup(`slack:${id}`), String(retryNum ?? 0), 'EX', ttlSeconds, 'NX');
      if (set === null) logger.info({ delivery: id, retryNum }, 'dropped a redelivered Slack request');
      return set !== null;
    } catch (error) {
      // Better to risk a duplicate (the engine's decisions are atomic anyway) than to drop a command.
      logger.warn({ err: error }, 'could not check a Slack delivery for duplicates');
      return true;
    }
  };
}
