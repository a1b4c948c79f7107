import { createServer, type IncomingMessage, type Server } from 'node:http';
import * as EC2 from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEc2Cloud } from '../../../src/adapters/ec2/ec2-cloud.js';
import { CellopsError, ExternalError, StepTimeoutError } from '../../../src/errors.js';
import { createSystemClock } from '../../../src/infra/system-clock.js';
import type { Cloud } from '../../../src/ports/cloud.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { TEST_REGION, awsError, mockEc2, type MockedEc2 } from '../../support/ec2-mock.js';

const RUN_TAGS = { 'cellops:run-id': 'run-42', 'cellops:step': 'launch' };

function instance(state: string, extra: Record<string, unknown> = {}) {
  return {
    Reservations: [
      {
        Instances: [
          {
            InstanceId: 'i-0abc',
            State: { Name: state },
            Placement: { AvailabilityZone: 'ap-northeast-2a' },
            PrivateIpAddress: '10.0.2.11',
            ImageId: 'ami-0cn',
            Tags: [{ Key: 'Name', Value: 'cn2' }],
            ...extra,
          },
        ],
      },
    ],
  } as never;
}

describe('EC2 cloud adapter (mocked SDK)', () => {
  let mocked: MockedEc2;
  let ec2: MockedEc2['ec2'];
  let cloud: Cloud;
  let logger: RecordingLogger;

  beforeEach(() => {
    logger = new RecordingLogger();
    mocked = mockEc2({ logger });
    ({ ec2, cloud } = mocked);
  });

  afterEach(() => {
    mocked.restore();
  });

  it('launches one instance with the run tags on the instance and its volumes, idempotently', async () => {
    ec2.on(EC2.RunInstancesCommand).resolves({
      Instances: [
        {
          InstanceId: 'i-0new',
          State: { Name: 'pending' },
          Placement: { AvailabilityZone: 'ap-northeast-2c' },
          PrivateIpAddress: '10.0.2.99',
        },
      ],
    });

    const launched = await cloud.runInstance({
      imageId: 'ami-0cn',
      instanceType: 'm6i.2xlarge',
      subnetId: 'subnet-0123',
      securityGroupIds: ['sg-0123'],
      keyName: 'cn',
      tags: RUN_TAGS,
      clientToken: 'run-42-launch',
    });

    expect(launched).toEqual({
      instanceId: 'i-0new',
      state: 'pending',
      availabilityZone: 'ap-northeast-2c',
      privateIp: '10.0.2.99',
      tags: {},
    });
    const input = ec2.commandCalls(EC2.RunInstancesCommand)[0]?.args[0].input;
    expect(input).toEqual({
      ImageId: 'ami-0cn',
      InstanceType: 'm6i.2xlarge',
      SubnetId: 'subnet-0123',
      SecurityGroupIds: ['sg-0123'],
      KeyName: 'cn',
      ClientToken: 'run-42-launch',
      MinCount: 1,
      MaxCount: 1,
      TagSpecifications: [
        {
          ResourceType: 'instance',
          Tags: [
            { Key: 'cellops:run-id', Value: 'run-42' },
            { Key: 'cellops:step', Value: 'launch' },
          ],
        },
        {
          ResourceType: 'volume',
          Tags: [
            { Key: 'cellops:run-id', Value: 'run-42' },
            { Key: 'cellops:step', Value: 'launch' },
          ],
        },
      ],
    });
  });

  it('refuses to create anything without the run-id tag, before calling EC2', async () => {
    await expect(cloud.createSnapshot('vol-0123', 'pn1 data', { Name: 'x' })).rejects.toMatchObject({
      code: 'untagged_resource',
    });
    await expect(
      cloud.createImage({
        instanceId: 'i-0abc',
        name: 'cn2',
        description: 'cn2',
        excludeDevices: [],
        tags: {},
      }),
    ).rejects.toBeInstanceOf(CellopsError);
    expect(ec2.calls()).toHaveLength(0);
  });

  it('creates the image without the DATA_DIR volume (NoDevice), without a reboot, tagging image and snapshots', async () => {
    ec2.on(EC2.CreateImageCommand).resolves({ ImageId: 'ami-0img' });

    const { imageId } = await cloud.createImage({
      instanceId: 'i-0abc',
      name: 'cellops-cn2-2026-11-26',
      description: 'cn2 without DATA_DIR',
      excludeDevices: ['/dev/sdf'],
      tags: RUN_TAGS,
    });

    expect(imageId).toBe('ami-0img');
    const input = ec2.commandCalls(EC2.CreateImageCommand)[0]?.args[0].input;
    expect(input?.BlockDeviceMappings).toEqual([{ DeviceName: '/dev/sdf', NoDevice: '' }]);
    expect(input?.NoReboot).toBe(true);
    expect(input?.TagSpecifications?.map((t) => t.ResourceType)).toEqual(['image', 'snapshot']);
    expect(input?.TagSpecifications?.[0]?.Tags).toContainEqual({ Key: 'cellops:run-id', Value: 'run-42' });
  });

  it('moves the Elastic IP with reassociation allowed, since the failed CN still holds it', async () => {
    ec2.on(EC2.AssociateAddressCommand).resolves({ AssociationId: 'eipassoc-1' });

    await expect(cloud.associateAddress('eipalloc-0123', 'i-0new')).resolves.toEqual({
      associationId: 'eipassoc-1',
    });
    expect(ec2.commandCalls(EC2.AssociateAddressCommand)[0]?.args[0].input).toEqual({
      AllocationId: 'eipalloc-0123',
      InstanceId: 'i-0new',
      AllowReassociation: true,
    });
  });

  it('tags snapshots and volumes at creation and attaches the volume as the configured device', async () => {
    ec2.on(EC2.CreateSnapshotCommand).resolves({ SnapshotId: 'snap-1' });
    ec2.on(EC2.CreateVolumeCommand).resolves({ VolumeId: 'vol-new' });
    ec2.on(EC2.AttachVolumeCommand).resolves({});

    await cloud.createSnapshot('vol-0123', 'pn1 chaindata', RUN_TAGS);
    await cloud.createVolume('snap-1', 'ap-northeast-2c', RUN_TAGS);
    await cloud.attachVolume('vol-new', 'i-0new', '/dev/sdf');

    expect(ec2.commandCalls(EC2.CreateSnapshotCommand)[0]?.args[0].input).toEqual({
      VolumeId: 'vol-0123',
      Description: 'pn1 chaindata',
      TagSpecifications: [
        {
          ResourceType: 'snapshot',
          Tags: [
            { Key: 'cellops:run-id', Value: 'run-42' },
            { Key: 'cellops:step', Value: 'launch' },
          ],
        },
      ],
    });
    expect(ec2.commandCalls(EC2.CreateVolumeCommand)[0]?.args[0].input).toMatchObject({
      SnapshotId: 'snap-1',
      AvailabilityZone: 'ap-northeast-2c',
      TagSpecifications: [{ ResourceType: 'volume' }],
    });
    expect(ec2.commandCalls(EC2.AttachVolumeCommand)[0]?.args[0].input).toEqual({
      VolumeId: 'vol-new',
      InstanceId: 'i-0new',
      Device: '/dev/sdf',
    });
  });

  it('waits for a running instance by polling DescribeInstances through the SDK waiter', async () => {
    ec2
      .on(EC2.DescribeInstancesCommand)
      .resolvesOnce(instance('pending'))
      .resolvesOnce(instance('pending'))
      .resolvesOnce(instance('pending'))
      .resolves(instance('running', { PublicIpAddress: '203.0.113.25' }));

    const info = await cloud.waitInstanceRunning('i-0abc', { timeoutMs: 10_000 });

    expect(info.state).toBe('running');
    expect(info.publicIp).toBe('203.0.113.25');
    const calls = ec2.commandCalls(EC2.DescribeInstancesCommand);
    // one precheck, the waiter's polls (pending, pending, running), one final describe
    expect(calls.length).toBe(5);
    expect(calls.every((c) => c.args[0].input.InstanceIds?.[0] === 'i-0abc')).toBe(true);
  });

  it('keeps waiting while a just-created volume is not yet visible, then sees it in use', async () => {
    ec2
      .on(EC2.DescribeVolumesCommand)
      .rejectsOnce(awsError('InvalidVolume.NotFound'))
      .resolvesOnce({ Volumes: [{ VolumeId: 'vol-new', State: 'available' }] })
      .resolves({ Volumes: [{ VolumeId: 'vol-new', State: 'in-use' }] });

    await cloud.waitVolumeInUse('vol-new', { timeoutMs: 10_000 });
    expect(ec2.commandCalls(EC2.DescribeVolumesCommand).length).toBe(3);
  });

  it('gives up with a retryable timeout error naming the snapshot and region', async () => {
    ec2
      .on(EC2.DescribeSnapshotsCommand)
      .resolves({ Snapshots: [{ SnapshotId: 'snap-1', State: 'pending' }] });

    const error = await cloud.waitSnapshotCompleted('snap-1', { timeoutMs: 200 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StepTimeoutError);
    expect((error as StepTimeoutError).retryable).toBe(true);
    expect((error as Error).message).toContain('snapshot snap-1');
    expect((error as Error).message).toContain(TEST_REGION);
    expect(ec2.commandCalls(EC2.DescribeSnapshotsCommand).length).toBeGreaterThan(2);
  });

  it('stops waiting when the run is aborted, with the abort reason', async () => {
    ec2.on(EC2.DescribeImagesCommand).resolves({ Images: [{ ImageId: 'ami-0img', State: 'pending' }] });
    const controller = new AbortController();
    const reason = new Error('run aborted by U0AAA');

    const waiting = cloud.waitImageAvailable('ami-0img', { timeoutMs: 60_000, signal: controller.signal });
    setTimeout(() => controller.abort(reason), 50);

    await expect(waiting).rejects.toBe(reason);
  });

  it('fails the wait at once when the instance ends up terminated instead of running', async () => {
    ec2.on(EC2.DescribeInstancesCommand).resolvesOnce(instance('pending')).resolves(instance('terminated'));

    await expect(cloud.waitInstanceRunning('i-0abc', { timeoutMs: 10_000 })).rejects.toMatchObject({
      code: 'ec2_wait_failed',
      message: expect.stringContaining('terminated') as string,
    });
  });

  it('reports a missing IAM permission at once instead of waiting out the timeout', async () => {
    ec2
      .on(EC2.DescribeInstancesCommand)
      .rejects(awsError('UnauthorizedOperation', 'You are not authorized. Encoded…'));

    const error = await cloud.waitInstanceStopped('i-0abc', { timeoutMs: 60_000 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ExternalError);
    expect(error).toMatchObject({ code: 'ec2_unauthorized', retryable: false });
    expect((error as Error).message).toContain('ec2:DescribeInstances');
    expect((error as Error).message).toContain('i-0abc');
    expect((error as Error).message).toContain(TEST_REGION);
    expect(ec2.commandCalls(EC2.DescribeInstancesCommand).length).toBe(1);
  });

  it('names the instance, the region and the IAM action when StopInstances is denied', async () => {
    ec2.on(EC2.StopInstancesCommand).rejects(awsError('UnauthorizedOperation'));

    await expect(cloud.stopInstance('i-0abc')).rejects.toThrow(
      /ec2:StopInstances.*instance i-0abc in ap-northeast-2|instance i-0abc in ap-northeast-2.*ec2:StopInstances/,
    );
    expect(ec2.commandCalls(EC2.StopInstancesCommand)[0]?.args[0].input).toEqual({
      InstanceIds: ['i-0abc'],
      Force: false,
    });
  });

  it('tells the operator to check the configured id when an instance does not exist', async () => {
    ec2.on(EC2.StopInstancesCommand).rejects(awsError('InvalidInstanceID.NotFound'));
    ec2.on(EC2.DescribeInstancesCommand).rejects(awsError('InvalidInstanceID.NotFound'));

    await expect(cloud.stopInstance('i-0gone')).rejects.toMatchObject({
      code: 'ec2_not_found',
      message: expect.stringMatching(/instance i-0gone does not exist in ap-northeast-2/) as string,
    });
    await expect(cloud.describeInstance('i-0gone')).resolves.toBeUndefined();
  });

  it('marks throttling as retryable', async () => {
    ec2.on(EC2.DescribeAddressesCommand).rejects(awsError('RequestLimitExceeded'));
    await expect(cloud.describeAddress('eipalloc-0123')).rejects.toMatchObject({
      code: 'ec2_throttled',
      retryable: true,
    });
  });

  it('lists the volumes attached to an instance by device name', async () => {
    ec2.on(EC2.DescribeInstancesCommand).resolves(
      instance('running', {
        BlockDeviceMappings: [
          { DeviceName: '/dev/xvda', Ebs: { VolumeId: 'vol-root' } },
          { DeviceName: '/dev/sdf', Ebs: { VolumeId: 'vol-data' } },
        ],
      }),
    );
    await expect(cloud.describeInstanceVolumes('i-0abc')).resolves.toEqual([
      { volumeId: 'vol-root', device: '/dev/xvda' },
      { volumeId: 'vol-data', device: '/dev/sdf' },
    ]);
  });

  it('finds every resource tagged with the run id, across pages and only in this account', async () => {
    ec2
      .on(EC2.DescribeInstancesCommand)
      .resolvesOnce({
        Reservations: [{ Instances: [{ InstanceId: 'i-1', State: { Name: 'running' } }] }],
        NextToken: 'page-2',
      })
      .resolvesOnce({ Reservations: [{ Instances: [{ InstanceId: 'i-2', State: { Name: 'pending' } }] }] });
    ec2.on(EC2.DescribeVolumesCommand).resolves({ Volumes: [{ VolumeId: 'vol-1', State: 'in-use' }] });
    ec2
      .on(EC2.DescribeSnapshotsCommand)
      .resolves({ Snapshots: [{ SnapshotId: 'snap-1', State: 'completed' }] });
    ec2.on(EC2.DescribeImagesCommand).resolves({ Images: [] });

    const found = await cloud.findTagged('run-42');

    expect(found).toEqual([
      { kind: 'instance', id: 'i-1', state: 'running' },
      { kind: 'instance', id: 'i-2', state: 'pending' },
      { kind: 'volume', id: 'vol-1', state: 'in-use' },
      { kind: 'snapshot', id: 'snap-1', state: 'completed' },
    ]);
    const filter = [{ Name: 'tag:cellops:run-id', Values: ['run-42'] }];
    const instanceCalls = ec2.commandCalls(EC2.DescribeInstancesCommand);
    expect(instanceCalls.map((c) => c.args[0].input)).toEqual([
      { Filters: filter, NextToken: undefined },
      { Filters: filter, NextToken: 'page-2' },
    ]);
    expect(ec2.commandCalls(EC2.DescribeSnapshotsCommand)[0]?.args[0].input).toMatchObject({
      Filters: filter,
      OwnerIds: ['self'],
    });
    expect(ec2.commandCalls(EC2.DescribeImagesCommand)[0]?.args[0].input).toMatchObject({
      Filters: filter,
      Owners: ['self'],
    });
  });

  it('describes only images and snapshots the account owns, so a recorded id cannot name a public one', async () => {
    ec2.on(EC2.DescribeImagesCommand).resolves({ Images: [{ ImageId: 'ami-0img', State: 'available' }] });
    ec2
      .on(EC2.DescribeSnapshotsCommand)
      .resolves({ Snapshots: [{ SnapshotId: 'snap-1', State: 'completed' }] });

    await cloud.describeImage('ami-0img');
    await cloud.describeSnapshot('snap-1');

    expect(ec2.commandCalls(EC2.DescribeImagesCommand)[0]?.args[0].input).toEqual({
      ImageIds: ['ami-0img'],
      Owners: ['self'],
    });
    expect(ec2.commandCalls(EC2.DescribeSnapshotsCommand)[0]?.args[0].input).toEqual({
      SnapshotIds: ['snap-1'],
      OwnerIds: ['self'],
    });
  });
});

describe('EC2 cloud adapter against a loopback endpoint (AWS_ENDPOINT_URL_EC2)', () => {
  const saved: Record<string, string | undefined> = {};
  const envKeys = [
    'AWS_ENDPOINT_URL_EC2',
    'AWS_ENDPOINT_URL',
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'AWS_PROFILE',
    'AWS_EC2_METADATA_DISABLED',
  ];
  let server: Server;
  let requests: Array<{ body: string; authorization: string | undefined; path: string | undefined }>;

  beforeEach(async () => {
    for (const key of envKeys) saved[key] = process.env[key];
    requests = [];
    server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        requests.push({
          body: Buffer.concat(chunks).toString(),
          authorization: req.headers.authorization,
          path: req.url,
        });
        res.writeHead(200, { 'content-type': 'text/xml;charset=UTF-8' });
        res.end(DESCRIBE_INSTANCES_XML);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    process.env.AWS_ENDPOINT_URL_EC2 = `http://127.0.0.1:${address.port}`;
    delete process.env.AWS_ENDPOINT_URL;
    delete process.env.AWS_PROFILE;
    delete process.env.AWS_SESSION_TOKEN;
    process.env.AWS_ACCESS_KEY_ID = 'AKIDLOOPBACKTEST';
    process.env.AWS_SECRET_ACCESS_KEY = 'loopback-secret';
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
  });

  afterEach(async () => {
    for (const key of envKeys) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
    // The SDK keeps its socket alive; without this close() would wait out the keep-alive timeout.
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('sends a signed EC2 Query request to the endpoint from the environment and parses the XML answer', async () => {
    const cloud = createEc2Cloud({
      region: TEST_REGION,
      clock: createSystemClock(),
      logger: new RecordingLogger(),
    });

    const info = await cloud.describeInstance('i-0123456789abcdef0');

    expect(info).toEqual({
      instanceId: 'i-0123456789abcdef0',
      state: 'running',
      availabilityZone: 'ap-northeast-2a',
      privateIp: '10.0.2.11',
      publicIp: '203.0.113.25',
      imageId: 'ami-0cn1234',
      tags: { Name: 'cn2', 'cellops:run-id': 'run-7' },
    });
    expect(requests).toHaveLength(1);
    const params = new URLSearchParams(requests[0]?.body);
    expect(params.get('Action')).toBe('DescribeInstances');
    expect(params.get('InstanceId.1')).toBe('i-0123456789abcdef0');
    expect(requests[0]?.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDLOOPBACKTEST\/\d{8}\/ap-northeast-2\/ec2\/aws4_request/,
    );
  });
});

const DESCRIBE_INSTANCES_XML = `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
  <reservationSet>
    <item>
      <reservationId>r-1234567890abcdef0</reservationId>
      <ownerId>123456789012</ownerId>
      <instancesSet>
        <item>
          <instanceId>i-0123456789abcdef0</instanceId>
          <imageId>ami-0cn1234</imageId>
          <instanceState><code>16</code><name>running</name></instanceState>
          <privateIpAddress>10.0.2.11</privateIpAddress>
          <ipAddress>203.0.113.25</ipAddress>
          <placement><availabilityZone>ap-northeast-2a</availabilityZone><tenancy>default</tenancy></placement>
          <blockDeviceMapping>
            <item><deviceName>/dev/xvda</deviceName><ebs><volumeId>vol-0root</volumeId><status>attached</status></ebs></item>
          </blockDeviceMapping>
          <tagSet>
            <item><key>Name</key><value>cn2</value></item>
            <item><key>cellops:run-id</key><value>run-7</value></item>
          </tagSet>
        </item>
      </instancesSet>
    </item>
  </reservationSet>
</DescribeInstancesResponse>`;
