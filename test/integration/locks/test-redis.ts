/**
 * ioredis clients for the lock tests: they fail fast instead of queueing commands while Redis is down,
 * so that a killed server shows up as errors within a second and no test hangs.
 */
import type { Redis } from 'ioredis';
import { createRedisClient } from '../../../src/infra/redis-client.js';

export async function connectTestRedis(url: string): Promise<Redis> {
  // Connection errors surface on the commands (createRedisClient listens for them, so none crashes).
  const redis = createRedisClient(
    url,
    {},
    {
      overrides: {
        lazyConnect: true,
        // A command fails at once while disconnected instead of waiting for a reconnection.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        connectTimeout: 1_000,
        commandTimeout: 1_000,
        // Keep reconnecting quickly, so a restarted server is found again within 200 ms.
        retryStrategy: (times: number) => Math.min(20 * times, 200),
      },
    },
  );
  await redis.connect();
  return redis;
}
