/**
 * ioredis clients for tests: they fail fast (no endless reconnects or queued commands when the server
 * is gone), so a broken test fails instead of hanging.
 */
import type { Redis } from 'ioredis';
import { createRedisClient } from '../../src/infra/redis-client.js';

export function testRedis(url: string): Redis {
  return createRedisClient(
    url,
    {},
    {
      overrides: {
        maxRetriesPerRequest: 1,
        connectTimeout: 2_000,
        retryStrategy: (times) => (times > 3 ? null : 50),
        lazyConnect: false,
      },
    },
  );
}

/**
 * A client for the tests that kill or restart Redis on purpose: a command fails at once while the server
 * is down (no offline queue), so a killed server shows up as errors within a second and no test hangs,
 * and it keeps reconnecting quickly, so a restarted server is found again within 200 ms.
 */
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

export async function closeRedis(client: Redis): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

let prefixCounter = 0;

/** A key prefix no other test uses. */
export function uniquePrefix(name: string): string {
  prefixCounter += 1;
  return `test:${name}:${process.pid}:${prefixCounter}:`;
}
