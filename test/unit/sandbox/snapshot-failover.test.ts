import { afterEach, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../../src/sandbox/start-sandbox.js';
import { SANDBOX_KCND_CONF } from '../../../src/sandbox/sim-cell-seed.js';
import { ALERT_ACTIONS } from '../../../src/views/action-ids.js';
import {
  ALICE,
  BOB,
  approveUntilDone,
  buttons,
  startFastSandbox,
  until as pollFor,
} from '../../support/sandbox-harness.js';

const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 30_000) =>
  pollFor(what, probe, ms);

let sandbox: Sandbox | undefined;

afterEach(async () => {
  await sandbox?.stop();
  sandbox = undefined;
});

/** A sandbox on real timers with EC2 taking tens of milliseconds instead of tens of seconds. */
async function start(): Promise<Sandbox> {
  sandbox = await startFastSandbox({
    cloudDelays: {
      instanceStart: 100,
      instanceStop: 50,
      snapshot: 150,
      volumeCreate: 30,
      volumeAttach: 30,
      image: 50,
      consoleKeys: 50,
    },
    cloudPollMs: 20,
  });
  return sandbox;
}

describe("the sandbox's snapshot failover of cn2", () => {
  it('replaces cn2 with an instance from its image and pn1 chaindata, fences the old one, moves the EIP', async () => {
    const sb = await start();
    const before = sb.cell.current();
    const cn2Instance = sb.config.nodes.cn2?.instanceId ?? '';
    const cn2Address = before.sim.host('cn2').loadedAddress() ?? '';
    await sb.handlers.fault('cn2', 'stop', ALICE);

    await sb.handlers.command('/failover cn2', ALICE);
    const started = await until('the run', async () => (await sb.engine.list(1))[0]);
    const run = await approveUntilDone(sb, started.id);

    expect(run.error).toBeUndefined();
    expect(run.status).toBe('succeeded');
    expect(run.steps.flatMap((s) => s.approvals).every((a) => a.user === BOB)).toBe(true);
    const { sim, cloud } = sb.cell.current();
    const inventory = cloud.inventory();
    const launched = inventory.instances.find((i) => i.tags['cellops:run-id'] === run.id);
    if (!launched?.privateIp) throw new Error('no instance was launched');
    // The role is served by the new instance, at its private IP.
    const role = await sb.state.role('cn2');
    expect(role).toMatchObject({ role: 'cn2', servedBy: launched.instanceId, address: launched.privateIp });
    // cn2's old instance is stopped and its kcnd with it; the Elastic IP is on the replacement.
    expect(inventory.instances.find((i) => i.instanceId === cn2Instance)?.state).toBe('stopped');
    expect(sim.host('cn2').isPoweredOn()).toBe(false);
    expect(sim.host('cn2').isRunning()).toBe(false);
    expect(inventory.addresses[0]?.instanceId).toBe(launched.instanceId);
    // The replacement runs kcnd as cn2, from pn1's chaindata and nothing else of pn1.
    const replacement = sim.host(launched.instanceId);
    expect(replacement.address).toBe(launched.privateIp);
    expect(replacement.isRunning()).toBe(true);
    expect(replacement.loadedAddress()).toBe(cn2Address);
    expect(replacement.read('/var/kcnd/data/klay/chaindata/000001.ldb')).toBe('sandbox blocks');
    expect(replacement.read('/var/kcnd/data/static-nodes.json')).toBeUndefined();
    expect(replacement.read('/var/kcnd/data/logs/kpnd.out')).toBeUndefined();
    expect(replacement.files.get('/var/kcnd/data/klay/nodekey')?.mode).toBe(0o600);
    expect(replacement.read(SANDBOX_KCND_CONF)).toMatch(/^DATA_DIR=\/var\/kcnd\/data$/m);
    expect(replacement.mounts.get('/var/kcnd/data')).toBe(
      inventory.volumes.find((v) => v.attachment?.instanceId === launched.instanceId && v.snapshotId)
        ?.volumeId,
    );
    // pn1 serves again; nobody ran cn2's identity twice, and the replacement signs blocks.
    expect(sim.host('pn1').isRunning()).toBe(true);
    expect(sim.violations).toEqual([]);
    await until('the replacement to sign', async () => {
      const endpoint = {
        name: launched.instanceId,
        host: { name: launched.instanceId, address: launched.privateIp ?? '' },
        metricsUrl: `http://${launched.privateIp}:61001/metrics`,
        rpcUrl: `http://${launched.privateIp}:8551`,
        dataDir: '/var/kcnd/data',
        binary: 'kcn' as const,
      };
      const blocks = await sb.cell.rpc.recentBlocks(endpoint, 5, { timeoutMs: 1000 });
      return blocks.some((b) => b.committers.includes(cn2Address)) ? true : undefined;
    });
  });

  it("runs from cn2's alert button, and the alert resolves once the replacement serves cn2", async () => {
    const sb = await start();
    await sb.handlers.fault('cn2', 'stop', ALICE);
    const alert = await until('the alert', () =>
      sb.chat
        .messages()
        .find(
          (m) =>
            !m.threadTs &&
            m.text.includes('cn2') &&
            buttons(m).some((b) => b.action_id === ALERT_ACTIONS.startFailover),
        ),
    );
    const startButton = buttons(alert).find((b) => b.action_id === ALERT_ACTIONS.startFailover);
    await sb.handlers.action({
      actionId: ALERT_ACTIONS.startFailover,
      value: startButton?.value ?? '',
      user: ALICE,
      messageTs: alert.ts,
      threadTs: alert.ts,
    });
    const started = await until('the run', async () => (await sb.engine.list(1))[0]);
    expect(started.runbook).toBe('failover');
    const run = await approveUntilDone(sb, started.id);
    expect(run.error).toBeUndefined();
    expect(run.status).toBe('succeeded');

    const resolved = await until('the alert to resolve', () => {
      const parent = sb.chat.messages().find((m) => m.ts === alert.ts);
      return parent?.edited && parent.text.startsWith('Resolved') ? parent : undefined;
    });
    expect(buttons(resolved)).toEqual([]);
    expect(sb.cell.current().sim.violations).toEqual([]);
  });

  it('puts cn2 back on its own instance with its Elastic IP on Reset cell, and fails it over again', async () => {
    const sb = await start();
    const cn2Instance = sb.config.nodes.cn2?.instanceId ?? '';
    const seededImage = (await sb.state.image('cn2'))?.imageId;
    // A fresh image of cn2 is recorded; it lives in the simulated EC2 that the reset replaces.
    await sb.handlers.command('/cell image cn2', ALICE);
    const image = await approveUntilDone(
      sb,
      (await until('a run', async () => (await sb.engine.list(1))[0])).id,
    );
    expect(image.status).toBe('succeeded');
    expect((await sb.state.image('cn2'))?.imageId).not.toBe(seededImage);
    await sb.handlers.fault('cn2', 'stop', ALICE);
    await sb.handlers.command('/failover cn2', ALICE);
    const failover = await until('a failover run', async () => {
      const [latest] = await sb.engine.list(1);
      return latest?.id !== image.id ? latest : undefined;
    });
    const first = await approveUntilDone(sb, failover.id);
    expect(first.status).toBe('succeeded');

    await sb.handlers.fault('cell', 'reset', ALICE);
    const { sim, cloud } = sb.cell.current();
    const inventory = cloud.inventory();
    expect(inventory.instances.map((i) => [i.instanceId, i.state])).toContainEqual([cn2Instance, 'running']);
    expect(inventory.instances.some((i) => i.tags['cellops:run-id'] !== undefined)).toBe(false);
    expect(inventory.addresses[0]?.instanceId).toBe(cn2Instance);
    expect(sim.host('cn2').isRunning()).toBe(true);
    expect(await sb.state.role('cn2')).toMatchObject({ role: 'cn2', servedBy: 'cn2' });
    expect((await sb.state.role('cn2'))?.instanceId).toBeUndefined();
    // The image recorded is one the new EC2 has.
    const recorded = (await sb.state.image('cn2'))?.imageId;
    expect(recorded).toBe(seededImage);
    expect(inventory.images.map((i) => i.imageId)).toContain(recorded);

    await sb.handlers.fault('cn2', 'stop', ALICE);
    await sb.handlers.command('/failover cn2', ALICE);
    const second = await until('a second failover run', async () => {
      const [latest] = await sb.engine.list(1);
      return latest?.id !== first.id ? latest : undefined;
    });
    const done = await approveUntilDone(sb, second.id);
    expect(done.error).toBeUndefined();
    expect(done.status).toBe('succeeded');
    expect(sb.cell.current().sim.violations).toEqual([]);
  });

  it('fails over a replacement that failed in turn, fencing it at its own address', async () => {
    const sb = await start();
    await sb.handlers.fault('cn2', 'stop', ALICE);
    await sb.handlers.command('/failover cn2', ALICE);
    const first = await approveUntilDone(
      sb,
      (await until('a run', async () => (await sb.engine.list(1))[0])).id,
    );
    expect(first.status).toBe('succeeded');
    const firstReplacement = (await sb.state.role('cn2'))?.instanceId ?? '';
    // The replacement's kcnd dies too.
    sb.cell.current().sim.host(firstReplacement).stopDaemon();

    await sb.handlers.command('/failover cn2', ALICE);
    const second = await until('a second failover run', async () => {
      const [latest] = await sb.engine.list(1);
      return latest?.id !== first.id ? latest : undefined;
    });
    const done = await approveUntilDone(sb, second.id);
    expect(done.error).toBeUndefined();
    expect(done.status).toBe('succeeded');
    const { sim, cloud } = sb.cell.current();
    const role = await sb.state.role('cn2');
    expect(role?.instanceId).not.toBe(firstReplacement);
    const inventory = cloud.inventory();
    expect(inventory.instances.find((i) => i.instanceId === firstReplacement)?.state).toBe('stopped');
    expect(inventory.addresses[0]?.instanceId).toBe(role?.instanceId);
    // Fenced over SSH at its own address: its nodekey was moved aside before its instance stopped.
    const fenced = sim.host(firstReplacement);
    expect(fenced.read('/var/kcnd/data/klay/nodekey')).toBeUndefined();
    expect(fenced.read(`/var/kcnd/data/klay/nodekey.cellops-${second.id}`)).toMatch(/^[0-9a-f]{64}$/);
    expect(sim.host(role?.instanceId ?? '').isRunning()).toBe(true);
    expect(sim.violations).toEqual([]);
  });
});
