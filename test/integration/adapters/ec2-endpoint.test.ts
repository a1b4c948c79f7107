/**
 * The real EC2 adapter (createEc2Cloud over @aws-sdk/client-ec2) against the local EC2 endpoint over HTTP:
 * what goes over the wire is the SDK's own query serialization and XML parsing, so these tests check the
 * adapter and the endpoint the lab tests rely on together.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createEc2Cloud } from '../../../src/adapters/ec2/ec2-cloud.js';
import { ExternalError } from '../../../src/errors.js';
import { createSystemClock } from '../../../src/infra/system-clock.js';
import { RUN_ID_TAG, type Cloud } from '../../../src/ports/cloud.js';
import { parseConsoleHostKeys } from '../../../src/runbooks/console-host-keys.js';
import { newHostKey } from '../../../src/sandbox/sim-cloud-console.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { startEc2Endpoint, type Ec2Endpoint } from '../../support/ec2-endpoint.js';

let endpoint: Ec2Endpoint | undefined;

afterEach(async () => {
  await endpoint?.close();
  endpoint = undefined;
});

const KEY = newHostKey();
const WAIT = { timeoutMs: 10_000 };

async function cloudOn(options: Parameters<typeof startEc2Endpoint>[0]): Promise<Cloud> {
  endpoint = await startEc2Endpoint(options);
  return createEc2Cloud({
    client: endpoint.client(),
    clock: createSystemClock(),
    logger: new RecordingLogger(),
    waiterDelays: { minSeconds: 0.05, maxSeconds: 0.2 },
  });
}

const SEED = {
  instances: [{ instanceId: 'i-0c2', privateIp: '10.0.2.11', devices: { '/dev/sdf': 'vol-0c2data' } }],
  addresses: [{ allocationId: 'eipalloc-0123', publicIp: '203.0.113.25', instanceId: 'i-0c2' }],
  images: [{ imageId: 'ami-0cn2', name: 'cn2 image' }],
};

describe('the EC2 adapter against the local EC2 endpoint over HTTP', () => {
  it("launches an instance whose console is empty after boot, then shows cloud-init's key block", async () => {
    const cloud = await cloudOn({
      seed: SEED,
      delays: { instanceStart: 100, consoleEmptyMs: 400 },
      hooks: { launch: () => ({ privateIp: '10.0.2.57', hostKeys: [KEY] }) },
    });
    const launched = await cloud.runInstance({
      imageId: 'ami-0cn2',
      instanceType: 'm6i.large',
      subnetId: 'subnet-0123',
      securityGroupIds: ['sg-0123'],
      tags: { [RUN_ID_TAG]: 'run-1', Name: 'cn2-replacement' },
      clientToken: 'run-1:launch',
    });
    expect(launched.state).toBe('pending');
    const running = await cloud.waitInstanceRunning(launched.instanceId, WAIT);
    expect(running).toMatchObject({ state: 'running', privateIp: '10.0.2.57' });
    expect(running.tags).toMatchObject({ [RUN_ID_TAG]: 'run-1' });

    expect((await cloud.consoleOutput(launched.instanceId, { latest: true }))?.text).toBe('');
    let text = '';
    while (text === '') {
      await new Promise((r) => setTimeout(r, 100));
      text = (await cloud.consoleOutput(launched.instanceId, { latest: true }))?.text ?? '';
    }
    expect(parseConsoleHostKeys(text)).toEqual({ kind: 'found', keys: [KEY] });
    const sent = endpoint!.calls.filter((c) => c.action === 'GetConsoleOutput');
    expect(sent.every((c) => c.params.Latest === 'true' && c.params.InstanceId === launched.instanceId)).toBe(
      true,
    );

    // The same client token returns the instance already launched.
    const again = await cloud.runInstance({
      imageId: 'ami-0cn2',
      instanceType: 'm6i.large',
      subnetId: 'subnet-0123',
      securityGroupIds: ['sg-0123'],
      tags: { [RUN_ID_TAG]: 'run-1' },
      clientToken: 'run-1:launch',
    });
    expect(again.instanceId).toBe(launched.instanceId);
    expect(await cloud.consoleOutput('i-0nothere')).toBeUndefined();
  });

  it('snapshots, creates and attaches a volume, moves the Elastic IP, stops an instance and lists tagged resources', async () => {
    const cloud = await cloudOn({
      seed: SEED,
      delays: { snapshot: 200, volumeCreate: 100, volumeAttach: 100, instanceStop: 100 },
    });
    const tags = { [RUN_ID_TAG]: 'run-2' };
    const { snapshotId } = await cloud.createSnapshot('vol-0c2data', 'chaindata', tags);
    expect((await cloud.describeSnapshot(snapshotId))?.state).toBe('pending');
    await cloud.waitSnapshotCompleted(snapshotId, WAIT);
    const { volumeId } = await cloud.createVolume(snapshotId, 'ap-northeast-2a', tags);
    await cloud.waitVolumeAvailable(volumeId, WAIT);
    await cloud.attachVolume(volumeId, 'i-0c2', '/dev/sdg');
    await cloud.waitVolumeInUse(volumeId, WAIT);
    expect(await cloud.describeInstanceVolumes('i-0c2')).toContainEqual({ volumeId, device: '/dev/sdg' });

    expect(await cloud.describeAddress('eipalloc-0123')).toEqual({
      publicIp: '203.0.113.25',
      instanceId: 'i-0c2',
    });
    await cloud.stopInstance('i-0c2');
    await cloud.waitInstanceStopped('i-0c2', WAIT);
    expect((await cloud.describeInstance('i-0c2'))?.state).toBe('stopped');

    const listed = await cloud.findTagged('run-2');
    expect(listed.map((r) => `${r.kind}:${r.id}`).sort()).toEqual(
      [`snapshot:${snapshotId}`, `volume:${volumeId}`].sort(),
    );
    expect(endpoint!.calls.map((c) => c.action)).toContain('AttachVolume');
  });

  it('images an instance without its data device, and turns EC2 errors into operator-facing ones', async () => {
    const cloud = await cloudOn({ seed: SEED, delays: { image: 100 } });
    const { imageId } = await cloud.createImage({
      instanceId: 'i-0c2',
      name: 'cn2-image',
      description: 'cn2',
      excludeDevices: ['/dev/sdf'],
      tags: { [RUN_ID_TAG]: 'run-3' },
    });
    await cloud.waitImageAvailable(imageId, WAIT);
    expect((await cloud.describeImage(imageId))?.state).toBe('available');
    const sent = endpoint!.calls.find((c) => c.action === 'CreateImage');
    expect(sent?.params).toMatchObject({ NoReboot: 'true', 'BlockDeviceMapping.1.DeviceName': '/dev/sdf' });

    expect(await cloud.describeInstance('i-0missing')).toBeUndefined();
    endpoint!.failNext(
      'GetConsoleOutput',
      'UnauthorizedOperation',
      'You are not authorized to perform this operation.',
    );
    const error = await cloud.consoleOutput('i-0c2', { latest: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExternalError);
    expect((error as Error).message).toMatch(/GetConsoleOutput/);
  });
});
