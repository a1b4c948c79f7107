/**
 * Redis behind Sentinel, for real: a primary and a replica (`appendonly yes`) and three redis-sentinel
 * processes on loopback. The client finds the primary through the sentinels (with passwords on both), and
 * a run of the real engine with the real Redis lock goes through a failover of its primary: it continues
 * (or pauses and says why), the lock never has two holders and the fencing counter never goes back, and
 * the run record and its audit trail are whole afterwards.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedisClient } from '../../../src/infra/redis-client.js';
import { createRedisKeys } from '../../../src/infra/redis-keys.js';
import { createSystemClock } from '../../../src/infra/system-clock.js';
import { createRedisLock } from '../../../src/locks/redis-lock.js';
import { LockBusyError } from '../../../src/locks/types.js';
import type { RunEvent, RunRecord } from '../../../src/runbooks/types.js';
import type { StoredAuditEntry } from '../../../src/runbooks/engine/run-store.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { APPROVER_A, OPERATOR } from '../../support/bot-fixtures.js';
import type { CountingStep } from '../../support/counting-runbook.js';
import { closeRedis, uniquePrefix } from '../../support/redis-client.js';
import { createRedisEngine, type RedisEngineSetup } from '../../support/redis-engine.js';
import { MASTER_NAME, startSentinelGroup, type SentinelGroup } from '../../support/redis-sentinel.js';
import { startRedis } from '../../support/redis-server.js';
import { until as pollUntil } from '../../support/until.js';

/** Generous: a failover here takes a few seconds, more on a busy machine; errors while it lasts are "not yet". */
const until = <T>(what: string, check: () => Promise<T | undefined | false>): Promise<T> =>
  pollUntil(what, check, { timeoutMs: 45_000, everyMs: 50, ignoreErrors: true });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function group(options: Parameters<typeof startSentinelGroup>[0] = {}): Promise<SentinelGroup> {
  const started = await startSentinelGroup(options);
  cleanups.push(() => started.stop());
  return started;
}

function client(url: string, env: Record<string, string>): Redis {
  const redis = createRedisClient(url, env);
  cleanups.push(() => closeRedis(redis));
  return redis;
}

/** The port of the server this client's connection ends at, as the server itself reports it. */
async function connectedPort(redis: Redis): Promise<number> {
  const info = await redis.info('server');
  return Number(/tcp_port:(\d+)/.exec(info)?.[1]);
}

