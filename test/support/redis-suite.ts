/**
 * One throwaway redis-server for a test file: started before its tests, stopped after them (after hooks
 * run in reverse, so clients a later `beforeAll` opens are closed before the server stops). Clients made
 * with `client()` are closed before the server stops too.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { closeRedis, testRedis } from './redis-client.js';
import { startRedis, type RedisServer, type RedisServerOptions } from './redis-server.js';

export interface SuiteRedis {
  readonly server: RedisServer;
  /** A client of the suite's server, closed when the suite ends. */
  client(): Redis;
}

export function redisForSuite(options: RedisServerOptions = {}): SuiteRedis {
  const box: { server?: RedisServer } = {};
  const clients: Redis[] = [];
  beforeAll(async () => {
    box.server = await startRedis(options);
  });
  afterAll(async () => {
    for (const c of clients) await closeRedis(c);
    await box.server?.stop();
  });
  const suite: SuiteRedis = {
    get server(): RedisServer {
      if (!box.server) throw new Error('the suite redis-server is not started yet (use it inside a test)');
      return box.server;
    },
    client() {
      const c = testRedis(suite.server.url);
      clients.push(c);
      return c;
    },
  };
  return suite;
}
