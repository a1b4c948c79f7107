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
