/**
 * The monitor's protection: each CN's standby, backup and image in `/cell status`, the "no standby" alert
 * with its one-thread lifecycle, and roles recorded by a run showing in status at once.
 */
import { describe, expect, it } from 'vitest';
import { createMemoryIncidentStore, type IncidentStore } from '../../../src/monitor/incidents.js';
import { createMonitor, type Monitor } from '../../../src/monitor/monitor.js';
import { describeProtection } from '../../../src/monitor/protection.js';
import type { CellState } from '../../../src/ports/cell-state.js';
import { FakeChat } from '../../fakes/fake-chat.js';
import { FakeNodeRpc } from '../../fakes/fake-node-rpc.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import {
  channelPosts,
  memoryCellState,
  monitorConfig,
  threadTexts,
  type ChatPost,
} from '../../support/monitor-fixtures.js';

const FAILOVER_CN1 = {
  mode: 'standby',
  standby: 'cn1s',
  ip: { method: 'alias', address: '10.0.1.100/24', device: 'eth0' },
  nodekeyBackup: { host: 'cn1s', path: '/var/cellops/backup/cn1.nodekey' },
};

const config = monitorConfig({
  nodes: {
    cn1: { role: 'cn', host: '10.0.1.11', failover: FAILOVER_CN1 },
    cn1s: { role: 'standby', host: '10.0.1.12' },
    cn2: {
      role: 'cn',
      host: '10.0.2.11',
      instanceId: 'i-0123456789abcdef0',
      failover: {
        mode: 'snapshot',
        ip: { method: 'eip', allocationId: 'eipalloc-0123' },
        launch: { instanceType: 'm6i.large', subnetId: 'subnet-0123', securityGroupIds: ['sg-0123'] },
        snapshotFrom: ['pn1'],
        nodekeyBackup: { host: 'pn1', path: '/var/cellops/backup/cn2.nodekey' },
      },
    },
    pn1: { role: 'pn', host: '10.0.3.11', dataDir: '/var/kpnd/data' },
  },
});

class Cell {
  readonly clock = new ManualClock();
  readonly rpc = new FakeNodeRpc();
  readonly chat = new FakeChat();
  readonly store: IncidentStore = createMemoryIncidentStore({ clock: this.clock });
  readonly state: CellState = memoryCellState();
  readonly monitor: Monitor;

  constructor() {
    for (const name of Object.keys(config.nodes)) this.rpc.ok(name, 1000, { cnPeers: 4 });
    this.monitor = this.replica('r1');
  }

  replica(id: string): Monitor {
    return createMonitor({
      config,
      rpc: this.rpc,
      chat: this.chat,
      clock: this.clock,
      logger: new RecordingLogger(),
      store: this.store,
      state: this.state,
      replicaId: id,
    });
  }

  async run(seconds: number): Promise<void> {
    for (let i = 0; i < seconds / 3; i++) {
      await this.clock.advance(3_000);
      for (const [name, s] of this.rpc.nodes) if (s.kind === 'ok') this.rpc.advance(name, 3);
      await this.monitor.tick();
    }
  }

  alerts(): ChatPost[] {
    return channelPosts(this.chat);
  }

  thread(parent: ChatPost): string[] {
    return threadTexts(this.chat, parent);
  }

  /** What a failover run's record-roles step does: cn1 now served by cn1s, no standby left. */
  async failover(runId = 'run-f1'): Promise<void> {
    await this.state.setRole({ role: 'cn1', servedBy: 'cn1s', since: this.clock.now(), runId });
  }

  /** What rebuild-standby records: cn1's old machine stands by for cn1, served by cn1s. */
  async rebuild(runId = 'run-r1'): Promise<void> {
    await this.state.recordRoles({
      cn: 'cn1',
      servedBy: 'cn1s',
      standby: 'cn1',
      at: this.clock.now(),
      runId,
      by: 'U0AAA',
      reason: 'rebuild-standby',
    });
  }
}

function only<T>(items: readonly T[]): T {
  expect(items).toHaveLength(1);
  return items[0] as T;
}

