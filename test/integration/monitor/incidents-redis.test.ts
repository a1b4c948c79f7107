import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedisKeys } from '../../../src/infra/redis-keys.js';
import {
  createMemoryIncidentStore,
  createRedisIncidentStore,
  updateIncident,
  type IncidentRecord,
  type IncidentStore,
} from '../../../src/monitor/incidents.js';
import { INCIDENT_KINDS } from '../../../src/monitor/incident-record.js';
import { createMonitor } from '../../../src/monitor/monitor.js';
import { FakeChat } from '../../fakes/fake-chat.js';
import { FakeNodeRpc } from '../../fakes/fake-node-rpc.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { channelPosts, memoryCellState, monitorConfig } from '../../support/monitor-fixtures.js';
import { uniquePrefix } from '../../support/redis-client.js';
import { redisForSuite } from '../../support/redis-suite.js';

const redis = redisForSuite();
const client = (): Redis => redis.client();

function record(subject: string, version = 1): IncidentRecord {
  return {
    id: `${subject}-1`,
    subject,
    node: subject,
    kind: 'stalled',
    openedAt: 1,
    createdAt: 1,
    pending: {},
    version,
  };
}

/** The same cases against the in-memory store and the Redis one. */
const stores: [string, (clock: ManualClock) => IncidentStore][] = [
  ['memory', (clock) => createMemoryIncidentStore({ clock })],
  [
    'redis',
    (clock) =>
      createRedisIncidentStore({ redis: client(), keys: createRedisKeys(uniquePrefix('incidents')), clock }),
  ],
];

