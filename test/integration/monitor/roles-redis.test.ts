/**
 * Roles recorded by a run show in `/cell status` at once on every replica, with the roles, the incidents
 * and the saved view in one real Redis: the leader probes the new serving machine before answering, the
 * other replica re-cuts the saved view to the new roles.
 */
import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedisKeys } from '../../../src/infra/redis-keys.js';
import { createRedisCellState } from '../../../src/infra/redis-cell-state.js';
import { createRedisIncidentStore } from '../../../src/monitor/incidents.js';
import { createMonitor } from '../../../src/monitor/monitor.js';
import { FakeChat } from '../../fakes/fake-chat.js';
import { FakeNodeRpc } from '../../fakes/fake-node-rpc.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { channelPosts, monitorConfig } from '../../support/monitor-fixtures.js';
import { uniquePrefix } from '../../support/redis-client.js';
import { redisForSuite } from '../../support/redis-suite.js';

const redis = redisForSuite();
const client = (): Redis => redis.client();

const config = monitorConfig({
  nodes: {
    cn1: {
      role: 'cn',
      host: '10.0.1.11',
      failover: {
        mode: 'standby',
        standby: 'cn1s',
        ip: { method: 'alias', address: '10.0.1.100/24', device: 'eth0' },
        nodekeyBackup: { host: 'cn1s', path: '/var/cellops/backup/cn1.nodekey' },
      },
    },
    cn1s: { role: 'standby', host: '10.0.1.12' },
    pn1: { role: 'pn', host: '10.0.3.11', dataDir: '/var/kpnd/data' },
  },
});

describe('roles in Redis and the monitor', () => {
  it('status on the leader and on another replica shows roles recorded a moment ago', async () => {
    const clock = new ManualClock();
    const keys = createRedisKeys(uniquePrefix('roles-monitor'));
    const rpc = new FakeNodeRpc();
    for (const name of Object.keys(config.nodes)) rpc.ok(name, 1000, { cnPeers: 4 });
    const chat = new FakeChat();
    const [leader, other] = ['r1', 'r2'].map((replicaId) =>
      createMonitor({
        config,
        rpc,
        chat,
        clock,
        logger: new RecordingLogger(),
        store: createRedisIncidentStore({ redis: client(), keys, clock }),
        state: createRedisCellState({ redis: client(), keys }),
        replicaId,
      }),
    );
    if (!leader || !other) throw new Error('two monitors expected');
    for (let i = 0; i < 2; i++) {
      await clock.advance(3_000);
      for (const name of rpc.nodes.keys()) rpc.advance(name, 3);
      await leader.tick();
      await other.tick();
    }
    expect(leader.isLeader()).toBe(true);
    expect(other.isLeader()).toBe(false);

    // A run on a third process records the failover's roles.
    await createRedisCellState({ redis: client(), keys }).setRole({
      role: 'cn1',
      servedBy: 'cn1s',
      since: clock.now(),
      runId: 'r-f1',
    });

    const seenByOther = await other.status();
    expect(seenByOther.nodes.map((n) => [n.node, n.servedBy ?? '', n.condition])).toEqual([
      ['cn1', 'cn1s', 'unknown'],
      ['pn1', '', 'healthy'],
    ]);
    expect(seenByOther.protection?.[0]).toMatchObject({ servedBy: 'cn1s', standbyState: 'none' });

    const seenByLeader = await leader.status();
    expect(seenByLeader.nodes.map((n) => [n.node, n.servedBy ?? '', n.condition])).toEqual([
      ['cn1', 'cn1s', 'healthy'],
      ['pn1', '', 'healthy'],
    ]);
    // The round the status ran opened the "no standby" alert, and saved the view the other replica now shows.
    expect(channelPosts(chat).map((p) => p.message.text)).toEqual([
      'cn1 (served by cn1s) has no standby: nothing can take over if it fails',
    ]);
    expect((await other.status()).nodes[0]).toMatchObject({
      node: 'cn1',
      servedBy: 'cn1s',
      condition: 'healthy',
    });
  });
});
