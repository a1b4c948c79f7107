/**
 * Where the sandbox keeps its state: the Redis at REDIS_URL when one answers; otherwise a redis-server
 * from PATH started on a free loopback port for the life of the process; otherwise in memory (the
 * in-memory stores pass the same contract suites as the Redis ones). The choice is logged at start-up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { createRedisClient, REDIS_CLIENT_DEFAULTS } from '../infra/redis-client.js';
import { redactRedisUrl, type RedisUrlEnv } from '../infra/redis-url.js';
import type { Clock } from '../ports/clock.js';

export type SandboxStore =
  | { readonly kind: 'redis'; readonly redis: Redis; readonly description: string; stop(): Promise<void> }
  | { readonly kind: 'memory'; readonly description: string; stop(): Promise<void> };

async function connect(url: string, env: RedisUrlEnv, clock: Clock): Promise<Redis | undefined> {
  // Probed once with no retries (nothing answering means: use another store); once it answers, it
  // reconnects as a production client does.
  const redis = createRedisClient(url, env, {
    overrides: {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      connectTimeout: 1_000,
      retryStrategy: () => null,
      sentinelRetryStrategy: () => null,
    },
  });
  try {
    await redis.connect();
    await redis.ping();
    redis.options.retryStrategy = REDIS_CLIENT_DEFAULTS.retryStrategy;
    redis.options.sentinelRetryStrategy = REDIS_CLIENT_DEFAULTS.sentinelRetryStrategy;
    redis.options.maxRetriesPerRequest = REDIS_CLIENT_DEFAULTS.maxRetriesPerRequest;
    return redis;
  } catch {
    redis.disconnect();
    await clock.sleep(0);
    return undefined;
  }
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function startOwnRedis(
  clock: Clock,
): Promise<{ redis: Redis; url: string; child: ChildProcess; dir: string } | undefined> {
  const port = await freeLoopbackPort();
  const dir = mkdtempSync(join(tmpdir(), 'cellops-sandbox-redis-'));
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    {
      stdio: 'ignore',
    },
  );
  const failed = await new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(true));
    child.once('spawn', () => resolve(false));
  });
  if (failed) {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  const url = `redis://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 50; attempt++) {
    const redis = await connect(url, {}, clock);
    if (redis) return { redis, url, child, dir };
    await clock.sleep(100);
  }
  child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  return undefined;
}

export async function openSandboxStore(deps: {
  redisUrl: string;
  redisUrlSet: boolean;
  clock: Clock;
  /** REDIS_SENTINEL_PASSWORD; read from the process environment when not given. */
  env?: RedisUrlEnv;
}): Promise<SandboxStore> {
  const existing = await connect(deps.redisUrl, deps.env ?? process.env, deps.clock);
  if (existing) {
    return {
      kind: 'redis',
      redis: existing,
      description: `Redis at ${redactRedisUrl(deps.redisUrl)}`,
      stop: async () => {
        existing.disconnect();
      },
    };
  }
  const own = await startOwnRedis(deps.clock);
  if (own) {
    return {
      kind: 'redis',
      redis: own.redis,
      description: `its own redis-server at ${own.url} (nothing answered at ${deps.redisUrl})`,
      stop: async () => {
        own.redis.disconnect();
        own.child.kill('SIGTERM');
        rmSync(own.dir, { recursive: true, force: true });
      },
    };
  }
  return {
    kind: 'memory',
    description: `in-memory stores (no Redis at ${deps.redisUrl} and no redis-server on PATH): state is lost when the process stops`,
    stop: async () => undefined,
  };
}
