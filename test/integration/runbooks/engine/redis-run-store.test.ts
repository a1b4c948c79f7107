import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll } from 'vitest';
import { createRedisKeys } from '../../../../src/infra/redis-keys.js';
import { createRedisRunStore } from '../../../../src/runbooks/engine/redis-run-store.js';
import { runStoreContract } from '../../../contract/run-store.contract.js';
import { startRedis, type RedisServer } from '../../../support/redis-server.js';
import { closeRedis, testRedis, uniquePrefix } from '../../../support/redis-client.js';

let server: RedisServer;

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server.stop();
});

runStoreContract('redis', async () => {
  const keys = createRedisKeys(uniquePrefix('run-store'));
  const a = testRedis(server.url);
  const b = testRedis(server.url);
  return {
    store: createRedisRunStore({ redis: a, keys }),
    other: createRedisRunStore({ redis: b, keys }),
    wait: (ms) => delay(ms),
    close: async () => {
      await Promise.all([closeRedis(a), closeRedis(b)]);
    },
  };
});
