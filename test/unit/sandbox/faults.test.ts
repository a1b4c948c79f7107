import { describe, expect, it } from 'vitest';
import { applyFault, isSandboxFault } from '../../../src/sandbox/faults.js';
import { generateSandboxKeys, sandboxConfig, seedSandboxCell } from '../../../src/sandbox/sim-cell-seed.js';
import { InputError } from '../../../src/errors.js';
import type { NodeEndpoint } from '../../../src/ports/node-rpc.js';
import { ManualClock } from '../../fakes/manual-clock.js';

const config = sandboxConfig({ redisPrefix: 'cellops:sandbox:faults:' });
const PROBE = { timeoutMs: 1_000 };

function endpoint(name: string): NodeEndpoint {
  const node = config.nodes[name];
  if (!node) throw new Error(`no node ${name}`);
  return node.endpoint;
}

function setup() {
  const clock = new ManualClock();
  const { sim } = seedSandboxCell({ clock, keys: generateSandboxKeys() });
  return { clock, sim };
}

describe('sandbox faults', () => {
  it('stop: cn1 answers no probe until it is brought back', async () => {
    const { sim } = setup();
    const outcome = applyFault(sim, 'cn1', 'stop');
    expect(outcome.changed).toBe(true);
    await expect(sim.rpc.health(endpoint('cn1'), PROBE)).rejects.toThrow(/does not answer/);

    expect(applyFault(sim, 'cn1', 'heal').changed).toBe(true);
    await expect(sim.rpc.health(endpoint('cn1'), PROBE)).resolves.toMatchObject({
      height: sim.chainHeight(),
    });
  });

  it('stall: cn1 keeps answering while its height stays put and the PNs move on', async () => {
    const { sim, clock } = setup();
    applyFault(sim, 'cn1', 'stall');
    const stalledAt = (await sim.rpc.health(endpoint('cn1'), PROBE)).height;
    await clock.advance(20_000);
    expect((await sim.rpc.health(endpoint('cn1'), PROBE)).height).toBe(stalledAt);
    expect((await sim.rpc.health(endpoint('pn1'), PROBE)).height).toBe(stalledAt + 20);

    applyFault(sim, 'cn1', 'heal');
    expect((await sim.rpc.health(endpoint('cn1'), PROBE)).height).toBe(sim.chainHeight());
  });

  it('isolate: cn1 reports 0 CN peers and the other CNs stop counting it, while its height goes on', async () => {
    const { sim, clock } = setup();
    const peersBefore = (await sim.rpc.health(endpoint('cn1'), PROBE)).cnPeers ?? 0;
    const cn2Before = (await sim.rpc.health(endpoint('cn2'), PROBE)).cnPeers ?? 0;
    expect(peersBefore).toBeGreaterThan(0);

    applyFault(sim, 'cn1', 'isolate');
    await clock.advance(10_000);
    const cut = await sim.rpc.health(endpoint('cn1'), PROBE);
    expect(cut.cnPeers).toBe(0);
    expect(cut.height).toBe(sim.chainHeight());
    expect((await sim.rpc.health(endpoint('cn2'), PROBE)).cnPeers).toBe(cn2Before - 1);

    applyFault(sim, 'cn1', 'heal');
    expect((await sim.rpc.health(endpoint('cn1'), PROBE)).cnPeers).toBe(peersBefore);
  });

  it('an isolated CN signs no blocks until it is brought back', async () => {
    const { sim, clock } = setup();
    const address = sim.host('cn1').loadedAddress() ?? '';
    applyFault(sim, 'cn1', 'isolate');
    await clock.advance(5_000);
    const cut = await sim.rpc.recentBlocks(endpoint('pn1'), 3, PROBE);
    expect(cut.flatMap((b) => b.committers)).not.toContain(address);

    applyFault(sim, 'cn1', 'heal');
    await clock.advance(5_000);
    const back = await sim.rpc.recentBlocks(endpoint('pn1'), 3, PROBE);
    expect(back.flatMap((b) => b.committers)).toContain(address);
  });

  it('a second identical fault changes nothing and says so', () => {
    const { sim } = setup();
    applyFault(sim, 'cn1', 'stop');
    expect(applyFault(sim, 'cn1', 'stop')).toMatchObject({ changed: false });
    expect(applyFault(sim, 'cn1', 'stall').changed).toBe(false);
    expect(applyFault(sim, 'cn2', 'heal')).toMatchObject({ changed: false });
  });

  it('does not bring back a CN whose nodekey a failover moved aside: only a reset does', () => {
    const { sim } = setup();
    const cn1 = sim.host('cn1');
    cn1.stopDaemon();
    cn1.files.delete(`${cn1.dataDir}/klay/nodekey`);

    const outcome = applyFault(sim, 'cn1', 'heal');

    expect(cn1.isRunning()).toBe(false);
    expect(outcome.text).toMatch(/Reset cell/);
    expect(sim.violations).toEqual([]);
  });

  it('does not bring back a CN whose EC2 instance a failover stopped: only a reset does', async () => {
    const clock = new ManualClock();
    const { sim, cloud } = seedSandboxCell({ clock, keys: generateSandboxKeys() });
    await cloud.stopInstance(config.nodes.cn2?.instanceId ?? '');

    const outcome = applyFault(sim, 'cn2', 'heal');

    expect(sim.host('cn2').isRunning()).toBe(false);
    expect(outcome.text).toMatch(/instance is stopped.*Reset cell/);
    expect(outcome.changed).toBe(false);
  });

  it('refuses unknown nodes and knows its fault names', () => {
    const { sim } = setup();
    expect(() => applyFault(sim, 'cn9', 'stop')).toThrow(InputError);
    expect(isSandboxFault('stall')).toBe(true);
    expect(isSandboxFault('reboot')).toBe(false);
  });
});
