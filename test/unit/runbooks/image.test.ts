import { describe, expect, it } from 'vitest';
import { ExternalError, SafetyGateError } from '../../../src/errors.js';
import { createMemoryCellState } from '../../../src/infra/memory-cell-state.js';
import type { RunbookPorts } from '../../../src/runbooks/types.js';
import { imageRunbook, imageSteps } from '../../../src/runbooks/image.js';
import { imageName } from '../../../src/runbooks/run-resources.js';
import { createSimCloud, type SimInstanceSeed } from '../../../src/sandbox/sim-cloud.js';
import { FakeShell } from '../../fakes/fake-shell.js';
import { FakeNodeRpc } from '../../fakes/fake-node-rpc.js';
import { createJumpClock, runSteps } from '../../support/run-steps.js';
import { IDS, snapshotConfig } from '../../support/snapshot-fixture.js';

const PARAMS = { cn: 'cn2' };
const KCN_SHA = 'a1'.repeat(32);
const CONF_SHA = 'c0'.repeat(32);

function setup(
  volumes: SimInstanceSeed['volumes'] = [
    { volumeId: IDS.cn2Root, device: '/dev/xvda' },
    { volumeId: IDS.cn2Data, device: '/dev/sdf' },
  ],
  more: readonly SimInstanceSeed[] = [],
) {
  const clock = createJumpClock();
  const sim = createSimCloud({
    clock,
    seed: { instances: [{ instanceId: IDS.cn2, availabilityZone: 'sim-region-1a', volumes }, ...more] },
  });
  const state = createMemoryCellState();
  // On the CN the runbook reads where the key lives and hashes the kcn binary and kcnd.conf; anything
  // else it ran has no scripted reply and fails here.
  const shell = new FakeShell()
    .on('test -e', { exitCode: 0 })
    .on('sha256sum -- /usr/bin/kcn', { stdout: `${KCN_SHA} /usr/bin/kcn\n` })
    .on('sha256sum -- /etc/kcnd/conf/kcnd.conf', { stdout: `${CONF_SHA} /etc/kcnd/conf/kcnd.conf\n` })
    .on('sudo -n test -e /etc/kcnd/conf/kcnd.conf', { exitCode: 0 })
    .on('sudo -n cat -- /etc/kcnd/conf/kcnd.conf', { stdout: 'DATA_DIR=/var/kcnd/data\n' })
    .on('sudo -n test -e /var/kcnd/data/nodekey', { exitCode: 1 });
  const ports: RunbookPorts = { shell, cloud: sim, rpc: new FakeNodeRpc(), clock, state };
  return { clock, sim, state, ports, shell, config: snapshotConfig() };
}

