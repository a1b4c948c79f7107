/**
 * Engine overhead per no-op step on loopback Redis, state saves included: the time between the `run` of
 * one step and the `run` of the next, in runs of ten no-op steps. That interval is everything the engine
 * does per step: finishing the step (save, audit, event), the abort check and fencing check, then
 * starting the next (save, audit, event). Baseline: one raw SET of a run-record-sized JSON on the same
 * server, in the same run, so the ratio reads "how many plain Redis writes a step costs".
 */
import { z } from 'zod';
import { createRedisClient } from '../src/infra/redis-client.js';
import { createRedisKeys } from '../src/infra/redis-keys.js';
import { createSystemClock } from '../src/infra/system-clock.js';
import { createRedisLock } from '../src/locks/redis-lock.js';
import { createApprovalPolicy } from '../src/runbooks/approval-policy.js';
import { createEngine } from '../src/runbooks/engine/engine.js';
import { createRedisRunStore } from '../src/runbooks/engine/redis-run-store.js';
import type { RunbookDefinition, RunbookPorts, RunRecord } from '../src/runbooks/types.js';
import { OPERATOR, testConfig } from '../test/support/bot-fixtures.js';
import { startRedis } from '../test/support/redis-server.js';
import { createSilentLogger } from '../test/support/silent-logger.js';
import { compare, elapsedMs, summarize, type BenchRow } from './harness.js';

const STEPS_PER_RUN = 10;
const RUNS = 400;
const WARMUP_RUNS = 40;

const silent = createSilentLogger();

export async function run(): Promise<BenchRow[]> {
  const server = await startRedis();
  const redis = createRedisClient(
    server.url,
    {},
    { overrides: { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null } },
  );
  try {
    await redis.connect();
    const prefix = 'bench:engine:';
    const keys = createRedisKeys(prefix);
    const clock = createSystemClock();
    const config = testConfig({ prefix });
    const store = createRedisRunStore({ redis, keys });

    let marks: bigint[] = [];
    const runbook: RunbookDefinition<{ node: string }> = {
      id: 'noop',
      version: 1,
      title: 'No-op steps',
      params: z.object({ node: z.string() }),
      lockKey: () => 'failover',
      node: (p) => p.node,
      summary: (p) => `no-op steps on ${p.node}`,
      steps: () =>
        Array.from({ length: STEPS_PER_RUN }, (_, i) => ({
          id: `step-${i}`,
          title: `No-op ${i}`,
          describe: () => `do nothing (step ${i})`,
          destructive: false,
          run: async () => {
            marks.push(process.hrtime.bigint());
          },
        })),
    };

    let finished: ((run: RunRecord) => void) | undefined;
    const engine = createEngine({
      store,
      lock: createRedisLock({ redis, keys, clock }),
      runbooks: [runbook],
      // No-op steps use no port.
      ports: { clock } as unknown as RunbookPorts,
      config,
      policy: createApprovalPolicy({ slack: config.slack, directory: { usergroupMembers: async () => [] } }),
      observer: {
        onRunEvent: async (record, event) => {
          if (event.type === 'run-finished') finished?.(record);
        },
      },
      clock,
      logger: silent,
      ownerId: 'bench',
    });

    const samples: number[] = [];
    const baseline: number[] = [];
    let lastRecord: RunRecord | undefined;
    const setRecord = async (json: string): Promise<number> => {
      const begin = process.hrtime.bigint();
      await redis.set(`${prefix}baseline`, json);
      return elapsedMs(begin);
    };
    try {
      for (let r = 0; r < WARMUP_RUNS + RUNS; r++) {
        marks = [];
        const done = new Promise<RunRecord>((resolve) => (finished = resolve));
        await engine.start({ runbook: 'noop', params: { node: 'cn1' }, requester: OPERATOR });
        lastRecord = await done;
        if (lastRecord.status !== 'succeeded') throw new Error(`bench run ended ${lastRecord.status}`);
        // The baseline is measured right after each run, so that whatever else the machine is doing
        // weighs on both alike.
        const json = JSON.stringify(lastRecord);
        for (let i = 1; i < marks.length; i++) {
          const step = Number((marks[i] ?? 0n) - (marks[i - 1] ?? 0n)) / 1e6;
          const set = await setRecord(json);
          if (r < WARMUP_RUNS) continue;
          samples.push(step);
          baseline.push(set);
        }
      }
    } finally {
      await engine.close();
    }

    const size = JSON.stringify(lastRecord).length;
    const base = summarize(`redis SET of a run record (${size} B)`, baseline, { note: 'baseline' });
    const engineRow = compare(
      summarize('engine overhead per no-op step (saves included)', samples, { note: 'goal: p99 < 5 ms' }),
      base,
    );
    return [engineRow, base];
  } finally {
    redis.disconnect();
    await server.stop();
  }
}