describe('protection in /cell status', () => {
  it('shows each CN with the machine serving it and its protection', async () => {
    const cell = new Cell();
    await cell.state.setImage({ cn: 'cn2', imageId: 'ami-1', at: cell.clock.now(), runId: 'run-i' });
    await cell.run(9);
    const status = await cell.monitor.status();
    expect(status.protection?.map((p) => [p.cn, p.servedBy, describeProtection(p)])).toEqual([
      ['cn1', 'cn1', 'standby cn1s ready · backup missing'],
      ['cn2', 'cn2', 'backup missing · image fresh'],
    ]);
    expect(status.nodes.find((n) => n.node === 'cn1s')).toMatchObject({ role: 'standby', standbyOf: 'cn1' });
    expect(cell.alerts()).toEqual([]);
  });

  it('a standby that lags makes the protection "standby lagging"', async () => {
    const cell = new Cell();
    await cell.run(9);
    cell.rpc.ok('cn1s', cell.rpc.heightOf('cn1s') - 50);
    await cell.run(15);
    const status = await cell.monitor.status();
    expect(status.protection?.[0]?.standbyState).toBe('lagging');
    expect(only(cell.alerts()).message.text).toContain('cn1s (standby) is lagging');
  });

  it('after a failover: "no standby", one alert, resolved in its thread once a rebuilt standby is ready', async () => {
    const cell = new Cell();
    await cell.run(6);
    cell.rpc.fail('cn1');
    await cell.failover();
    await cell.run(6);
    const alert = only(cell.alerts());
    expect(alert.message.text).toBe('cn1 (served by cn1s) has no standby: nothing can take over if it fails');
    expect(JSON.stringify(alert.message.blocks)).toContain('/cell rebuild-standby cn1');
    expect(JSON.stringify(alert.message.blocks)).not.toContain('Start failover');
    const status = await cell.monitor.status();
    expect(status.protection?.[0]).toMatchObject({
      servedBy: 'cn1s',
      standbyState: 'none',
      rolesRunId: 'run-f1',
    });
    // More rounds do not post again.
    await cell.run(60);
    expect(cell.alerts()).toHaveLength(1);

    // The rebuilt standby is cn1's old machine, watched under a name of its own; it is still down.
    await cell.rebuild();
    await cell.run(12);
    const waiting = await cell.monitor.status();
    expect(waiting.protection?.[0]).toMatchObject({ standby: 'cn1', standbyState: 'down' });
    expect(waiting.nodes.find((n) => n.node === 'standby:cn1')).toMatchObject({
      role: 'standby',
      standbyOf: 'cn1',
    });
    await cell.run(60);
    expect(cell.thread(alert).join('\n')).toContain(
      'Standby cn1 recorded by run run-r1; waiting for it to be ready',
    );
    expect(cell.chat.updates().some((u) => u.message.text.startsWith('Resolved'))).toBe(false);

    cell.rpc.ok('cn1', cell.rpc.heightOf('pn1'), { cnPeers: 4 });
    await cell.run(6);
    expect(cell.thread(alert).at(-1)).toBe(
      ":white_check_mark: Protected again: cn1 is ready as cn1's standby (roles recorded by run run-r1).",
    );
    expect(cell.chat.updates().at(-1)?.message.text).toMatch(
      /^Resolved after .*: cn1 \(served by cn1s\) has no standby/,
    );
    expect((await cell.monitor.status()).protection?.[0]?.standbyState).toBe('ready');
    // The old machine, down while it was rebuilt, had an alert of its own, named after the machine.
    expect(cell.alerts().map((a) => a.message.text)).toEqual([
      'cn1 (served by cn1s) has no standby: nothing can take over if it fails',
      'cn1 (the machine, standby of cn1) is down: probes fail',
    ]);
  });

  it('a muted CN gets no "no standby" alert', async () => {
    const cell = new Cell();
    await cell.run(6);
    await cell.monitor.mute('cn1', 3_600_000, 'U0AAA');
    await cell.failover();
    await cell.run(30);
    expect(cell.alerts()).toEqual([]);
  });

  it('an image taken before the roles last changed is stale in snapshot mode', async () => {
    const cell = new Cell();
    await cell.state.setImage({ cn: 'cn2', imageId: 'ami-1', at: cell.clock.now(), runId: 'run-i' });
    await cell.run(6);
    await cell.state.setRole({
      role: 'cn2',
      servedBy: 'i-0new',
      instanceId: 'i-0new',
      address: '10.0.2.99',
      since: cell.clock.now(),
      runId: 'run-s1',
    });
    await cell.run(3);
    const p = (await cell.monitor.status()).protection?.find((x) => x.cn === 'cn2');
    expect(p).toMatchObject({ servedBy: 'i-0new', image: 'stale' });
  });

  it('the last readiness check feeds the backup and image verdicts', async () => {
    const cell = new Cell();
    await cell.state.setImage({ cn: 'cn2', imageId: 'ami-1', at: cell.clock.now(), runId: 'run-i' });
    await cell.state.setNodekeyBackup({
      cn: 'cn2',
      host: 'pn1',
      path: '/b',
      checksum: 'x',
      nodeAddress: '0x1',
      nodeId: 'y',
      at: cell.clock.now(),
      runId: 'run-b',
    });
    await cell.run(3);
    await cell.monitor.reportCheckFailure('cn2', 'image is older than kcnd.conf', [
      'image-fresh',
      'backup-matches',
    ]);
    await cell.run(3);
    const p = (await cell.monitor.status()).protection?.find((x) => x.cn === 'cn2');
    expect(p).toMatchObject({
      backup: 'stale',
      image: 'stale',
      checkFailures: ['image is older than kcnd.conf'],
    });
    await cell.monitor.reportCheckSuccess('cn2');
    await cell.run(3);
    expect((await cell.monitor.status()).protection?.find((x) => x.cn === 'cn2')).toMatchObject({
      backup: 'recorded',
      image: 'fresh',
    });
  });
});

