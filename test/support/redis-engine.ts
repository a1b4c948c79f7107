/**
 * An engine on a real Redis (store, lock, notifications) running a runbook of counting steps whose
 * counters are Redis keys, so that several processes share them. Used by the engine's integration tests,
 * the crash child process and the engine benchmark.
 */
import type { Redis } from 'ioredis';
import { createRedisKeys } from '../../src/infra/redis-keys.js';
import { createSystemClock } from '../../src/infra/system-clock.js';
import { createRedisLock } from '../../src/locks/redis-lock.js';
import type { Clock } from '../../src/ports/clock.js';
import type { Logger } from '../../src/ports/logger.js';
import { createApprovalPolicy } from '../../src/runbooks/approval-policy.js';
import { createEngine, type EngineOptions } from '../../src/runbooks/engine/engine.js';
import { createRedisRunStore } from '../../src/runbooks/engine/redis-run-store.js';
import type { RunStore } from '../../src/runbooks/engine/run-store.js';
import type { Engine, RunbookPorts, RunObserver } from '../../src/runbooks/types.js';
import { testConfig } from './bot-fixtures.js';
import { countingRunbook, waitForAbort, type Counter, type CountingStep } from './counting-runbook.js';
import { closeRedis, testRedis } from './redis-client.js';

/** Members of user group S0ONCALL, which testConfig() lists as approvers. */
export const ONCALL = Array.from({ length: 50 }, (_, i) => `U0ONCALL${i}`);

export function redisCounter(redis: Redis, prefix: string): Counter {
  return {
    incr: (key) => redis.incr(`${prefix}count:${key}`),
    get: async (key) => Number((await redis.get(`${prefix}count:${key}`)) ?? 0),
  };
}

/** True the first time it is called for `key` in any process (SET NX): "hold this step once". */
export async function firstTime(redis: Redis, prefix: string, key: string): Promise<boolean> {
  return (await redis.set(`${prefix}armed:${key}`, '1', 'NX')) === 'OK';
}

/**
 * The crash test's runbook. Each step is held once, the first time it runs, so that the test can kill the
 * process there: `fence` (destructive) before its side effect, `slow` after it, `late` before it.
 */
export function crashSteps(redis: Redis, prefix: string): CountingStep[] {
  const holdOnce = (key: string) => async (ctx: { signal: AbortSignal }) => {
    if (await firstTime(redis, prefix, key)) await waitForAbort(ctx.signal);
  };
  return [
    { id: 'prepare' },
    { id: 'fence', destructive: true, timeoutMs: 120_000, before: holdOnce('fence') },
    { id: 'slow', timeoutMs: 120_000, after: holdOnce('slow') },
    { id: 'late', timeoutMs: 120_000, before: holdOnce('late') },
    { id: 'finish' },
  ];
}

export interface RedisEngineSetup {
  readonly engine: Engine;
  readonly store: RunStore;
  readonly redis: Redis;
  readonly counter: Counter;
  close(): Promise<void>;
}

export function createRedisEngine(options: {
  readonly url: string;
  /** The connection to use instead of a fail-fast test client for `url` (closed with the engine). */
  readonly redis?: Redis;
  readonly prefix: string;
  readonly ownerId: string;
  readonly steps: (redis: Redis) => readonly CountingStep[];
  readonly logger: Logger;
  readonly engineOptions?: EngineOptions;
  readonly observer?: RunObserver;
  readonly clock?: Clock;
  /** Distinct approvals a destructive step needs (slack.approvals). Default 1. */
  readonly approvals?: number;
}): RedisEngineSetup {
  const redis = options.redis ?? testRedis(options.url);
  const keys = createRedisKeys(options.prefix);
  const clock = options.clock ?? createSystemClock();
  const config = testConfig({
    prefix: options.prefix,
    ...(options.approvals === undefined ? {} : { approvals: options.approvals }),
  });
  const store = createRedisRunStore({ redis, keys, logger: options.logger });
  const counter = redisCounter(redis, options.prefix);
  const engine = createEngine({
    store,
    lock: createRedisLock({ redis, keys, clock, logger: options.logger }),
    runbooks: [countingRunbook({ steps: options.steps(redis), counter })],
    // Counting steps use no port but the clock.
    ports: { clock } as unknown as RunbookPorts,
    config,
    policy: createApprovalPolicy({
      slack: config.slack,
      directory: { usergroupMembers: async (id) => (id === 'S0ONCALL' ? ONCALL : []) },
    }),
    observer: options.observer ?? { onRunEvent: async () => undefined },
    clock,
    logger: options.logger,
    ownerId: options.ownerId,
    ...(options.engineOptions ? { options: options.engineOptions } : {}),
  });
  return {
    engine,
    store,
    redis,
    counter,
    close: async () => {
      await engine.close();
      await closeRedis(redis);
    },
  };
}
