/**
 * The engine while its Redis restarts, with and without persistence. Clients reconnect quickly and fail
 * commands at once while Redis is down (no offline queue), as a production client does after its retries.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedisKeys } from '../../../../src/infra/redis-keys.js';
import { createSystemClock } from '../../../../src/infra/system-clock.js';
import { createRedisLock } from '../../../../src/locks/redis-lock.js';
import { createApprovalPolicy } from '../../../../src/runbooks/approval-policy.js';
import { createEngine } from '../../../../src/runbooks/engine/engine.js';
import { createRedisRunStore } from '../../../../src/runbooks/engine/redis-run-store.js';
import type { RunStore } from '../../../../src/runbooks/engine/run-store.js';
import type { Engine, RunbookPorts, RunEvent, RunRecord } from '../../../../src/runbooks/types.js';
import { RecordingLogger } from '../../../fakes/recording-logger.js';
import { APPROVER_A, OPERATOR, testConfig } from '../../../support/bot-fixtures.js';
import { countingRunbook, memoryCounter } from '../../../support/counting-runbook.js';
import { connectTestRedis, uniquePrefix } from '../../../support/redis-client.js';
import { startRedis, type RedisServer } from '../../../support/redis-server.js';
import { until as pollUntil } from '../../../support/until.js';

const until = <T>(what: string, check: () => Promise<T | undefined>): Promise<T> =>
  pollUntil(what, check, { timeoutMs: 30_000, ignoreErrors: true });

/**
 * The lock's TTL and the owner lease, renewed every third of it. An outage lasts until one renewal has
 * failed (at most a third, plus a second), so more than half is left for the restart and the next
 * renewal: seconds, on a loaded machine. Nothing lapses while Redis is down with appendonly; what the
 * tests see comes from the restart (the data kept or lost), never from a lease that ran out because the
 * machine was slow.
 */
const LEASE_MS = 15_000;

/**
 * Redis down until the driver's heartbeat has tried to renew its leases (its polls fail meanwhile too),
 * then up again. The owner lease is renewed first, and its failure is logged whatever the driver then
 * makes of the lock's; the lock's renewal follows in the same beat, within the extra second. Waiting longer
 * is harmless: more than half of LEASE_MS is left.
 */
async function outage(redis: RedisServer, s: Setup): Promise<void> {
  const failedBefore = ownerRenewalFailures(s);
  await redis.kill();
  await until(
    'a failed renewal of the owner lease',
    async () => ownerRenewalFailures(s) > failedBefore || undefined,
  );
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  await redis.start();
}

const ownerRenewalFailures = (s: Setup): number =>
  s.logger.lines.filter((l) => l.msg === 'renewing the owner lease failed; trying again').length;

let server: RedisServer | undefined;
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await server?.stop();
  server = undefined;
});

async function client(url: string): Promise<Redis> {
  const redis = await connectTestRedis(url);
  closers.push(async () => {
    redis.disconnect();
  });
  return redis;
}

interface Setup {
  readonly engine: Engine;
  readonly store: RunStore;
  readonly counts: Map<string, number>;
  readonly events: RunEvent[];
  readonly logger: RecordingLogger;
}

async function setup(url: string): Promise<Setup> {
  const redis = await client(url);
  const prefix = uniquePrefix('restart');
  const keys = createRedisKeys(prefix);
  const clock = createSystemClock();
  const logger = new RecordingLogger();
  const config = testConfig({ prefix });
  const store = createRedisRunStore({ redis, keys, logger });
  const counter = memoryCounter();
  const events: RunEvent[] = [];
  const engine = createEngine({
    store,
    lock: createRedisLock({ redis, keys, clock, logger }),
    runbooks: [countingRunbook({ steps: [{ id: 'prepare' }, { id: 'fence', destructive: true }], counter })],
    ports: { clock } as unknown as RunbookPorts,
    config,
    policy: createApprovalPolicy({ slack: config.slack, directory: { usergroupMembers: async () => [] } }),
    observer: { onRunEvent: async (_run, event) => void events.push(event) },
    clock,
    logger,
    ownerId: 'bot-1',
    // The driver retries every pollMs and gives up after 30 failures in a row: a second apart, that is
    // far longer than an outage of a third of LEASE_MS.
    options: { lockTtlMs: LEASE_MS, ownerLeaseMs: LEASE_MS, pollMs: 1_000, graceMs: 200 },
  });
  closers.push(() => engine.close());
  return { engine, store, counts: counter.counts, events, logger };
}

const status = (s: Setup, id: string, wanted: RunRecord['status']) =>
  until(`run ${id} ${wanted}`, async () => {
    const run = await s.store.loadRun(id);
    return run?.status === wanted ? run : undefined;
  });

describe('engine while Redis restarts', () => {
  it('with appendonly, a run waiting for approval keeps waiting and goes on once approved', async () => {
    server = await startRedis({ appendonly: true });
    const s = await setup(server.url);
    const run = await s.engine.start({ runbook: 'counting', params: { node: 'cn1' }, requester: OPERATOR });
    await status(s, run.id, 'waiting-approval');

    await outage(server, s);
    const after = await status(s, run.id, 'waiting-approval');
    expect(after.steps[1]).toMatchObject({ status: 'waiting-approval', approvalRound: 1 });
    expect(s.counts.get('fence')).toBeUndefined();

    await until('the decision', async () => {
      const outcome = await s.engine.decide(run.id, 'fence', APPROVER_A, 'approve', 1);
      return outcome.kind === 'recorded' ? outcome : undefined;
    });
    await status(s, run.id, 'succeeded');
    expect(s.counts.get('fence')).toBe(1);
  }, 60_000);

  it('without persistence, a run waiting for approval stops before its next step, recorded again as paused', async () => {
    server = await startRedis();
    const s = await setup(server.url);
    const run = await s.engine.start({ runbook: 'counting', params: { node: 'cn1' }, requester: OPERATOR });
    await status(s, run.id, 'waiting-approval');

    await outage(server, s);
    const paused = await status(s, run.id, 'paused');
    expect(paused.pauseReason).toContain('Redis lost');
    expect(paused.steps.map((st) => st.status)).toEqual(['succeeded', 'pending']);
    // The event follows the saved status: wait for it rather than assume it came with the record.
    await until('the run-paused event', async () => s.events.find((e) => e.type === 'run-paused'));
    expect(s.events.map((e) => e.type)).toContain('run-paused');
    expect(s.counts.get('fence')).toBeUndefined();
    expect(await s.store.activeRunIds()).toEqual([run.id]);
  }, 60_000);
});
