/**
 * One throwaway redis-server for a test file: started before its tests, stopped after them (after hooks
 * run in reverse, so clients a later `beforeAll` opens are closed before the server stops).
 */
import { afterAll, beforeAll } from 'vitest';
import { startRedis, type RedisServer, type RedisServerOptions } from './redis-server.js';

export function redisForSuite(options: RedisServerOptions = {}): { readonly server: RedisServer } {
  const box: { server?: RedisServer } = {};
  beforeAll(async () => {
    box.server = await startRedis(options);
  });
  afterAll(async () => {
    await box.server?.stop();
  });
  return {
    get server(): RedisServer {
      if (!box.server) throw new Error('the suite redis-server is not started yet (use it inside a test)');
      return box.server;
    },
  };
}
