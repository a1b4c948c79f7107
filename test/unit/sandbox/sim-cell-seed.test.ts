import { describe, expect, it } from 'vitest';
import {
  createSandboxCell,
  generateSandboxKeys,
  recordSandboxState,
  SANDBOX_CN1_BACKUP,
  SANDBOX_CN2_BACKUP,
  SANDBOX_VIP,
  sandboxConfig,
  sandboxConfigText,
  seedSandboxCell,
} from '../../../src/sandbox/sim-cell-seed.js';
import { ConfigError } from '../../../src/errors.js';
import { createMemoryCellState } from '../../../src/infra/memory-cell-state.js';
import { nodeAddressFromKey, nodekeyChecksum } from '../../../src/runbooks/nodekey.js';
import { standbyFailoverSteps } from '../../../src/runbooks/failover-standby.js';
import type { FailoverParams } from '../../../src/runbooks/failover-params.js';
import { runSteps } from '../../support/run-steps.js';
import { ManualClock } from '../../fakes/manual-clock.js';

const PREFIX = 'cellops:sandbox:test:';

describe('the sandbox cell configuration', () => {
  it('is accepted by the same parser as a user cellops.yaml, with four-eyes on and the sandbox users', () => {
    const config = sandboxConfig({ redisPrefix: PREFIX });
    expect(config.slack.fourEyes).toBe(true);
    expect(config.slack.operators.users).toEqual(['U0ALICE']);
    expect(config.slack.approvers).toEqual({ users: ['U0BOB'], usergroups: ['S0ONCALL'] });
    expect(config.redisPrefix).toBe(PREFIX);
    expect(config.nodes.cn1?.failover?.mode).toBe('standby');
    expect(config.nodes.cn2?.failover?.mode).toBe('snapshot');
    expect(Object.keys(config.nodes).sort()).toEqual(['cn1', 'cn1s', 'cn2', 'pn1', 'pn2']);
  });

  it('takes monitor settings as YAML durations and rejects malformed ones like a user file', () => {
    const config = sandboxConfig({ redisPrefix: PREFIX, monitor: { interval: '500ms', stall: '2s' } });
    expect(config.monitor.intervalMs).toBe(500);
    expect(config.monitor.stallMs).toBe(2_000);
    expect(config.monitor.lagBlocks).toBe(10);
    expect(() => sandboxConfig({ redisPrefix: PREFIX, monitor: { interval: 'soon' } })).toThrow(ConfigError);
  });
});

