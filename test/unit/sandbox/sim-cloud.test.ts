import { describe, expect, it } from 'vitest';
import { ExternalError, StepTimeoutError } from '../../../src/errors.js';
import { createSimCloud } from '../../../src/sandbox/sim-cloud.js';
import { ManualClock } from '../../fakes/manual-clock.js';

const TAGS = { 'cellops:run-id': 'run-1' };

function seeded(clock: ManualClock) {
  return createSimCloud({
    clock,
    region: 'ap-northeast-2',
    seed: {
      instances: [
        {
          instanceId: 'i-0cn2',
          availabilityZone: 'ap-northeast-2a',
          volumes: [
            { volumeId: 'vol-cn2root', device: '/dev/xvda' },
            { volumeId: 'vol-cn2data', device: '/dev/sdf' },
          ],
        },
        {
          instanceId: 'i-0pn1',
          availabilityZone: 'ap-northeast-2a',
          volumes: [{ volumeId: 'vol-pn1data', device: '/dev/sdf' }],
        },
      ],
      addresses: [{ allocationId: 'eipalloc-0123', publicIp: '203.0.113.25', instanceId: 'i-0cn2' }],
      images: [{ imageId: 'ami-0cn', name: 'cn image' }],
      subnets: { 'subnet-0c': 'ap-northeast-2c' },
    },
  });
}

describe('simulated EC2', () => {
  it('completes a snapshot only after its simulated duration, and refuses a volume from a pending one', async () => {
    const clock = new ManualClock();
    const sim = seeded(clock);
    const { snapshotId } = await sim.createSnapshot('vol-pn1data', 'pn1 chaindata', TAGS);

    await expect(sim.createVolume(snapshotId, 'ap-northeast-2a', TAGS)).rejects.toMatchObject({
      code: 'ec2_incorrect_state',
    });
    const waiting = sim.waitSnapshotCompleted(snapshotId, { timeoutMs: 120_000 });
    await clock.advance(29_000);
    await expect(sim.describeSnapshot(snapshotId)).resolves.toMatchObject({ state: 'pending' });
    await clock.advance(2_000);
    await waiting;
    await expect(sim.describeSnapshot(snapshotId)).resolves.toEqual({ state: 'completed', progress: '100%' });
  });

  it('plays a snapshot-mode replacement: launch, volume in the new zone, attach, Elastic IP moved', async () => {
    const clock = new ManualClock();
    const sim = seeded(clock);

    const launched = await sim.runInstance({
      imageId: 'ami-0cn',
      instanceType: 'm6i.2xlarge',
      subnetId: 'subnet-0c',
      securityGroupIds: ['sg-1'],
      tags: TAGS,
    });
    const { snapshotId } = await sim.createSnapshot('vol-pn1data', 'pn1', TAGS);
    const running = sim.waitInstanceRunning(launched.instanceId, { timeoutMs: 60_000 });
    const snapped = sim.waitSnapshotCompleted(snapshotId, { timeoutMs: 60_000 });
    await clock.advance(31_000);
    expect((await running).availabilityZone).toBe('ap-northeast-2c');
    await snapped;

    const { volumeId } = await sim.createVolume(snapshotId, 'ap-northeast-2c', TAGS);
    const available = sim.waitVolumeAvailable(volumeId, { timeoutMs: 60_000 });
    await clock.advance(5_000);
    await available;
    await sim.attachVolume(volumeId, launched.instanceId, '/dev/sdf');
    const inUse = sim.waitVolumeInUse(volumeId, { timeoutMs: 60_000 });
    await clock.advance(2_000);
    await inUse;

    await sim.stopInstance('i-0cn2');
    await sim.associateAddress('eipalloc-0123', launched.instanceId);

    await expect(sim.describeAddress('eipalloc-0123')).resolves.toEqual({
      publicIp: '203.0.113.25',
      instanceId: launched.instanceId,
    });
    const inventory = sim.inventory();
    expect(inventory.instances.find((i) => i.instanceId === 'i-0cn2')?.publicIp).toBeUndefined();
    expect(inventory.instances.find((i) => i.instanceId === 'i-0cn2')?.state).toBe('stopping');
    const found = await sim.findTagged('run-1');
    expect(found.map((r) => r.kind).sort()).toEqual(['instance', 'snapshot', 'volume', 'volume']);
    expect(found).toContainEqual({ kind: 'volume', id: volumeId, state: 'in-use' });
    expect(sim.calls.map((c) => c.op).slice(0, 2)).toEqual(['runInstance', 'createSnapshot']);
  });

  it('refuses to attach a volume in another zone than the instance', async () => {
    const clock = new ManualClock();
    const sim = seeded(clock);
    const { snapshotId } = await sim.createSnapshot('vol-pn1data', 'pn1', TAGS);
    await clock.advance(30_000);
    const { volumeId } = await sim.createVolume(snapshotId, 'ap-northeast-2c', TAGS);
    await clock.advance(5_000);

    await expect(sim.attachVolume(volumeId, 'i-0pn1', '/dev/sdg')).rejects.toThrow(
      /ap-northeast-2c.*ap-northeast-2a/,
    );
  });

  it('leaves excluded devices out of an image', async () => {
    const clock = new ManualClock();
    const sim = seeded(clock);
    const { imageId } = await sim.createImage({
      instanceId: 'i-0cn2',
      name: 'cn2',
      description: 'cn2',
      excludeDevices: ['/dev/sdf'],
      tags: TAGS,
    });
    expect(sim.inventory().images.find((i) => i.imageId === imageId)?.devices).toEqual(['/dev/xvda']);
  });

  it('times out a wait on the simulated clock with a retryable error', async () => {
    const clock = new ManualClock();
    const sim = seeded(clock);
    const { imageId } = await sim.createImage({
      instanceId: 'i-0cn2',
      name: 'cn2',
      description: 'cn2',
      excludeDevices: [],
      tags: TAGS,
    });
    const waiting = sim.waitImageAvailable(imageId, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    await clock.advance(11_000);
    const error = await waiting;
    expect(error).toBeInstanceOf(StepTimeoutError);
    expect((error as StepTimeoutError).retryable).toBe(true);
  });

  it('replays an injected fault once, then behaves again', async () => {
    const clock = new ManualClock();
    const sim = seeded(clock);
    sim.failNext('stopInstance', new ExternalError('ec2_unauthorized', 'denied'));

    await expect(sim.stopInstance('i-0cn2')).rejects.toThrow('denied');
    await expect(sim.stopInstance('i-0cn2')).resolves.toBeUndefined();
  });

  it('refuses untagged creates and unknown ids like EC2 would', async () => {
    const clock = new ManualClock();
    const sim = seeded(clock);
    await expect(sim.createSnapshot('vol-pn1data', 'x', {})).rejects.toMatchObject({
      code: 'untagged_resource',
    });
    await expect(sim.stopInstance('i-0nope')).rejects.toMatchObject({ code: 'ec2_not_found' });
    await expect(sim.describeInstance('i-0nope')).resolves.toBeUndefined();
  });
});