describe('Redis through Sentinel', () => {
  it('finds the primary through the sentinels, writes there and the replica gets it', async () => {
    const g = await group();
    const redis = client(g.url, g.env);
    await redis.set('k', 'v');
    expect(await redis.get('k')).toBe('v');
    expect(await connectedPort(redis)).toBe(await g.primaryPort());
    expect(((await redis.call('ROLE')) as unknown[])[0]).toBe('master');
    expect(await redis.call('WAIT', '1', '5000')).toBe(1);
  }, 60_000);

  it('with passwords on the servers and on the sentinels (REDIS_SENTINEL_PASSWORD), and says so when one is missing', async () => {
    const g = await group({ serverPassword: 'primary-secret', sentinelPassword: 'sentinel-secret' });
    const redis = client(g.url, g.env);
    await redis.set('k', 'v');
    expect(await redis.get('k')).toBe('v');
    expect(await connectedPort(redis)).toBe(await g.primaryPort());

    // Without the sentinels' password no sentinel answers; the error says so and names no password.
    const refused = createRedisClient(
      g.url,
      {},
      { overrides: { lazyConnect: true, sentinelRetryStrategy: () => null, retryStrategy: () => null } },
    );
    cleanups.push(async () => refused.disconnect());
    const error = await refused.connect().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toMatch(/All sentinels are unreachable.*NOAUTH|Authentication required/s);
    expect(error?.message).not.toContain('secret');
  }, 60_000);

  it('a run waiting for approval goes on after SENTINEL FAILOVER: one lock holder, fencing intact, nothing lost', async () => {
    const g = await group();
    const cell = await twoReplicas(g, [
      { id: 'prepare' },
      { id: 'fence', destructive: true },
      { id: 'finish' },
    ]);
    const [one, two] = cell.engines;
    const run = await one.engine.start({ runbook: 'counting', params: { node: 'cn1' }, requester: OPERATOR });
    await status(one, run.id, 'waiting-approval');
    const before = await cell.snapshot(run.id);
    await expect(start(two)).rejects.toBeInstanceOf(LockBusyError);

    const oldPrimary = await g.primaryPort();
    await g.sentinel(0).call('SENTINEL', 'FAILOVER', MASTER_NAME);
    const newPrimary = await until(
      'a new primary',
      async () => (await g.primaryPort()) !== oldPrimary && g.primaryPort(),
    );
    // The old primary is a replica of the new one now: a client left on it would get READONLY.
    const demoted = client(g.server(oldPrimary).url, {});
    await until(
      'the old primary to become a replica',
      async () => ((await demoted.call('ROLE')) as unknown[])[0] === 'slave',
    );

    // The lock and its holder record came through: the run still holds it, nobody else can take it.
    expect(await cell.lock.holder('failover')).toMatchObject({
      runId: run.id,
      fencingToken: run.fencingToken,
    });
    await until('the other replica to be refused by the lock on the new primary', async () =>
      start(two).then(
        () => {
          throw new Error('a second run took the lock');
        },
        (error: unknown) => error instanceof LockBusyError,
      ),
    );

    // Approved through the other replica: its write reaches the new primary, the driver hears it.
    await until('the approval', async () => {
      const outcome = await two.engine.decide(run.id, 'fence', APPROVER_A, 'approve', 1);
      return outcome.kind === 'recorded';
    });
    const ended = await finished(one, run.id);
    expect(await connectedPort(one.redis)).toBe(newPrimary);
    expect(ended.status).toBe('succeeded');
    await cell.expectIntact(run.id, before, ended);
  }, 120_000);

  it('a run whose primary is killed in the middle of a step goes on through the failover (or pauses and says why)', async () => {
    const g = await group();
    let entered: () => void = () => undefined;
    const inStep = new Promise<void>((resolve) => (entered = resolve));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const cell = await twoReplicas(g, [
      { id: 'prepare' },
      {
        id: 'work',
        timeoutMs: 120_000,
        before: async (ctx) => {
          entered();
          await Promise.race([gate, abortOf(ctx.signal)]);
        },
      },
      { id: 'finish' },
    ]);
    const [one, two] = cell.engines;
    const run = await start(one);
    await inStep;
    const before = await cell.snapshot(run.id);

    const oldPrimary = await g.primaryPort();
    await g.server(oldPrimary).kill();
    // While there is no primary the other replica gets no lock either: it fails, or is refused.
    await expect(start(two)).rejects.toThrow();
    await until('a new primary', async () => (await g.primaryPort()) !== oldPrimary);
    await until('the other replica to be refused by the lock on the new primary', async () =>
      start(two).then(
        () => {
          throw new Error('a second run took the lock');
        },
        (error: unknown) => error instanceof LockBusyError,
      ),
    );

    release();
    let ended = await finished(one, run.id);
    if (ended.status === 'paused') {
      // Allowed when the failover outlasted the lock's lease: the run stopped before its next step and
      // says why; resuming takes the lock again with a new fencing token.
      expect(ended.pauseReason).toMatch(/lock|Redis/);
      expect(cell.events.map((e) => e.type)).toContain('run-paused');
      await one.engine.resume(run.id, OPERATOR);
      ended = await finished(one, run.id);
    }
    expect(ended.status).toBe('succeeded');
    await cell.expectIntact(run.id, before, ended);
  }, 120_000);
});

describe('a client left on a primary that was demoted', () => {
  it('reconnects on READONLY and sends the write again, commands and scripts alike, once a primary answers', async () => {
    const a = await startRedis({ appendonly: true });
    const b = await startRedis({ appendonly: true });
    cleanups.push(
      () => a.stop(),
      () => b.stop(),
    );
    const redis = client(a.url, {});
    const admin = client(a.url, {});
    await redis.ping();

    // The address the client uses now reaches a replica (what a failover does to a client that missed it).
    await admin.call('REPLICAOF', '127.0.0.1', String(b.port));
    const reconnected = new Promise<void>((resolve) => redis.once('reconnecting', () => resolve()));
    const write = redis.set('during', '2');
    const script = redis.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, 'script', '3');
    // Without reconnect-on-READONLY a write fails here at once.
    await Promise.race([reconnected, write, script]);
    // ...and then a primary again, as the name or address of the primary would after a failover.
    await until('a to be a primary again', async () => (await admin.call('REPLICAOF', 'NO', 'ONE')) === 'OK');

    expect(await write).toBe('OK');
    expect(await script).toBe('OK');
    expect(await admin.mget('during', 'script')).toEqual(['2', '3']);
  }, 60_000);
});

