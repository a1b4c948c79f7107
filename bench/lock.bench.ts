/**
 * Lock acquire+release latency on loopback Redis: cellops' lock against @sesamecare-oss/redlock (one
 * Redis instance), same server, same connection, same run. The two are measured in alternating pairs so that
 * whatever else the machine is doing weighs on both alike.
 */
import { Redlock } from '@sesamecare-oss/redlock';
import { createRedisClient } from '../src/infra/redis-client.js';
import { createRedisKeys } from '../src/infra/redis-keys.js';
import { createSystemClock } from '../src/infra/system-clock.js';
import { createRedisLock } from '../src/locks/redis-lock.js';
import type { LockHolder } from '../src/locks/types.js';
import { startRedis } from '../test/support/redis-server.js';
import { compare, elapsedMs, summarize, type BenchRow } from './harness.js';

const ITERATIONS = 10_000;
const WARMUP = 500;
const TTL_MS = 10_000;

export async function run(): Promise<BenchRow[]> {
  const server = await startRedis();
  const redis = createRedisClient(
    server.url,
    {},
    { overrides: { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null } },
  );
  try {
    await redis.connect();
    const lock = createRedisLock({
      redis,
      keys: createRedisKeys('bench:cellops:'),
      clock: createSystemClock(),
    });
    // retryCount 0: one attempt, as cellops does; a refusal would be a bug in the bench, not a wait.
    const redlock = new Redlock([redis], { retryCount: 0 });
    const holder: LockHolder = {
      requester: 'U_BENCH',
      runbook: 'failover',
      node: 'cn1',
      runId: 'bench',
      since: 0,
    };

    const cellops = async (): Promise<number> => {
      const start = process.hrtime.bigint();
      const lease = await lock.acquire('cell', TTL_MS, holder);
      if (!(await lock.release(lease))) throw new Error('cellops lock: release found another owner');
      return elapsedMs(start);
    };
    const baseline = async (): Promise<number> => {
      const start = process.hrtime.bigint();
      const held = await redlock.acquire(['bench:redlock:lock:cell'], TTL_MS);
      await held.release();
      return elapsedMs(start);
    };

    for (let i = 0; i < WARMUP; i++) {
      await cellops();
      await baseline();
    }
    const ours: number[] = [];
    const theirs: number[] = [];
    // Alternating pairs, the order swapped every time (ABBA), so neither side always runs first.
    for (let i = 0; i < ITERATIONS; i++) {
      if (i % 2 === 0) {
        ours.push(await cellops());
        theirs.push(await baseline());
      } else {
        theirs.push(await baseline());
        ours.push(await cellops());
      }
    }

    const redlockRow = summarize('lock acquire+release (@sesamecare-oss/redlock)', theirs, {
      note: 'baseline: single Redis, retryCount 0',
    });
    const cellopsRow = compare(
      summarize('lock acquire+release (cellops)', ours, {
        note: 'fencing token + holder record in the same script; goal p99 < 2 ms, ratio ≤ 1.0',
      }),
      redlockRow,
    );
    return [cellopsRow, redlockRow];
  } finally {
    redis.disconnect();
    await server.stop();
  }
}
