import { describe, expect, it } from 'vitest';
import { createProbeScheduler } from '../../../src/monitor/probe-scheduler.js';
import type { NodeEndpoint } from '../../../src/ports/node-rpc.js';
import { FakeNodeRpc } from '../../fakes/fake-node-rpc.js';
import { ManualClock, flushPromises } from '../../fakes/manual-clock.js';

function endpoint(name: string): NodeEndpoint {
  return {
    name,
    host: { name, address: '127.0.0.1' },
    metricsUrl: `http://127.0.0.1:61001/${name}`,
    dataDir: '/var/kcnd/data',
    binary: 'kcn',
  };
}

describe('probe scheduler', () => {
  it('probes every target once per round and reports heights and failures', async () => {
    const clock = new ManualClock();
    const rpc = new FakeNodeRpc().ok('a', 10, { cnPeers: 2 }).fail('b', 'connect ECONNREFUSED');
    const scheduler = createProbeScheduler({ rpc, clock, timeoutMs: 1_500 });
    const outcomes = await scheduler.round([endpoint('a'), endpoint('b')]);
    expect(outcomes.map((o) => o.kind)).toEqual(['ok', 'failed']);
    expect(outcomes[0]).toMatchObject({ target: 'a', health: { height: 10, cnPeers: 2 } });
    expect(outcomes[1]).toMatchObject({ target: 'b', error: 'connect ECONNREFUSED' });
    expect(rpc.calls).toEqual([
      { node: 'a', timeoutMs: 1_500 },
      { node: 'b', timeoutMs: 1_500 },
    ]);
  });

  it('never runs more probes at once than its concurrency', async () => {
    const clock = new ManualClock();
    const rpc = new FakeNodeRpc();
    const targets = Array.from({ length: 50 }, (_, i) => endpoint(`n${i}`));
    for (const t of targets) rpc.ok(t.name, 1);
    rpc.gate = () => new Promise<void>((resolve) => setImmediate(resolve));
    const scheduler = createProbeScheduler({ rpc, clock, timeoutMs: 1_500, concurrency: 4 });
    const outcomes = await scheduler.round(targets);
    expect(outcomes.filter((o) => o.kind === 'ok')).toHaveLength(50);
    expect(rpc.maxConcurrent).toBeLessThanOrEqual(4);
    expect(rpc.maxConcurrent).toBeGreaterThan(1);
  });

  it('a probe that does not answer fails with a timeout shorter than the interval and is aborted', async () => {
    const clock = new ManualClock();
    const rpc = new FakeNodeRpc().hang('slow').ok('fast', 5);
    const scheduler = createProbeScheduler({ rpc, clock, timeoutMs: 1_500 });
    const round = scheduler.round([endpoint('slow'), endpoint('fast')]);
    await flushPromises();
    expect(scheduler.inFlight()).toEqual(new Set(['slow']));
    await clock.advance(1_500);
    const outcomes = await round;
    expect(outcomes[0]).toMatchObject({ kind: 'failed', error: 'probe of slow timed out after 1500ms' });
    expect(outcomes[1]).toMatchObject({ kind: 'ok' });
    expect(rpc.running).toBe(0);
    expect(scheduler.inFlight().size).toBe(0);
  });

  it('a node whose previous probe is still running is skipped, not probed twice', async () => {
    const clock = new ManualClock();
    const rpc = new FakeNodeRpc().hang('slow').ok('fast', 5);
    const scheduler = createProbeScheduler({ rpc, clock, timeoutMs: 1_500 });
    const first = scheduler.round([endpoint('slow')]);
    await flushPromises();
    const second = await scheduler.round([endpoint('slow'), endpoint('fast')]);
    expect(second.map((o) => o.kind)).toEqual(['skipped', 'ok']);
    expect(second[0]).toMatchObject({ reason: 'in-flight' });
    expect(rpc.calls.filter((c) => c.node === 'slow')).toHaveLength(1);
    await clock.advance(1_500);
    await first;
  });

  it('probes that cannot start within the start window are skipped, so a round never outlasts it plus one timeout', async () => {
    const clock = new ManualClock();
    const rpc = new FakeNodeRpc().hang('h1').hang('h2').ok('late', 1);
    const scheduler = createProbeScheduler({
      rpc,
      clock,
      timeoutMs: 1_500,
      startWithinMs: 1_000,
      concurrency: 2,
    });
    const round = scheduler.round([endpoint('h1'), endpoint('h2'), endpoint('late')]);
    await clock.advance(1_500);
    const outcomes = await round;
    expect(outcomes.map((o) => o.kind)).toEqual(['failed', 'failed', 'skipped']);
    expect(outcomes[2]).toMatchObject({ reason: 'no-slot' });
    expect(rpc.calls.map((c) => c.node)).toEqual(['h1', 'h2']);
  });

  it('abortAll stops running probes', async () => {
    const clock = new ManualClock();
    const rpc = new FakeNodeRpc().hang('slow');
    const scheduler = createProbeScheduler({ rpc, clock, timeoutMs: 60_000 });
    const round = scheduler.round([endpoint('slow')]);
    await flushPromises();
    scheduler.abortAll();
    const [outcome] = await round;
    expect(outcome?.kind).toBe('failed');
  });
});
