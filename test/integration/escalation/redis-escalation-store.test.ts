/**
 * The escalation state in a real Redis: a restarted policy (a new monitor leader, a restarted bot) carries
 * on from it, what it reads back is validated, and a claim on an entry is held by one holder at a time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedisKeys } from '../../../src/infra/redis-keys.js';
import { createEscalationPolicy } from '../../../src/escalation/escalation-policy.js';
import { createRedisEscalationStore } from '../../../src/escalation/redis-escalation-store.js';
import type { AlertEntry, EscalationIntent } from '../../../src/escalation/policy.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { closeRedis, testRedis, uniquePrefix } from '../../support/redis-client.js';
import { startRedis, type RedisServer } from '../../support/redis-server.js';

const MIN = 60_000;
const settings = {
  cell: 'my-core-cell',
  pageAfterMs: 5 * MIN,
  approvalReminderMs: 5 * MIN,
  approvalPageMs: 10 * MIN,
  paging: true,
};

let server: RedisServer;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = testRedis(server.url);
});

afterAll(async () => {
  await closeRedis(redis);
  await server.stop();
});

function policyOn(prefix: string, clock: ManualClock, logger: RecordingLogger, out: EscalationIntent[]) {
  return createEscalationPolicy({
    settings,
    clock,
    logger,
    store: createRedisEscalationStore({ redis, keys: createRedisKeys(prefix), logger }),
    emit: (intent) => {
      out.push(intent);
    },
  });
}

describe('the Redis escalation store', () => {
  it('lets a restarted policy page what fell due while it was down, then resolve it', async () => {
    const prefix = uniquePrefix('escalation');
    const clock = new ManualClock();
    const logger = new RecordingLogger();
    const first: EscalationIntent[] = [];
    const before = policyOn(prefix, clock, logger, first);
    await before.start();
    await before.alertOpened({ id: 'cn1-a', node: 'cn1', role: 'cn', condition: 'down', since: clock.now() });
    before.stop();
    expect(first).toEqual([]);

    await clock.advance(6 * MIN);
    const second: EscalationIntent[] = [];
    const after = policyOn(prefix, clock, logger, second);
    await after.start();
    const page = second.find((i) => i.type === 'page');
    expect(page?.type === 'page' && page.event.action).toBe('trigger');

    await after.alertResolved('cn1-a');
    expect(second.filter((i) => i.type === 'page').map((i) => i.type === 'page' && i.event.action)).toEqual([
      'trigger',
      'resolve',
    ]);
    expect(await redis.hlen(createRedisKeys(prefix).escalation())).toBe(0);
    after.stop();
  });

  it('drops entries that are not what it wrote, naming them, and keeps the valid ones', async () => {
    const prefix = uniquePrefix('escalation');
    const keys = createRedisKeys(prefix);
    const logger = new RecordingLogger();
    const store = createRedisEscalationStore({ redis, keys, logger });
    await store.put({
      kind: 'alert',
      facts: { id: 'cn1-a', node: 'cn1', role: 'cn', condition: 'down', since: 1 },
      openedAt: 1,
      state: 'waiting',
      paged: false,
    });
    await redis.hset(keys.escalation(), 'alert:cn2-b', '{"kind":"alert","facts":{"id":"cn2-b"}}');
    await redis.hset(keys.escalation(), 'alert:cn3-c', 'not json');

    const entries = await store.list();
    expect(entries.map((e) => e.facts.id)).toEqual(['cn1-a']);
    expect(logger.text()).toContain('alert:cn2-b');
    expect(await redis.hkeys(keys.escalation())).toEqual(['alert:cn1-a']);
  });

  it('gives an entry to one of two claims at once, and saves nothing under a claim that lapsed', async () => {
    const keys = createRedisKeys(uniquePrefix('escalation'));
    const store = createRedisEscalationStore({ redis, keys, logger: new RecordingLogger() });
    const entry: AlertEntry = {
      kind: 'alert',
      facts: { id: 'cn1-a', node: 'cn1', role: 'cn', condition: 'down', since: 1 },
      openedAt: 1,
      state: 'waiting',
      paged: false,
    };
    await store.put(entry);

    const claims = await Promise.all([
      store.claim('alert:cn1-a', 30_000),
      store.claim('alert:cn1-a', 30_000),
    ]);
    const won = claims.filter((c) => c !== undefined);
    expect(won).toHaveLength(1);
    expect(won[0]?.entry).toEqual(entry);
    expect(await won[0]?.commit({ ...entry, state: 'paged', paged: true, pagedSeverity: 'critical' })).toBe(
      true,
    );

    // Saving let go of it: the next holder reads what was saved.
    const slow = await store.claim('alert:cn1-a', 50);
    expect(slow?.entry).toMatchObject({ state: 'paged' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const next = await store.claim('alert:cn1-a', 30_000);
    expect(next).toBeDefined();
    // The slow holder's claim lapsed: it can neither save nor free the next holder's claim.
    expect(await slow?.commit(undefined)).toBe(false);
    await slow?.release();
    expect(await redis.hlen(keys.escalation())).toBe(1);
    expect(await store.claim('alert:cn1-a', 30_000)).toBeUndefined();
    await next?.release();
    expect(await store.claim('alert:cn1-a', 30_000)).toBeDefined();
  });
});