function abortOf(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason as Error);
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
}

const start = (setup: RedisEngineSetup) =>
  setup.engine.start({ runbook: 'counting', params: { node: 'cn1' }, requester: OPERATOR });

const status = (setup: RedisEngineSetup, id: string, wanted: RunRecord['status']) =>
  until(`run ${id} ${wanted}`, async () => (await setup.store.loadRun(id))?.status === wanted);

/** Waits until the run succeeded, failed, was aborted or paused, and returns its record. */
const finished = (setup: RedisEngineSetup, id: string) =>
  until(`run ${id} to end or pause`, async () => {
    const run = await setup.store.loadRun(id);
    return run && ['succeeded', 'failed', 'aborted', 'paused'].includes(run.status) ? run : undefined;
  });

interface Snapshot {
  readonly record: RunRecord;
  readonly audit: readonly StoredAuditEntry[];
  readonly fence: number;
}

/**
 * Two bot replicas on one Sentinel group, each with a production client (createRedisClient's defaults)
 * and a lock TTL well above the time a failover takes here.
 */
async function twoReplicas(g: SentinelGroup, steps: readonly CountingStep[]) {
  const prefix = uniquePrefix('sentinel');
  const keys = createRedisKeys(prefix);
  const events: RunEvent[] = [];
  const engines = ['bot-1', 'bot-2'].map((ownerId) => {
    const setup = createRedisEngine({
      url: g.url,
      redis: createRedisClient(g.url, g.env),
      prefix,
      ownerId,
      steps: () => steps,
      logger: new RecordingLogger(),
      engineOptions: { lockTtlMs: 15_000, ownerLeaseMs: 15_000, pollMs: 200 },
      observer: { onRunEvent: async (_run, event) => void events.push(event) },
    });
    cleanups.push(() => setup.close());
    return setup;
  }) as [RedisEngineSetup, RedisEngineSetup];
  const observer = client(g.url, g.env);
  const lock = createRedisLock({ redis: observer, keys, clock: createSystemClock() });

  return {
    engines,
    events,
    lock,
    /** The run's record, audit trail and fencing counter, once the replica has all of it (WAIT). */
    async snapshot(runId: string): Promise<Snapshot> {
      const record = await engines[0].store.loadRun(runId);
      if (!record) throw new Error(`no run ${runId}`);
      const audit = await engines[0].store.readAudit(runId);
      const fence = Number(await observer.get(keys.lockFence('failover')));
      // The precondition for "nothing lost": what was acknowledged so far has reached the replica.
      expect(await observer.call('WAIT', '1', '10000')).toBe(1);
      return { record, audit, fence };
    },
    async expectIntact(runId: string, before: Snapshot, ended: RunRecord): Promise<void> {
      // Every side effect exactly once.
      for (const step of steps) expect(await engines[0].counter.get(step.id)).toBe(1);
      // The audit trail from before the failover is all there, unchanged, and the run went on after it.
      const audit = await engines[0].store.readAudit(runId);
      expect(audit.slice(0, before.audit.length)).toEqual(before.audit);
      expect(audit.at(-1)?.what).toBe('run-finished');
      expect(ended.createdAt).toBe(before.record.createdAt);
      for (const [i, step] of before.record.steps.entries()) {
        if (step.status === 'succeeded') expect(ended.steps[i]).toEqual(step);
      }
      // Fencing: tokens only go up, each acquisition by this run got a new one, and the next run's
      // token follows the last one issued: the counter did not go back in the failover.
      const tokens = audit
        .filter((e) => e.what === 'lock-acquired')
        .map((e) => Number(/fencing token (\d+)/.exec(e.detail ?? '')?.[1]));
      expect(tokens).toEqual([...tokens].sort((a, b) => a - b));
      expect(new Set(tokens).size).toBe(tokens.length);
      // Nobody else got a token before the failover, and after it only this run's re-acquisitions did.
      expect(before.fence).toBe(before.record.fencingToken);
      expect(ended.fencingToken).toBe(before.fence + tokens.filter((t) => t > before.fence).length);
      expect(await this.lock.holder('failover')).toBeUndefined();
      const next = await start(engines[1]);
      expect(next.fencingToken).toBe((ended.fencingToken ?? 0) + 1);
      await engines[1].engine.abort(next.id, OPERATOR);
    },
  };
}