describe.each(stores)('incident store contract (%s)', (_name, make) => {
  it('of concurrent creations of one incident exactly one wins', async () => {
    const store = make(new ManualClock());
    const results = await Promise.all(Array.from({ length: 10 }, () => store.create(record('cn1'))));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await store.list()).map((r) => r.subject)).toEqual(['cn1']);
  });

  it('replace and remove act only on the expected version', async () => {
    const store = make(new ManualClock());
    await store.create(record('cn1'));
    expect(await store.replace({ ...record('cn1'), version: 3 })).toBe(false);
    expect(await store.replace({ ...record('cn1'), acknowledgedBy: 'U1', version: 2 })).toBe(true);
    expect(await store.remove('cn1', 1)).toBe(false);
    expect((await store.get('cn1'))?.acknowledgedBy).toBe('U1');
    expect(await store.remove('cn1', 2)).toBe(true);
    expect(await store.get('cn1')).toBeUndefined();
  });

  it('concurrent read-modify-writes all land', async () => {
    const store = make(new ManualClock());
    await store.create(record('cn1'));
    await Promise.all(
      ['a', 'b', 'c', 'd'].map((topic) =>
        updateIncident(store, 'cn1', (cur) => ({ ...cur, pending: { ...cur.pending, [topic]: topic } })),
      ),
    );
    expect(Object.keys((await store.get('cn1'))?.pending ?? {}).sort()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('a mute is cleared on expiry only if it is still the same mute', async () => {
    const store = make(new ManualClock());
    const first = { until: 10, by: 'U1', at: 1 };
    await store.setMute('cn1', first);
    await store.setMute('cn1', { until: 20, by: 'U2', at: 2 });
    expect(await store.clearMute('cn1', first)).toBe(false);
    expect((await store.getMutes(['cn1', 'cn2'])).get('cn1')?.by).toBe('U2');
    expect(await store.clearMute('cn1')).toBe(true);
    expect((await store.getMutes(['cn1'])).size).toBe(0);
  });

  it('keeps a record of every kind the monitor opens, as written', async () => {
    const store = make(new ManualClock());
    for (const kind of INCIDENT_KINDS) {
      const subject = `${kind}-subject`;
      const written: IncidentRecord = { ...record(subject), kind, detail: 'why' };
      expect(await store.create(written)).toBe(true);
      expect(await store.get(subject)).toEqual(written);
    }
  });

  it('the lease has one holder, is renewed by it, and passes on when released', async () => {
    const store = make(new ManualClock());
    expect(await store.acquireLease('a', 10_000)).toBe(true);
    expect(await store.acquireLease('b', 10_000)).toBe(false);
    expect(await store.acquireLease('a', 10_000)).toBe(true);
    await store.releaseLease('b');
    expect(await store.acquireLease('b', 10_000)).toBe(false);
    await store.releaseLease('a');
    expect(await store.acquireLease('b', 10_000)).toBe(true);
  });
});

describe('monitors sharing one Redis', () => {
  it('three monitors on one Redis post exactly one message per incident, and its thread continues after the leader stops', async () => {
    const clock = new ManualClock();
    const keys = createRedisKeys(uniquePrefix('monitors'));
    const rpc = new FakeNodeRpc();
    const config = monitorConfig();
    for (const name of Object.keys(config.nodes)) rpc.ok(name, 1000, { cnPeers: 4 });
    const chat = new FakeChat();
    const monitors = ['r1', 'r2', 'r3'].map((replicaId) =>
      createMonitor({
        config,
        rpc,
        chat,
        clock,
        logger: new RecordingLogger(),
        store: createRedisIncidentStore({ redis: client(), keys, clock }),
        state: memoryCellState(),
        replicaId,
      }),
    );
    const step = async (speeds: Record<string, number>) => {
      await clock.advance(3_000);
      for (const [name, state] of rpc.nodes) {
        if (state.kind === 'ok') rpc.advance(name, speeds[name] ?? 3);
      }
      await Promise.all(monitors.map((m) => m.tick()));
    };

    for (let i = 0; i < 3; i++) await step({});
    // cn1 stalls and cn2 goes down: two incidents.
    rpc.fail('cn2');
    for (let i = 0; i < 10; i++) await step({ cn1: 0 });
    const parents = chat.posts().filter((p) => p.message.threadTs === undefined);
    expect(parents.map((p) => p.message.text).sort()).toEqual([
      'cn1 has stalled: its block height stopped moving',
      'cn2 is down: probes fail',
    ]);
    expect(monitors.filter((m) => m.isLeader())).toHaveLength(1);

    // An Acknowledge on a follower reaches the leader's thread.
    const follower = monitors.find((m) => !m.isLeader());
    await follower?.acknowledge('cn1', 'U0AAA');

    // The leader goes away; another replica takes over and finishes the same threads.
    const leader = monitors.find((m) => m.isLeader());
    await leader?.stop();
    const rest = monitors.filter((m) => m !== leader);
    rpc.ok('cn1', rpc.heightOf('pn1'), { cnPeers: 4 });
    rpc.ok('cn2', rpc.heightOf('pn1'), { cnPeers: 4 });
    for (let i = 0; i < 25; i++) {
      await clock.advance(3_000);
      for (const [name, state] of rpc.nodes) if (state.kind === 'ok') rpc.advance(name, 3);
      await Promise.all(rest.map((m) => m.tick()));
    }
    expect(chat.posts().filter((p) => p.message.threadTs === undefined)).toHaveLength(2);
    const cn1Parent = parents.find((p) => p.message.text.startsWith('cn1'));
    const cn1Thread = chat
      .posts()
      .filter((p) => p.message.threadTs === cn1Parent?.ref.ts)
      .map((p) => p.message.text)
      .join('\n');
    expect(cn1Thread).toContain('Acknowledged by <@U0AAA>');
    expect(cn1Thread).toContain('Recovered after');
    for (const parent of parents) {
      const resolved = chat
        .updates()
        .filter((u) => u.ref.ts === parent.ref.ts)
        .at(-1);
      expect(resolved?.message.text).toMatch(/^Resolved after/);
    }
    for (const m of rest) await m.stop();
  });
});

describe('a monitor on Redis whose probes are not evenly spaced', () => {
  it('keeps one alert for a stall dated between two probes less than an interval apart, and resolves it', async () => {
    // A loaded machine starts one round's probes late and the next on time, so two probes can be an odd
    // number of milliseconds apart, less than an interval: the stall is dated to the middle of that gap,
    // which fell on half a millisecond. Its record must read back from Redis like any other, or every
    // round finds no incident and posts the alert again while the first one keeps its buttons.
    const clock = new ManualClock();
    const logger = new RecordingLogger();
    const rpc = new FakeNodeRpc();
    const config = monitorConfig();
    for (const name of Object.keys(config.nodes)) rpc.ok(name, 1000, { cnPeers: 4 });
    const chat = new FakeChat();
    const monitor = createMonitor({
      config,
      rpc,
      chat,
      clock,
      logger,
      store: createRedisIncidentStore({
        redis: client(),
        keys: createRedisKeys(uniquePrefix('uneven')),
        clock,
        logger,
      }),
      state: memoryCellState(),
      replicaId: 'r1',
    });
    const step = async (ms: number, speeds: Record<string, number> = {}) => {
      await clock.advance(ms);
      for (const [name, state] of rpc.nodes) {
        if (state.kind === 'ok') rpc.advance(name, speeds[name] ?? 3);
      }
      await monitor.tick();
    };
    for (let i = 0; i < 3; i++) await step(3_000);
    // cn1's last block comes in a short, odd gap between two rounds; then its height stops.
    await step(2_999);
    for (let i = 0; i < 12; i++) await step(3_000, { cn1: 0 });
    const alerts = channelPosts(chat).filter((p) => p.message.text.startsWith('cn1 '));
    expect(alerts.map((p) => p.message.text)).toEqual(['cn1 has stalled: its block height stopped moving']);
    expect(logger.text()).not.toContain('quarantine');
    expect(logger.text()).not.toContain('incident record is gone');

    rpc.ok('cn1', rpc.heightOf('pn1'), { cnPeers: 4 });
    for (let i = 0; i < 6; i++) await step(3_000);
    expect(channelPosts(chat).filter((p) => p.message.text.startsWith('cn1 '))).toHaveLength(1);
    const resolved = chat
      .updates()
      .filter((u) => u.ref.ts === alerts[0]?.ref.ts)
      .at(-1);
    expect(resolved?.message.text).toMatch(/^Resolved after .*: cn1 has stalled/);
    await monitor.stop();
  });
});