describe('roles recorded by a run show in status at once', () => {
  it('on the leader: the machine now serving is probed before answering, the used-up standby is gone', async () => {
    const cell = new Cell();
    await cell.run(6);
    cell.rpc.fail('cn1');
    cell.rpc.fail('cn1s');
    await cell.run(12);
    // The failover's last steps: cn1s starts as cn1, then the roles are recorded; no round ran since.
    cell.rpc.ok('cn1s', cell.rpc.heightOf('pn1'), { cnPeers: 4 });
    await cell.failover();
    const status = await cell.monitor.status();
    expect(status.nodes.map((n) => [n.node, n.role, n.servedBy ?? '', n.condition])).toEqual([
      ['cn1', 'cn', 'cn1s', 'healthy'],
      ['cn2', 'cn', '', 'healthy'],
      ['pn1', 'pn', '', 'healthy'],
    ]);
    expect(status.protection?.[0]).toMatchObject({ servedBy: 'cn1s', standbyState: 'none' });
  });

  it('on another replica: the saved view re-cut to the new roles, what was not probed yet unknown', async () => {
    const cell = new Cell();
    await cell.run(6);
    const other = cell.replica('r2');
    await other.tick(); // not the leader: it answers from the saved view
    expect(other.isLeader()).toBe(false);
    await cell.failover();
    const status = await other.status();
    expect(status.nodes.map((n) => [n.node, n.servedBy ?? '', n.condition])).toEqual([
      ['cn1', 'cn1s', 'unknown'],
      ['cn2', '', 'healthy'],
      ['pn1', '', 'healthy'],
    ]);
    expect(status.protection?.[0]).toMatchObject({
      servedBy: 'cn1s',
      standbyState: 'none',
      rolesRunId: 'run-f1',
    });
  });
});

describe('a readiness check that only finds "no standby"', () => {
  it('goes into the no-standby thread instead of an alert of its own', async () => {
    const cell = new Cell();
    await cell.run(6);
    await cell.failover();
    await cell.run(3);
    const alert = only(cell.alerts());
    await cell.monitor.reportCheckFailure(
      'cn1',
      'The standby runs a key of its own: cn1 is served by cn1s since run run-f1: there is no standby left',
      ['standby-own-key'],
    );
    await cell.run(63);
    expect(cell.alerts()).toHaveLength(1);
    expect(cell.thread(alert).join('\n')).toContain('Readiness check: The standby runs a key of its own');
    // Any other failed condition is an alert of its own.
    await cell.monitor.reportCheckFailure('cn1', 'The nodekey backup differs', ['backup-matches']);
    expect(cell.alerts().map((a) => a.message.text)).toEqual([
      'cn1 (served by cn1s) has no standby: nothing can take over if it fails',
      'cn1 failed its readiness check',
    ]);
  });
});
