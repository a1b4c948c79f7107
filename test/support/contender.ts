/**
 * One contender of the mutual-exclusion test, run as its own OS process:
 *   node --import tsx contender.ts <redisUrl> <prefix> <lockName> <iterations> <id>
 * Waits for the go signal, then takes the lock `iterations` times through withLock. Inside, it counts
 * holders in Redis and records any moment with more than one, and any fencing token not larger than the
 * previous holder's. Prints one JSON line with its tallies.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { createRedisKeys } from '../../src/infra/redis-keys.js';
import { createSystemClock } from '../../src/infra/system-clock.js';
import { createRedisLock } from '../../src/locks/redis-lock.js';
import { LockBusyError } from '../../src/locks/types.js';
import { contentionKeys } from './contention-keys.js';
import { connectTestRedis } from './redis-client.js';

async function main(): Promise<void> {
  const [url, prefix, lockName, iterationsArg, id] = process.argv.slice(2);
  if (!url || !prefix || !lockName || !iterationsArg || !id) {
    throw new Error('usage: contender.ts <redisUrl> <prefix> <lockName> <iterations> <id>');
  }
  const iterations = Number(iterationsArg);
  const k = contentionKeys(prefix);
  const redis = await connectTestRedis(url);
  const clock = createSystemClock();
  const lock = createRedisLock({ redis, keys: createRedisKeys(prefix), clock });
  try {
    await redis.incr(k.ready);
    while ((await redis.exists(k.go)) === 0) await delay(20);

    let acquired = 0;
    let refused = 0;
    while (acquired < iterations) {
      const holder = {
        requester: `U_${id}`,
        runbook: 'contention',
        node: 'cn1',
        runId: `${id}-${acquired}`,
        since: clock.now(),
      };
      try {
        await lock.withLock(lockName, 5_000, holder, async (signal, lease) => {
          if ((await redis.incr(k.inside)) > 1) await redis.incr(k.violations);
          const last = Number((await redis.get(k.lastFence)) ?? '0');
          if (lease.fencingToken <= last) await redis.incr(k.fenceViolations);
          await redis.set(k.lastFence, lease.fencingToken);
          await redis.rpush(k.fences, lease.fencingToken);
          await delay(Math.floor(Math.random() * 3));
          if (signal.aborted) await redis.incr(k.aborted);
          await redis.decr(k.inside);
        });
        acquired += 1;
      } catch (error) {
        if (!(error instanceof LockBusyError)) throw error;
        refused += 1;
        await delay(1 + Math.floor(Math.random() * 3));
      }
    }
    process.stdout.write(`${JSON.stringify({ id, acquired, refused })}\n`);
  } finally {
    redis.disconnect();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `contender failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