describe('image runbook', () => {
  it('images the CN without its DATA_DIR volume, without rebooting it, and records it as the latest', async () => {
    const { sim, state, ports, config, clock, shell } = setup();
    const result = await runSteps(imageRunbook.steps(PARAMS, config), {
      params: PARAMS,
      config,
      ports,
      runId: 'run-9',
    });
    expect(result.error).toBeUndefined();
    const create = sim.calls.find((c) => c.op === 'createImage');
    expect(create?.args[0]).toMatchObject({
      instanceId: IDS.cn2,
      excludeDevices: ['/dev/sdf'],
      reboot: false,
      tags: { 'cellops:run-id': 'run-9', 'cellops:cell': 'test-cell', 'cellops:role': 'cn2' },
    });
    const image = sim.inventory().images[0];
    expect(image?.state).toBe('available');
    expect(image?.devices).toEqual(['/dev/xvda']);
    expect(await state.image('cn2')).toEqual({
      cn: 'cn2',
      imageId: image?.imageId,
      at: clock.now(),
      runId: 'run-9',
      binarySha256: KCN_SHA,
      confSha256: CONF_SHA,
    });
    // Read on the CN itself, before the image was started.
    expect(shell.executed.every((e) => e.host.address === '10.0.2.11')).toBe(true);
    expect(shell.commands()).toContain('sudo -n sha256sum -- /usr/bin/kcn');
    // Waited for `available` before recording: a pending image cannot launch a replacement.
    const ops = sim.calls.map((c) => c.op);
    expect(ops.indexOf('waitImageAvailable')).toBeLessThan(ops.lastIndexOf('describeImage'));
  });

  it('refuses when no volume sits at the data device, since DATA_DIR and the nodekey would go into the image', async () => {
    const { sim, ports, config } = setup([{ volumeId: IDS.cn2Root, device: '/dev/xvda' }]);
    const result = await runSteps(imageSteps(), { params: PARAMS, config, ports, runId: 'run-9' });
    expect(result.failedStep).toBe('preflight');
    expect(result.error).toBeInstanceOf(SafetyGateError);
    expect(String(result.error)).toMatch(/no volume at \/dev\/sdf .*nodekey, would go into the image/);
    expect(sim.calls.map((c) => c.op)).not.toContain('createImage');
  });

  it('refuses when the volume at the data device is not the configured DATA_DIR volume', async () => {
    const { ports, config } = setup([
      { volumeId: IDS.cn2Root, device: '/dev/xvda' },
      { volumeId: 'vol-0other', device: '/dev/sdf' },
      { volumeId: IDS.cn2Data, device: '/dev/sdg' },
    ]);
    const result = await runSteps(imageSteps(), { params: PARAMS, config, ports, runId: 'run-9' });
    expect(result.failedStep).toBe('preflight');
    expect(String(result.error)).toMatch(/has vol-0other at \/dev\/sdf, not the configured DATA_DIR volume/);
  });

  it('images the instance that serves the CN now, after an earlier failover', async () => {
    const { sim, state, ports, config } = setup();
    await state.setRole({
      role: 'cn2',
      servedBy: 'i-0replaced',
      instanceId: 'i-0replaced',
      since: 1,
      runId: 'r',
    });
    const result = await runSteps(imageSteps(), { params: PARAMS, config, ports, runId: 'run-9' });
    // The sim has no such instance: what matters is which one was asked for (and that it is refused).
    expect(result.failedStep).toBe('preflight');
    expect(String(result.error)).toMatch(/instance i-0replaced, which EC2 does not know/);
    expect(sim.calls.find((c) => c.op === 'describeInstance')?.args[0]).toBe('i-0replaced');
  });

  it('images a replacement from a snapshot failover: its DATA_DIR volume is the one that run made', async () => {
    const replacement = {
      instanceId: 'i-0replacement',
      availabilityZone: 'sim-region-1a',
      privateIp: '10.0.2.77',
      // The tags every instance a failover launches carries.
      tags: { 'cellops:cell': 'test-cell', 'cellops:role': 'cn2', 'cellops:run-id': 'r-failover' },
      // Its DATA_DIR volume came from the run's snapshot: not the configured dataVolumeId.
      volumes: [
        { volumeId: 'vol-0newroot', device: '/dev/xvda' },
        { volumeId: 'vol-0fromsnapshot', device: '/dev/sdf' },
      ],
    };
    const { sim, state, ports, config, shell } = setup(undefined, [replacement]);
    await state.setRole({
      role: 'cn2',
      servedBy: replacement.instanceId,
      instanceId: replacement.instanceId,
      address: replacement.privateIp,
      since: 1,
      runId: 'r-failover',
    });
    const result = await runSteps(imageSteps(), { params: PARAMS, config, ports, runId: 'run-9' });
    expect(result.error).toBeUndefined();
    expect(sim.calls.find((c) => c.op === 'createImage')?.args[0]).toMatchObject({
      instanceId: replacement.instanceId,
      excludeDevices: ['/dev/sdf'],
    });
    expect(new Set(shell.executed.map((e) => e.host.address))).toEqual(new Set([replacement.privateIp]));
    expect(await state.image('cn2')).toMatchObject({ binarySha256: KCN_SHA, confSha256: CONF_SHA });
  });

  it('refuses to image a CN without a kcn binary to record', async () => {
    const { sim, ports, config, shell } = setup();
    shell.on('test -e /usr/bin/kcn', { exitCode: 1 });
    const result = await runSteps(imageSteps(), { params: PARAMS, config, ports, runId: 'run-9' });
    expect(result.failedStep).toBe('preflight');
    expect(String(result.error)).toMatch(/has no \/usr\/bin\/kcn: the image would record nothing/);
    expect(sim.calls.map((c) => c.op)).not.toContain('createImage');
  });

  it('lists the image it left when waiting for it fails, and records nothing', async () => {
    const { sim, state, ports, config } = setup();
    sim.failNext('waitImageAvailable', new ExternalError('ec2_wait_failed', 'image failed'));
    const result = await runSteps(imageSteps(), { params: PARAMS, config, ports, runId: 'run-9' });
    expect(result.failedStep).toBe('wait-available');
    const imageId = sim.inventory().images[0]?.imageId ?? '';
    expect((result.error as Error).message).toMatch(
      new RegExp(`^image failed\\nResources this run left \\(tagged cellops:run-id=run-9.*image ${imageId}`),
    );
    expect(await state.image('cn2')).toBeUndefined();
  });

  it('names CreateImage, NoReboot and the NoDevice mapping in its plan', () => {
    const config = snapshotConfig();
    const fact = () => undefined;
    const text = imageSteps()
      .map((s) => s.describe({ params: PARAMS, config, fact }))
      .join('\n');
    expect(text).toMatch(/EC2 CreateImage of i-00000000000000c02 with NoReboot .*\/dev\/sdf → NoDevice/);
    expect(imageSteps().some((s) => s.destructive)).toBe(false);
  });

  it('names images so that EC2 accepts them', () => {
    expect(imageName('my core cell!', 'cn2', Date.UTC(2026, 10, 26, 3, 4, 5))).toBe(
      'cellops-my-core-cell--cn2-20261126T030405Z',
    );
  });

  it('refuses to image a CN whose nodekey kcnd.conf puts outside DATA_DIR, where the image would copy it', async () => {
    const { sim, ports, shell, config } = setup();
    shell.on('sudo -n cat -- /etc/kcnd/conf/kcnd.conf', {
      stdout: 'DATA_DIR=/var/kcnd/data\nADDITIONAL="--nodekey /etc/kcnd/nodekey"\n',
    });
    const result = await runSteps(imageRunbook.steps(PARAMS, config), {
      params: PARAMS,
      config,
      ports,
      runId: 'run-9',
    });
    expect(result.failedStep).toBe('preflight');
    expect(result.error).toBeInstanceOf(SafetyGateError);
    expect(String(result.error)).toMatch(
      /nodekey is at \/etc\/kcnd\/nodekey .*outside DATA_DIR \/var\/kcnd\/data/,
    );
    expect(sim.calls.map((c) => c.op)).not.toContain('createImage');
  });

  it('refuses a key passed on the command line with --nodekeyhex, never repeating it', async () => {
    const hex = 'cd'.repeat(32);
    const { ports, shell, config } = setup();
    shell.on('sudo -n cat -- /etc/kcnd/conf/kcnd.conf', { stdout: `ADDITIONAL="--nodekeyhex ${hex}"\n` });
    const result = await runSteps(imageRunbook.steps(PARAMS, config), {
      params: PARAMS,
      config,
      ports,
      runId: 'run-9',
    });
    expect(String(result.error)).toMatch(/--nodekeyhex/);
    expect(result.text() + String(result.error)).not.toContain(hex);
  });
});
