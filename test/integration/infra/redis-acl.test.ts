/**
 * The Redis ACL the README recommends is enough for everything the bot does (runs, approvals, the lock,
 * incidents, the quarantine, the dry-run counter, notifications), and keeps the bot out of other keys.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisKeys } from '../../../src/infra/redis-keys.js';
import { createRedisRateLimiter } from '../../../src/infra/redis-rate-limiter.js';
import { createSystemClock } from '../../../src/infra/system-clock.js';
import { createRedisLock } from '../../../src/locks/redis-lock.js';
import { createRedisIncidentStore } from '../../../src/monitor/incidents.js';
import { createRedisRunStore } from '../../../src/runbooks/engine/redis-run-store.js';
import type { RunRecord } from '../../../src/runbooks/types.js';
import { closeRedis, testRedis } from '../../support/redis-client.js';
import { startRedis, type RedisServer } from '../../support/redis-server.js';

const PREFIX = 'cellops:acl-cell:';

/** The README's `ACL SETUSER` line, word for word. */
const README_ACL = [
  'cellops',
  'on',
  '>acl-test-password',
  'resetkeys',
  `~${PREFIX}*`,
  'resetchannels',
  `&${PREFIX}*`,
  '-@all',
  '+@read',
  '+@write',
  '+@keyspace',
  '+@scripting',
  '+@pubsub',
  '+@transaction',
  '+@connection',
  '-@dangerous',
  '+info',
];

let server: RedisServer;

beforeAll(async () => {
  server = await startRedis();
  const admin = testRedis(server.url);
  await admin.call('ACL', 'SETUSER', ...README_ACL);
  await closeRedis(admin);
});
afterAll(async () => {
  await server.stop();
});

describe('the README ACL', () => {
  it('lets the bot do its work under its prefix and nothing outside it', async () => {
    const redis = testRedis(server.url.replace('redis://', 'redis://cellops:acl-test-password@'));
    try {
      const keys = createRedisKeys(PREFIX);
      const clock = createSystemClock();
      const store = createRedisRunStore({ redis, keys });
      const run: RunRecord = {
        id: 'r1',
        runbook: 'failover',
        runbookVersion: 1,
        params: {},
        node: 'cn1',
        summary: 'failover cn1',
        requester: 'U0AAA',
        dryRun: false,
        createdAt: 1,
        status: 'running',
        steps: [],
        facts: {},
        lockKey: 'failover',
      };
      await store.saveRun(run);
      await store.recordDecision('r1', 'fence', 1, { user: 'U0BBB', decision: 'approve', at: 2 }, 1);
      expect((await store.readRound('r1', 'fence', 1)).final?.user).toBe('U0BBB');
      await store.appendAudit('r1', { at: 3, who: 'U0AAA', what: 'run-started' });
      expect(await store.readAudit('r1')).toHaveLength(1);
      const unsubscribe = await store.subscribe(() => undefined);
      await store.publish('r1');
      await unsubscribe();
      await store.saveRun({ ...run, status: 'succeeded', endedAt: 4 });
      // A malformed record is moved aside (RENAME within the prefix).
      await redis.set(keys.run('r2'), 'garbage');
      await redis.zadd(keys.runIndex(), 2, 'r2');
      expect((await store.listRecent(5)).map((r) => r.id)).toEqual(['r1']);
      expect(await redis.exists(keys.quarantine(keys.run('r2')))).toBe(1);

      const lock = createRedisLock({ redis, keys, clock });
      const lease = await lock.acquire('failover', 30_000, {
        requester: 'U0AAA',
        runbook: 'failover',
        node: 'cn1',
        runId: 'r1',
        since: 1,
      });
      expect(await lock.release(lease)).toBe(true);
      const incidents = createRedisIncidentStore({ redis, keys, clock });
      expect(await incidents.acquireLease('replica-1', 10_000)).toBe(true);
      expect(await incidents.list()).toEqual([]);
      const limiter = createRedisRateLimiter({
        redis,
        key: (u) => keys.dryRuns(u),
        limit: 5,
        windowMs: 60_000,
      });
      expect((await limiter.take('U0AAA')).allowed).toBe(true);

      await expect(redis.get('cellops:another-cell:run:r1')).rejects.toThrow(/NOPERM/);
      await expect(redis.call('FLUSHALL')).rejects.toThrow(/NOPERM/);
    } finally {
      await closeRedis(redis);
    }
  });
});
