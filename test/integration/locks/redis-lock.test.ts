import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedisKeys } from '../../../src/infra/redis-keys.js';
import { createSystemClock } from '../../../src/infra/system-clock.js';
import { createRedisLock } from '../../../src/locks/redis-lock.js';
import { LockLostError, LockStoreError, type LockHolder, type RunLock } from '../../../src/locks/types.js';
import { runLockContract } from '../../contract/run-lock.contract.js';
import { startRedis, type RedisServer } from '../../support/redis-server.js';
import { contentionKeys } from '../../support/contention-keys.js';
import { connectTestRedis } from '../../support/redis-client.js';

const clock = createSystemClock();
const holder: LockHolder = { requester: 'U_ALICE', runbook: 'failover', node: 'cn1', runId: 'r1', since: 0 };
let server: RedisServer;
const clients: Redis[] = [];

async function client(url = server.url): Promise<Redis> {
  const redis = await connectTestRedis(url);
  clients.push(redis);
  return redis;
}

function uniquePrefix(): string {
  return `test:${randomUUID()}:`;
}

beforeAll(async () => {
  server = await startRedis();
});

afterEach(() => {
  for (const redis of clients.splice(0)) redis.disconnect();
});

afterAll(async () => {
  await server.stop();
});

runLockContract('Redis lock, real redis-server', async () => {
  const keys = createRedisKeys(uniquePrefix());
  return {
    lock: createRedisLock({ redis: await client(), keys, clock }),
    other: createRedisLock({ redis: await client(), keys, clock }),
    ttlMs: 3_000,
    wait: (ms) => delay(ms),
    close: async () => undefined,
  };
});

describe('Redis lock', () => {
  it('stores the holder with the same lease as the lock, and a fencing counter that never lapses', async () => {
    const redis = await client();
    const keys = createRedisKeys(uniquePrefix());
    const lock = createRedisLock({ redis, keys, clock });

    const lease = await lock.acquire('cell', 10_000, holder);

    expect(await redis.get(keys.lock('cell'))).toBe(lease.token);
    expect(await redis.pttl(keys.lockHolder('cell'))).toBeGreaterThan(0);
    expect(await redis.pttl(keys.lockFence('cell'))).toBe(-1);
    expect(await redis.get(keys.lockFence('cell'))).toBe(String(lease.fencingToken));
    expect(JSON.parse((await redis.get(keys.lockHolder('cell'))) ?? '{}')).toEqual({
      ...holder,
      fencingToken: lease.fencingToken,
    });
    await lock.release(lease);
    expect(await redis.exists(keys.lock('cell'), keys.lockHolder('cell'))).toBe(0);
    expect(await redis.get(keys.lockFence('cell'))).toBe(String(lease.fencingToken));
  });

  it('works again after Redis forgot its scripts', async () => {
    const redis = await client();
    const lock = createRedisLock({ redis, keys: createRedisKeys(uniquePrefix()), clock });
    await redis.script('FLUSH');

    const lease = await lock.acquire('cell', 10_000, holder);

    expect(await lock.release(lease)).toBe(true);
  });

  it('20 contenders in separate processes are never inside the lock together, and each holder gets a larger fencing token', async () => {
    const contenders = 20;
    const iterations = 10;
    const prefix = uniquePrefix();
    const k = contentionKeys(prefix);
    const redis = await client();
    const script = fileURLToPath(new URL('../../support/contender.ts', import.meta.url));
    const root = fileURLToPath(new URL('../../../', import.meta.url));

    const exits = Array.from({ length: contenders }, (_, id) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', script, server.url, prefix, 'cell', String(iterations), String(id)],
        { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      // Never outlive the test, whatever happens to it.
      const guard = setTimeout(() => child.kill('SIGKILL'), 110_000);
      return new Promise<{ code: number | null; output: string }>((resolve) => {
        child.on('exit', (code) => {
          clearTimeout(guard);
          resolve({ code, output });
        });
      });
    });
    let exited = 0;
    for (const exit of exits) void exit.then(() => (exited += 1));

    // Start them together, so that they really contend.
    while (Number((await redis.get(k.ready)) ?? '0') < contenders && exited === 0) await delay(50);
    await redis.set(k.go, '1');
    const results = await Promise.all(exits);

    for (const result of results) expect(result, result.output).toMatchObject({ code: 0 });
    const tallies = results.map((r) => JSON.parse(r.output.trim()) as { acquired: number; refused: number });
    expect(tallies.reduce((sum, t) => sum + t.acquired, 0)).toBe(contenders * iterations);
    // The lock was really contended: some requests were refused because someone else held it.
    expect(tallies.reduce((sum, t) => sum + t.refused, 0)).toBeGreaterThan(0);
    expect(await redis.get(k.violations)).toBeNull();
    expect(await redis.get(k.fenceViolations)).toBeNull();
    expect(await redis.get(k.aborted)).toBeNull();
    expect(await redis.get(k.inside)).toBe('0');
    const fences = (await redis.lrange(k.fences, 0, -1)).map(Number);
    expect(fences).toHaveLength(contenders * iterations);
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1] ?? Infinity);
  }, 120_000);
});

describe('Redis lock when Redis fails', () => {
  let own: RedisServer | undefined;

  afterEach(async () => {
    for (const redis of clients.splice(0)) redis.disconnect();
    await own?.stop();
    own = undefined;
  });

  async function waitForAbort(signal: AbortSignal, ttlMs: number): Promise<void> {
    for (let waited = 0; !signal.aborted && waited < 10 * ttlMs; waited += 50) await delay(50);
  }

  it('Redis killed while the lock is held aborts the work with LockLostError caused by the store failure', async () => {
    own = await startRedis();
    const lock: RunLock = createRedisLock({
      redis: await client(own.url),
      keys: createRedisKeys(uniquePrefix()),
      clock,
    });
    const ttlMs = 900;

    const outcome = await lock.withLock('cell', ttlMs, holder, async (signal) => {
      await own?.kill();
      await waitForAbort(signal, ttlMs);
      const refusal = await lock.acquire('other', ttlMs, holder).then(
        () => undefined,
        (error: unknown) => error,
      );
      return { reason: signal.reason as unknown, refusal };
    });

    expect(outcome.reason).toBeInstanceOf(LockLostError);
    expect((outcome.reason as LockLostError).cause).toBeInstanceOf(LockStoreError);
    // A dead Redis is a store failure, never "someone else holds it".
    expect(outcome.refusal).toBeInstanceOf(LockStoreError);
  });

  it('Redis restarted while the lock is held aborts the work with LockLostError', async () => {
    own = await startRedis();
    const lock = createRedisLock({
      redis: await client(own.url),
      keys: createRedisKeys(uniquePrefix()),
      clock,
    });
    const ttlMs = 900;

    const reason = await lock.withLock('cell', ttlMs, holder, async (signal) => {
      await own?.restart();
      await waitForAbort(signal, ttlMs);
      return signal.reason as unknown;
    });

    expect(reason).toBeInstanceOf(LockLostError);
  });
});
