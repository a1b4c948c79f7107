/**
 * ioredis clients for tests: they fail fast (no endless reconnects or queued commands when the server
 * is gone), so a broken test fails instead of hanging.
 */
import { Redis } from 'ioredis';

export function testRedis(url: string): Redis {
  const client = new Redis(url, {
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: (times) => (times > 3 ? null : 50),
    lazyConnect: false,
  });
  client.on('error', () => undefined);
  return client;
}

/**
 * A client for the tests that kill or restart Redis on purpose: a command fails at once while the server
 * is down (no offline queue), so a killed server shows up as errors within a second and no test hangs,
 * and it keeps reconnecting quickly, so a restarted server is found again within 200 ms.
 */
export async function connectTestRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 1_000,
    commandTimeout: 1_000,
    retryStrategy: (times: number) => Math.min(20 * times, 200),
  });
  // Connection errors surface on the commands; the event would otherwise crash the process.
  redis.on('error', () => undefined);
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
