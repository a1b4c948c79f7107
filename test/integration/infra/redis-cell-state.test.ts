import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisKeys } from '../../../src/infra/redis-keys.js';
import { createRedisCellState } from '../../../src/infra/redis-cell-state.js';
import { cellStateContract } from '../../contract/cell-state.contract.js';
import { startRedis, type RedisServer } from '../../support/redis-server.js';
import { closeRedis, testRedis, uniquePrefix } from '../../support/redis-client.js';

let server: RedisServer;

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server.stop();
});

cellStateContract('redis', async () => {
  const keys = createRedisKeys(uniquePrefix('cell-state'));
  const a = testRedis(server.url);
  const b = testRedis(server.url);
  return {
    state: createRedisCellState({ redis: a, keys }),
    other: createRedisCellState({ redis: b, keys }),
    close: async () => {
      await Promise.all([closeRedis(a), closeRedis(b)]);
    },
  };
});

describe('redis cell state layout', () => {
  it('keeps the roles in the cell hash and the history in a capped list beside it', async () => {
    const keys = createRedisKeys(uniquePrefix('cell-layout'));
    const redis = testRedis(server.url);
    try {
      const state = createRedisCellState({ redis, keys });
      for (let i = 0; i < 205; i++) {
        await state.recordRoles({
          cn: 'cn1',
          servedBy: i % 2 ? 'cn1' : 'cn1s',
          at: i,
          runId: `r${i}`,
          by: 'cellops',
          reason: 'test',
        });
      }
      const hash = await redis.hgetall(keys.cellState());
      expect(hash['roles-version']).toBe('205');
      expect(JSON.parse(hash['role:cn1'] ?? '{}')).toMatchObject({ runId: 'r204', version: 205 });
      expect(await redis.llen(keys.cellRoleHistory('cn1'))).toBe(200);
    } finally {
      await closeRedis(redis);
    }
  });

  it('reads a role recorded before roles had a history, and records the next change on top of it', async () => {
    const keys = createRedisKeys(uniquePrefix('cell-old'));
    const redis = testRedis(server.url);
    try {
      const old = { role: 'cn1', servedBy: 'cn1s', since: 5, runId: 'r-old' };
      await redis.hset(keys.cellState(), 'role:cn1', JSON.stringify(old));
      const state = createRedisCellState({ redis, keys });
      expect(await state.roles('cn1')).toMatchObject({
        cn: 'cn1',
        servedBy: 'cn1s',
        formerServers: [],
        runId: 'r-old',
        version: 0,
      });
      expect(await state.role('cn1')).toEqual({ role: 'cn1', servedBy: 'cn1s', since: 5, runId: 'r-old' });
      await state.recordRoles({
        cn: 'cn1',
        servedBy: 'cn1',
        at: 9,
        runId: 'r-back',
        by: 'U0AAA',
        reason: 'set by hand',
      });
      expect(await state.roles('cn1')).toMatchObject({
        servedBy: 'cn1',
        formerServers: ['cn1s'],
        version: 1,
      });
    } finally {
      await closeRedis(redis);
    }
  });
});