describe('the seeded sandbox cell', () => {
  it('starts healthy: every daemon running, cn1 holding the VIP, heights following the chain', async () => {
    const clock = new ManualClock();
    const keys = generateSandboxKeys();
    const { sim } = seedSandboxCell({ clock, keys });
    for (const name of ['cn1', 'cn1s', 'cn2', 'pn1', 'pn2']) expect(sim.host(name).isRunning()).toBe(true);
    expect(sim.host('cn1').devices.get('eth0')?.has(SANDBOX_VIP)).toBe(true);
    expect(sim.host('cn1s').devices.get('eth0')?.has(SANDBOX_VIP)).toBe(false);
    const before = sim.host('pn1').height();
    await clock.advance(5_000);
    expect(sim.host('pn1').height()).toBe(before + 5);
    expect(sim.host('cn1').height()).toBe(sim.chainHeight());
  });

  it('generates distinct random nodekeys each start and never writes them into the configuration', () => {
    const a = generateSandboxKeys();
    const b = generateSandboxKeys();
    const all = Object.values(a);
    expect(new Set(all).size).toBe(all.length);
    expect(a.cn1).not.toBe(b.cn1);
    const text = sandboxConfigText({ redisPrefix: PREFIX });
    for (const key of all) expect(text).not.toContain(key);
  });

  it('keeps the nodekey backups where the failovers look for them', () => {
    const keys = generateSandboxKeys();
    const { sim } = seedSandboxCell({ clock: new ManualClock(), keys });
    expect(sim.host('cn1s').read(SANDBOX_CN1_BACKUP)).toBe(keys.cn1);
    expect(sim.host('pn1').read(SANDBOX_CN2_BACKUP)).toBe(keys.cn2);
  });

  it('has cn2 in cloud style: a running instance holding the Elastic IP, and a recorded image', async () => {
    const clock = new ManualClock();
    const keys = generateSandboxKeys();
    const config = sandboxConfig({ redisPrefix: PREFIX });
    const { cloud } = seedSandboxCell({ clock, keys });
    const cn2 = config.nodes.cn2;
    const failover = cn2?.failover;
    if (!cn2?.instanceId || failover?.ip.method !== 'eip') throw new Error('cn2 is not configured for EC2');
    expect((await cloud.describeInstance(cn2.instanceId))?.state).toBe('running');
    expect((await cloud.describeAddress(failover.ip.allocationId))?.instanceId).toBe(cn2.instanceId);
    const state = createMemoryCellState();
    await recordSandboxState(state, keys, clock.now());
    const image = await state.image('cn2');
    expect(image).toBeDefined();
    expect((await cloud.describeImage(image?.imageId ?? ''))?.state).toBe('available');
  });

  it('records backups by checksum and address, never the key', async () => {
    const keys = generateSandboxKeys();
    const state = createMemoryCellState();
    await recordSandboxState(state, keys, 1_000);
    const backup = await state.nodekeyBackup('cn1');
    expect(backup).toMatchObject({
      host: 'cn1s',
      path: SANDBOX_CN1_BACKUP,
      checksum: nodekeyChecksum(keys.cn1),
      nodeAddress: nodeAddressFromKey(keys.cn1),
    });
    expect(JSON.stringify(backup)).not.toContain(keys.cn1);
    expect(await state.role('cn1')).toMatchObject({ servedBy: 'cn1' });
  });

  it('passes the standby failover of cn1 once cn1 has failed', async () => {
    const clock = new ManualClock();
    const keys = generateSandboxKeys();
    const config = sandboxConfig({ redisPrefix: PREFIX });
    const cell = createSandboxCell({ clock, keys });
    const state = createMemoryCellState();
    await recordSandboxState(state, keys, clock.now());
    cell.current().sim.host('cn1').stopDaemon();
    // The verify step polls on the clock; move it along while the steps run.
    const ticker = setInterval(() => void clock.advance(1_000), 1);
    try {
      const result = await runSteps<FailoverParams>(standbyFailoverSteps(), {
        params: { cn: 'cn1', force: false },
        config,
        ports: { shell: cell.shell, rpc: cell.rpc, cloud: cell.cloud, clock, state },
        runId: 'seedtest',
      });
      expect(result.error).toBeUndefined();
      expect(result.status).toBe('succeeded');
    } finally {
      clearInterval(ticker);
    }
    const sim = cell.current().sim;
    expect(sim.host('cn1s').loadedAddress()).toBe(nodeAddressFromKey(keys.cn1));
    expect(sim.violations).toEqual([]);
    expect(await state.role('cn1')).toMatchObject({ servedBy: 'cn1s' });
  });

  it('reset puts every host back with the same keys while the chain height carries on', async () => {
    const clock = new ManualClock();
    const keys = generateSandboxKeys();
    const cell = createSandboxCell({ clock, keys });
    const before = cell.current();
    before.sim.host('cn1').stopDaemon();
    await clock.advance(10_000);
    const height = before.sim.chainHeight();

    cell.reset();

    const after = cell.current();
    expect(after).not.toBe(before);
    expect(after.sim.host('cn1').isRunning()).toBe(true);
    expect(after.sim.host('cn1').loadedAddress()).toBe(nodeAddressFromKey(keys.cn1));
    expect(after.sim.chainHeight()).toBe(height);
  });

  it('hands out ports that follow the cell across a reset', async () => {
    const clock = new ManualClock();
    const cell = createSandboxCell({ clock, keys: generateSandboxKeys() });
    const config = sandboxConfig({ redisPrefix: PREFIX });
    const endpoint = config.nodes.cn1?.endpoint;
    if (!endpoint) throw new Error('no cn1');
    cell.current().sim.host('cn1').stopDaemon();
    await expect(cell.rpc.health(endpoint, { timeoutMs: 1_000 })).rejects.toThrow(/does not answer/);
    cell.reset();
    await expect(cell.rpc.health(endpoint, { timeoutMs: 1_000 })).resolves.toMatchObject({
      height: cell.current().sim.chainHeight(),
    });
  });
});
