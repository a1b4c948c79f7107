import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.js';
import { parseAlertActionValue } from '../../../src/views/action-values.js';
import { createMemoryIncidentStore, type IncidentStore } from '../../../src/monitor/incidents.js';
import { createMonitorMetrics } from '../../../src/monitor/metrics.js';
import { checkSubject } from '../../../src/monitor/alert-lifecycle.js';
import { createMonitor, type Monitor, type MonitorDeps } from '../../../src/monitor/monitor.js';
import { ALERT_ACTIONS } from '../../../src/views/action-ids.js';
import type { CellopsConfig } from '../../../src/config/config.js';
import type { ChatCall } from '../../fakes/fake-chat.js';
import { FakeChat } from '../../fakes/fake-chat.js';
import { FakeNodeRpc } from '../../fakes/fake-node-rpc.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { memoryCellState, monitorConfig, MONITOR_CHANNEL } from '../../support/monitor-fixtures.js';

type Post = Extract<ChatCall, { kind: 'post' }>;

/** A cell of fake nodes that make 1 block per second, a monitor over it, and a manual clock. */
class Cell {
  readonly clock = new ManualClock();
  readonly rpc = new FakeNodeRpc();
  readonly chat = new FakeChat();
  readonly logger = new RecordingLogger();
  readonly state = memoryCellState();
  readonly metrics = createMonitorMetrics();
  readonly store: IncidentStore;
  readonly monitor: Monitor;
  /** Blocks per 3-second step of each node (default 3). */
  readonly speed = new Map<string, number>();
  readonly checks: string[] = [];
  checkResult: () => Promise<void> = async () => undefined;

  constructor(
    readonly config: CellopsConfig = monitorConfig(),
    options: { store?: IncidentStore; clock?: ManualClock; extra?: Partial<MonitorDeps> } = {},
  ) {
    if (options.clock) (this as { clock: ManualClock }).clock = options.clock;
    this.store = options.store ?? createMemoryIncidentStore({ clock: this.clock });
    for (const name of Object.keys(config.nodes)) this.rpc.ok(name, 1000, { cnPeers: 4 });
    this.monitor = createMonitor({
      config,
      rpc: this.rpc,
      chat: this.chat,
      clock: this.clock,
      logger: this.logger,
      store: this.store,
      state: this.state,
      metrics: this.metrics,
      startCheck: async (cn) => {
        this.checks.push(cn);
        await this.checkResult();
      },
      ...options.extra,
    });
  }

  /** Lets `seconds` pass in 3-second probe intervals: nodes move, then the monitor ticks. */
  async run(seconds: number): Promise<void> {
    for (let i = 0; i < seconds / 3; i++) {
      await this.clock.advance(3_000);
      this.moveNodes();
      await this.monitor.tick();
    }
  }

  moveNodes(): void {
    for (const [name, state] of this.rpc.nodes) {
      if (state.kind === 'ok') this.rpc.advance(name, this.speed.get(name) ?? 3);
    }
  }

  /** Channel messages (not in a thread). */
  alerts(): Post[] {
    return this.chat.posts().filter((p) => p.message.threadTs === undefined);
  }

  thread(parent: Post): string[] {
    return this.chat
      .posts()
      .filter((p) => p.message.threadTs === parent.ref.ts)
      .map((p) => p.message.text);
  }

  updatesOf(parent: Post): string[] {
    return this.chat
      .updates()
      .filter((u) => u.ref.ts === parent.ref.ts)
      .map((u) => u.message.text + JSON.stringify(u.message.blocks));
  }
}

function only<T>(items: readonly T[]): T {
  expect(items).toHaveLength(1);
  return items[0] as T;
}

function buttons(post: Post): { action_id: string; value: string; text: { text: string } }[] {
  const actions = post.message.blocks?.find((b) => b.type === 'actions') as
    { elements: { action_id: string; value: string; text: { text: string } }[] } | undefined;
  return actions?.elements ?? [];
}

describe('monitor', () => {
  it('posts nothing while every node keeps up with the chain', async () => {
    const cell = new Cell();
    await cell.run(120);
    expect(cell.chat.calls).toEqual([]);
    const status = await cell.monitor.status();
    expect(status.nodes.map((n) => n.condition)).toEqual(['healthy', 'healthy', 'healthy', 'healthy']);
    expect(status.referenceHeight).toBe(1120);
  });

  it('a CN whose height stops moving gets one alert with node, condition, since and the three buttons', async () => {
    const cell = new Cell();
    await cell.run(9);
    cell.speed.set('cn1', 0);
    await cell.run(60);
    const alert = only(cell.alerts());
    expect(alert.message.channel).toBe(MONITOR_CHANNEL);
    expect(alert.message.text).toContain('cn1');
    expect(alert.message.text).toContain('stalled');
    const body = JSON.stringify(alert.message.blocks);
    expect(body).toContain('Since');
    expect(buttons(alert).map((b) => [b.action_id, b.text.text])).toEqual([
      [ALERT_ACTIONS.startFailover, 'Start failover'],
      [ALERT_ACTIONS.mute, 'Mute 30m'],
      [ALERT_ACTIONS.acknowledge, 'Acknowledge'],
    ]);
    const value = parseAlertActionValue(buttons(alert)[0]?.value ?? '');
    expect(value?.node).toBe('cn1');
    expect(value?.incident).toMatch(/^cn1-/);
    expect((await cell.monitor.status()).nodes.find((n) => n.node === 'cn1')?.condition).toBe('stalled');
  });

  it('the stall alert is posted within one interval after the stall threshold is crossed', async () => {
    const cell = new Cell();
    await cell.run(9);
    cell.speed.set('cn1', 0);
    const stoppedAt = cell.clock.now();
    let postedAt: number | undefined;
    for (let i = 0; i < 20 && postedAt === undefined; i++) {
      await cell.run(3);
      if (cell.alerts().length > 0) postedAt = cell.clock.now();
    }
    expect(postedAt).toBeDefined();
    const latency = (postedAt ?? 0) - stoppedAt;
    expect(latency).toBeGreaterThanOrEqual(cell.config.monitor.stallMs - cell.config.monitor.intervalMs);
    expect(latency - cell.config.monitor.stallMs).toBeLessThanOrEqual(cell.config.monitor.intervalMs);
  });

  it('a CN falling behind is alerted as lagging with its lag, and a growing lag goes into the thread at most once a minute', async () => {
    const cell = new Cell();
    await cell.run(6);
    cell.speed.set('cn1', 1); // two blocks more behind every probe
    await cell.run(30);
    const alert = only(cell.alerts());
    expect(alert.message.text).toContain('cn1 is lagging');
    expect(JSON.stringify(alert.message.blocks)).toMatch(/Lag:\* \d+ blocks \(reference \d+\)/);
    await cell.run(180);
    const thread = cell.thread(alert);
    expect(thread.length).toBeGreaterThanOrEqual(2);
    expect(thread.length).toBeLessThanOrEqual(3);
    expect(thread.every((t) => t.startsWith('Lag growing'))).toBe(true);
    const times = cell.chat
      .posts()
      .filter((p) => p.message.threadTs === alert.ref.ts)
      .map((p) => cell.chat.calls.indexOf(p));
    expect(times).toHaveLength(thread.length);
    expect(only(cell.alerts())).toBe(alert);
  });

  it('thread updates are coalesced: many changes within a minute make one message', async () => {
    const cell = new Cell();
    await cell.run(6);
    cell.speed.set('cn1', 0);
    await cell.run(21); // stalled
    const alert = only(cell.alerts());
    await cell.monitor.acknowledge('cn1', 'U0AAA');
    await cell.monitor.acknowledge('cn1', 'U0BBB');
    cell.rpc.fail('cn1');
    await cell.run(15); // down
    expect(cell.thread(alert)).toEqual([]);
    await cell.run(60);
    const thread = only(cell.thread(alert));
    expect(thread).toContain('Acknowledged by <@U0AAA>');
    expect(thread).toContain('Acknowledged by <@U0BBB>');
    expect(thread).toContain('*stalled* → *down*');
  });

  it('a node whose probes fail is down after `failures` probes, with the error in the alert', async () => {
    const cell = new Cell();
    await cell.run(6);
    cell.rpc.fail('cn2', 'connect ECONNREFUSED 10.0.2.11:61001');
    await cell.run(6);
    expect(cell.alerts()).toEqual([]);
    await cell.run(3);
    const alert = only(cell.alerts());
    expect(alert.message.text).toContain('cn2 is down');
    expect(JSON.stringify(alert.message.blocks)).toContain('ECONNREFUSED 10.0.2.11:61001');
  });

  it('a CN with no CN peers is alerted as isolated', async () => {
    const cell = new Cell();
    await cell.run(6);
    cell.rpc.ok('cn2', cell.rpc.heightOf('cn2'), { cnPeers: 0 });
    await cell.run(15);
    expect(only(cell.alerts()).message.text).toContain('cn2 is isolated');
  });

  it('a standby that falls behind is alerted as standby-lagging, without a failover button', async () => {
    const cell = new Cell();
    await cell.run(6);
    cell.speed.set('cn1s', 1);
    await cell.run(30);
    const alert = only(cell.alerts());
    expect(alert.message.text).toContain('cn1s (standby) is lagging');
    expect(buttons(alert).map((b) => b.action_id)).toEqual([ALERT_ACTIONS.mute, ALERT_ACTIONS.acknowledge]);
  });

  it('recovery says how long it lasted in the thread and edits the parent to resolved, without buttons', async () => {
    const cell = new Cell();
    await cell.run(6);
    cell.speed.set('cn1', 0);
    await cell.run(30);
    const alert = only(cell.alerts());
    const { incident } = parseAlertActionValue(buttons(alert)[0]?.value ?? '') ?? { incident: '' };
    cell.speed.set('cn1', 3);
    cell.rpc.ok('cn1', cell.rpc.heightOf('pn1'), { cnPeers: 4 });
    await cell.run(240);
    const record = await cell.store.get('cn1');
    expect(record).toBeUndefined();
    const recovered = cell.thread(alert).at(-1) ?? '';
    const lasted = /Recovered after (\S+)/.exec(recovered)?.[1];
    expect(lasted).toMatch(/^\d+s$/);
    const resolved = cell.updatesOf(alert).at(-1) ?? '';
    expect(resolved).toContain(`Resolved after ${lasted}`);
    expect(resolved).not.toContain(ALERT_ACTIONS.startFailover);
    expect(incident).not.toBe('');
    expect(only(cell.alerts())).toBe(alert);
    expect((await cell.monitor.status()).nodes.find((n) => n.node === 'cn1')?.condition).toBe('healthy');
  });

  it('an incident that lasted minutes reads "recovered after 4m12s" style durations', async () => {
    const cell = new Cell();
    await cell.run(3);
    cell.rpc.fail('cn2');
    await cell.run(252);
    cell.rpc.ok('cn2', cell.rpc.heightOf('pn1'), { cnPeers: 4 });
    await cell.run(6);
    const alert = only(cell.alerts());
    // Down from the first failed probe (t=6) to the second good probe (t=261): 255 s.
    expect(cell.thread(alert).at(-1)).toContain('Recovered after 4m15s');
    expect(cell.updatesOf(alert).at(-1)).toContain('Resolved after 4m15s');
  });

  it('a lag hovering around the threshold opens one incident and never resolves and reopens it', async () => {
    const cell = new Cell();
    await cell.run(3);
    // cn1 alternates between 14 and 8 blocks behind, 15 s each, for five minutes.
    for (let t = 0; t < 300; t += 3) {
      await cell.clock.advance(3_000);
      cell.moveNodes();
      const lag = Math.floor(t / 15) % 2 === 0 ? 14 : 8;
      cell.rpc.ok('cn1', cell.rpc.heightOf('pn1') - lag, { cnPeers: 4 });
      await cell.monitor.tick();
    }
    const alert = only(cell.alerts());
    expect(alert.message.text).toContain('lagging');
    expect(cell.thread(alert).join('\n')).not.toContain('Recovered');
  });

  it('Acknowledge edits the parent at once, says who in the thread, and a repeat by the same person changes nothing', async () => {
    const cell = new Cell();
    await cell.run(6);
    cell.speed.set('cn1', 0);
    await cell.run(30);
    const alert = only(cell.alerts());
    await cell.monitor.acknowledge('cn1', 'U0AAA');
    await cell.run(3);
    expect(cell.updatesOf(alert).at(-1)).toContain('Acknowledged by <@U0AAA>');
    await cell.run(60);
    expect(cell.thread(alert).join('\n')).toContain(':eyes: Acknowledged by <@U0AAA>');
    const versionBefore = (await cell.store.get('cn1'))?.version;
    await cell.monitor.acknowledge('cn1', 'U0AAA');
    expect((await cell.store.get('cn1'))?.version).toBe(versionBefore);
    expect((await cell.store.get('cn1'))?.acknowledgedBy).toBe('U0AAA');
  });

  it('acknowledging a node without an open alert, or an unknown node, is a clear input error', async () => {
    const cell = new Cell();
    await cell.run(3);
    await expect(cell.monitor.acknowledge('cn1', 'U0AAA')).rejects.toThrow(/no open alert/);
    await expect(cell.monitor.acknowledge('cn9', 'U0AAA')).rejects.toBeInstanceOf(InputError);
    await expect(cell.monitor.mute('cn9', 60_000, 'U0AAA')).rejects.toThrow(/unknown node "cn9"/);
    await expect(cell.monitor.mute('cn1', 0, 'U0AAA')).rejects.toThrow(/positive duration/);
    await expect(cell.monitor.unmute('cn1', 'U0AAA')).rejects.toThrow(/not muted/);
  });

  it('a mute silences a node until it expires, and its end is said in the thread', async () => {
    const cell = new Cell();
    await cell.run(6);
    cell.speed.set('cn1', 1);
    await cell.run(30);
    const alert = only(cell.alerts());
    const { until } = await cell.monitor.mute('cn1', 30 * 60_000, 'U0AAA');
    expect(until).toBe(cell.clock.now() + 30 * 60_000);
    expect((await cell.monitor.status()).nodes.find((n) => n.node === 'cn1')?.mutedUntil).toBe(until);
    await cell.run(3);
    expect(cell.updatesOf(alert).at(-1)).toContain('Muted by <@U0AAA>');
    // Thirty minutes of a growing lag: only the mute notice, no lag updates.
    await cell.run(29 * 60);
    const muted = cell.thread(alert);
    expect(muted.at(-1)).toContain(':no_bell: Muted for 30m0s by <@U0AAA>');
    const beforeExpiry = muted.length;
    await cell.run(120);
    const thread = cell.thread(alert);
    expect(thread.slice(beforeExpiry).join('\n')).toContain('Mute by <@U0AAA> expired');
    expect(await cell.store.getMutes(['cn1'])).toEqual(new Map());
    // Alerts flow again: the lag keeps growing, so updates resume.
    await cell.run(120);
    expect(
      cell
        .thread(alert)
        .slice(beforeExpiry + 1)
        .join('\n'),
    ).toContain('Lag growing');
  });

  it('a node muted before it fails gets no alert until the mute ends, then one', async () => {
    const cell = new Cell();
    await cell.run(3);
    await cell.monitor.mute('cn2', 10 * 60_000, 'U0AAA');
    cell.rpc.fail('cn2');
    await cell.run(9 * 60);
    expect(cell.alerts()).toEqual([]);
    await cell.run(120);
    expect(only(cell.alerts()).message.text).toContain('cn2 is down');
  });

  it('unmute lets updates through again and says who unmuted', async () => {
    const cell = new Cell();
    await cell.run(6);
    cell.speed.set('cn1', 0);
    await cell.run(30);
    const alert = only(cell.alerts());
    await cell.monitor.mute('cn1', 60 * 60_000, 'U0AAA');
    await cell.run(63);
    await cell.monitor.unmute('cn1', 'U0BBB');
    await cell.run(63);
    const thread = cell.thread(alert).join('\n');
    expect(thread).toContain(':no_bell: Muted for 1h0m by <@U0AAA>');
    expect(thread.indexOf(':bell: Unmuted by <@U0BBB>')).toBeGreaterThan(thread.indexOf('Muted for'));
  });

  it('a CN role served by its standby after a failover is watched through the standby, under the role name', async () => {
    const cell = new Cell();
    await cell.state.setRole({ role: 'cn1', servedBy: 'cn1s', since: cell.clock.now(), runId: 'run-1' });
    cell.rpc.fail('cn1'); // the fenced old active
    await cell.run(30);
    expect(cell.alerts()).toEqual([]);
    const status = await cell.monitor.status();
    expect(status.nodes.map((n) => n.node)).toEqual(['cn1', 'cn2', 'pn1']);
    expect(status.nodes[0]).toMatchObject({
      node: 'cn1',
      role: 'cn',
      servedBy: 'cn1s',
      condition: 'healthy',
    });
    const probed = new Set(cell.rpc.calls.map((c) => c.node));
    expect(probed.has('cn1')).toBe(false);
    // The standby now serves as the CN: with no CN peers it is an isolated CN.
    cell.rpc.ok('cn1s', cell.rpc.heightOf('cn1s'), { cnPeers: 0 });
    await cell.run(15);
    expect(only(cell.alerts()).message.text).toContain('cn1 (served by cn1s) is isolated');
  });

  it('an open incident on a CN resolves when the failover brings its role back on the standby', async () => {
    const cell = new Cell();
    await cell.run(6);
    cell.rpc.fail('cn1');
    await cell.run(12);
    const alert = only(cell.alerts());
    await cell.state.setRole({ role: 'cn1', servedBy: 'cn1s', since: cell.clock.now(), runId: 'run-1' });
    await cell.run(6);
    expect(cell.thread(alert).at(-1)).toMatch(/Recovered after/);
  });

  it('closes the alert of a standby that now serves its CN, saying why, instead of leaving it open for ever', async () => {
    const cell = new Cell();
    await cell.run(6);
    const height = cell.rpc.heightOf('pn1');
    cell.rpc.fail('cn1s'); // stopped for the key swap
    await cell.run(12);
    const alert = only(cell.alerts());
    expect(alert.message.text).toContain('cn1s');
    await cell.state.setRole({ role: 'cn1', servedBy: 'cn1s', since: cell.clock.now(), runId: 'run-1' });
    cell.rpc.ok('cn1s', height);
    await cell.run(6);
    expect(cell.thread(alert).at(-1)).toContain('cn1s now serves cn1 and is watched as cn1');
    await cell.run(6);
    expect(cell.thread(alert).filter((line) => line.includes('now serves'))).toHaveLength(1);
  });

  it('runs the readiness check on schedule, and a check that fails to start is an alert until one passes', async () => {
    const cell = new Cell(monitorConfig({ monitor: { checkInterval: '1m' } }));
    cell.checkResult = async () => {
      throw new Error('engine busy');
    };
    await cell.run(57);
    expect(cell.checks).toEqual([]);
    await cell.run(9);
    expect(cell.checks.sort()).toEqual(['cn1', 'cn2']);
    const alerts = cell.alerts();
    expect(alerts.map((a) => a.message.text).sort()).toEqual([
      'cn1 failed its readiness check',
      'cn2 failed its readiness check',
    ]);
    expect(JSON.stringify(alerts[0]?.message.blocks)).toContain('engine busy');
    const cn1Alert = alerts.find((a) => a.message.text.startsWith('cn1')) as Post;
    await cell.monitor.reportCheckFailure('cn1', 'standby runs the same nodekey');
    await cell.run(60);
    expect(cell.thread(cn1Alert).join('\n')).toContain('standby runs the same nodekey');
    await cell.monitor.reportCheckSuccess('cn1');
    expect(cell.thread(cn1Alert).at(-1)).toMatch(/Recovered after/);
    expect(await cell.store.get(checkSubject('cn1'))).toBeUndefined();
  });

  it('a restarted monitor continues the same thread instead of posting a new alert', async () => {
    const clock = new ManualClock();
    const store = createMemoryIncidentStore({ clock });
    const first = new Cell(monitorConfig(), { store, clock });
    await first.run(6);
    first.speed.set('cn1', 0);
    await first.run(30);
    const alert = only(first.alerts());
    await first.monitor.stop();

    const second = new Cell(monitorConfig(), { store, clock });
    second.rpc.nodes.clear();
    for (const [name, state] of first.rpc.nodes) second.rpc.nodes.set(name, state);
    await second.run(30);
    expect(second.alerts()).toEqual([]);
    second.speed.set('cn1', 3);
    second.rpc.ok('cn1', second.rpc.heightOf('pn1'), { cnPeers: 4 });
    second.chat.calls.length = 0;
    await second.run(30);
    const recovered = second.chat.posts().find((p) => p.message.text.includes('Recovered'));
    expect(recovered?.message.threadTs).toBe(alert.ref.ts);
  });

  it('two monitors sharing one store: only the lease holder probes and posts', async () => {
    const clock = new ManualClock();
    const store = createMemoryIncidentStore({ clock });
    const a = new Cell(monitorConfig(), { store, clock, extra: { replicaId: 'a' } });
    const b = new Cell(monitorConfig(), { store, clock, extra: { replicaId: 'b' } });
    for (const cell of [a, b]) cell.speed.set('cn1', 0);
    for (let i = 0; i < 10; i++) {
      await clock.advance(3_000);
      a.moveNodes();
      b.moveNodes();
      await Promise.all([a.monitor.tick(), b.monitor.tick()]);
    }
    expect([a.monitor.isLeader(), b.monitor.isLeader()].filter(Boolean)).toHaveLength(1);
    expect(a.alerts().length + b.alerts().length).toBe(1);
    expect(Math.min(a.rpc.calls.length, b.rpc.calls.length)).toBe(0);
    // The follower answers status from the leader's saved view.
    const follower = a.monitor.isLeader() ? b : a;
    expect((await follower.monitor.status()).nodes.find((n) => n.node === 'cn1')?.condition).toBe('stalled');
  });

  it('exports heights, lag, probe latency and errors, conditions and alert states', async () => {
    const cell = new Cell();
    await cell.run(6);
    cell.rpc.fail('cn2');
    cell.speed.set('cn1', 0);
    await cell.run(30);
    cell.metrics.setRunStates({ running: 1 });
    const text = await cell.metrics.render();
    expect(text).toMatch(/cellops_node_height\{node="pn1"\} 1036/);
    expect(text).toMatch(/cellops_node_lag_blocks\{node="cn1"\} 30/);
    expect(text).toMatch(/cellops_probe_duration_seconds_count\{node="cn1"\} 12/);
    expect(text).toMatch(/cellops_probe_errors_total\{node="cn2"\} 10/);
    expect(text).toMatch(/cellops_node_condition\{node="cn1",condition="stalled"\} 1/);
    expect(text).toMatch(/cellops_alert_state\{node="cn2",state="open"\} 1/);
    expect(text).toMatch(/cellops_runs\{state="running"\} 1/);
  });

  it('saves the view for other replicas at once when a condition changes, and otherwise every viewSaveIntervalMs', async () => {
    const clock = new ManualClock();
    const inner = createMemoryIncidentStore({ clock });
    const savedAt: number[] = [];
    const store: IncidentStore = {
      ...inner,
      saveView: async (view) => {
        savedAt.push(view.at);
        await inner.saveView(view);
      },
    };
    const cell = new Cell(monitorConfig(), {
      store,
      clock,
      extra: { options: { viewSaveIntervalMs: 9_000 } },
    });
    await cell.run(30); // ticks at 3 s … 30 s; every node turns healthy at the first one
    const start = clock.now() - 30_000;
    expect(savedAt.map((at) => (at - start) / 1_000)).toEqual([3, 12, 21, 30]);

    cell.speed.set('cn1', 0);
    let before = (await cell.monitor.status()).nodes.find((n) => n.node === 'cn1')?.condition;
    const changedAt: number[] = [];
    for (let i = 0; i < 10; i++) {
      await cell.run(3);
      const now = (await cell.monitor.status()).nodes.find((n) => n.node === 'cn1')?.condition;
      if (now !== before) changedAt.push(clock.now());
      before = now;
    }
    expect(before).toBe('stalled');
    expect(changedAt.length).toBeGreaterThan(0);
    for (const at of changedAt) expect(savedAt).toContain(at);
    expect((await cell.store.loadView())?.nodes.find((n) => n.node === 'cn1')?.condition).toBe('stalled');
  });

  it('start() ticks every interval until stop()', async () => {
    const cell = new Cell();
    cell.monitor.start();
    await cell.clock.advance(0);
    await cell.clock.advance(9_000);
    await cell.monitor.stop();
    const ticks = cell.rpc.calls.filter((c) => c.node === 'pn1').length;
    expect(ticks).toBe(4);
    await cell.clock.advance(9_000);
    expect(cell.rpc.calls.filter((c) => c.node === 'pn1').length).toBe(4);
    expect(cell.monitor.isLeader()).toBe(false);
  });
});
