/**
 * The snapshot-mode failover and the image runbook against the real EC2 adapter (createEc2Cloud), its
 * EC2Client mocked by aws-sdk-client-mock behind a small stateful EC2: the assertions are on the SDK
 * requests as they would go over the wire (TagSpecifications, NoDevice, AllowReassociation, waiters
 * polling Describe*) and on the order of those requests and the SSH commands around them.
 */
import { createHash } from 'node:crypto';
import * as EC2 from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExternalError } from '../../../src/errors.js';
import { createMemoryCellState } from '../../../src/infra/memory-cell-state.js';
import { snapshotFailoverSteps } from '../../../src/runbooks/failover-snapshot.js';
import { imageSteps } from '../../../src/runbooks/image.js';
import { cloudInitConsole, newHostKey } from '../../../src/sandbox/sim-cloud-console.js';
import type { RunbookPorts } from '../../../src/runbooks/types.js';
import { TEST_REGION, awsError, mockEc2, type MockedEc2 } from '../../support/ec2-mock.js';
import { createJumpClock, runSteps } from '../../support/run-steps.js';
import { createSnapshotCell, type SnapshotCell } from '../../support/snapshot-cell.js';
import {
  CHAIN_HEIGHT,
  CN_ADDRESS,
  IDS,
  PN_VOLUME_FILES,
  REPLACEMENT_SEED,
  cellHostSeeds,
  recordBackup,
  snapshotConfig,
} from '../../support/snapshot-fixture.js';

const RUN = 'run-ec2';
const NEW_IP = '10.0.2.57';
const PARAMS = { cn: 'cn2', force: false };
const REPLACEMENT_HOST_KEY = newHostKey();

interface Inst {
  id: string;
  state: string;
  az: string;
  ip: string;
  tags: EC2.Tag[];
  devices: Map<string, string>;
  /** Describe calls left before a transitional state settles. */
  settleIn: number;
}
interface Vol {
  id: string;
  state: string;
  az: string;
  snapshotId?: string;
  instanceId?: string;
  tags: EC2.Tag[];
  settleIn: number;
}
interface Snap {
  id: string;
  volumeId: string;
  state: string;
  tags: EC2.Tag[];
  settleIn: number;
}

function tagsFor(specs: EC2.TagSpecification[] | undefined, type: string): EC2.Tag[] {
  return (specs ?? []).filter((s) => s.ResourceType === type).flatMap((s) => s.Tags ?? []);
}

function matches(tags: EC2.Tag[], filters: EC2.Filter[] | undefined): boolean {
  return (filters ?? []).every((f) =>
    tags.some((t) => `tag:${t.Key}` === f.Name && (f.Values ?? []).includes(t.Value ?? '')),
  );
}

/** A small stateful EC2 behind the mocked client. Every request goes into `events` as `ec2:<Command>`. */
function fakeEc2(ec2: MockedEc2['ec2'], events: string[]) {
  const instances = new Map<string, Inst>();
  const volumes = new Map<string, Vol>();
  const snapshots = new Map<string, Snap>();
  const eip = { allocationId: IDS.eip, publicIp: '203.0.113.25', instanceId: IDS.cn2 as string };
  let counter = 0;
  const id = (prefix: string) => `${prefix}-0${(++counter).toString(16).padStart(8, '0')}`;

  const addInstance = (i: Omit<Inst, 'settleIn'>) => instances.set(i.id, { ...i, settleIn: 0 });
  addInstance({
    id: IDS.cn2,
    state: 'running',
    az: `${TEST_REGION}a`,
    ip: '10.0.2.11',
    tags: [{ Key: 'Name', Value: 'cn2' }],
    devices: new Map([
      ['/dev/xvda', IDS.cn2Root],
      ['/dev/sdf', IDS.cn2Data],
    ]),
  });
  addInstance({
    id: IDS.pn1,
    state: 'running',
    az: `${TEST_REGION}a`,
    ip: '10.0.3.11',
    tags: [],
    devices: new Map([['/dev/sdf', IDS.pn1Data]]),
  });

  const settle = <T extends { state: string; settleIn: number }>(r: T, next: Record<string, string>): T => {
    const target = next[r.state];
    if (target !== undefined) {
      if (r.settleIn <= 0) r.state = target;
      else r.settleIn -= 1;
    }
    return r;
  };
  const instanceOut = (i: Inst) => ({
    InstanceId: i.id,
    State: { Name: i.state },
    Placement: { AvailabilityZone: i.az },
    PrivateIpAddress: i.ip,
    Tags: i.tags,
    BlockDeviceMappings: [...i.devices].map(([DeviceName, VolumeId]) => ({ DeviceName, Ebs: { VolumeId } })),
  });
  const log = (name: string, detail = '') => events.push(`ec2:${name}${detail}`);

  ec2
    .on(EC2.DescribeInstancesCommand)
    .callsFake((input: { InstanceIds?: string[]; Filters?: EC2.Filter[] }) => {
      log('DescribeInstances', input.InstanceIds ? ` ${input.InstanceIds.join(',')}` : ' filtered');
      const found = input.InstanceIds
        ? input.InstanceIds.map((i) => instances.get(i)).filter((i): i is Inst => i !== undefined)
        : [...instances.values()].filter((i) => matches(i.tags, input.Filters));
      const out = found.map((i) => instanceOut(settle(i, { pending: 'running', stopping: 'stopped' })));
      if (input.InstanceIds?.length && out.length === 0) throw awsError('InvalidInstanceID.NotFound');
      return { Reservations: out.length ? [{ Instances: out }] : [] };
    });
  ec2.on(EC2.StopInstancesCommand).callsFake((input: { InstanceIds: string[] }) => {
    log('StopInstances', ` ${input.InstanceIds.join(',')}`);
    for (const i of input.InstanceIds) {
      const inst = instances.get(i);
      if (inst) Object.assign(inst, { state: 'stopping', settleIn: 1 });
    }
    return {};
  });
  ec2.on(EC2.RunInstancesCommand).callsFake((input: { TagSpecifications?: EC2.TagSpecification[] }) => {
    const pending = [...snapshots.values()].map((s) => s.state).join(',');
    log('RunInstances', ` (snapshots: ${pending || 'none'})`);
    const root = id('vol');
    const inst: Inst = {
      id: id('i'),
      state: 'pending',
      az: `${TEST_REGION}c`,
      ip: NEW_IP,
      tags: tagsFor(input.TagSpecifications, 'instance'),
      devices: new Map([['/dev/xvda', root]]),
      settleIn: 1,
    };
    instances.set(inst.id, inst);
    volumes.set(root, {
      id: root,
      state: 'in-use',
      az: inst.az,
      instanceId: inst.id,
      tags: tagsFor(input.TagSpecifications, 'volume'),
      settleIn: 0,
    });
    return { Instances: [instanceOut(inst)] };
  });
  ec2
    .on(EC2.CreateSnapshotCommand)
    .callsFake((input: { VolumeId: string; TagSpecifications?: EC2.TagSpecification[] }) => {
      log('CreateSnapshot', ` ${input.VolumeId}`);
      const snap: Snap = {
        id: id('snap'),
        volumeId: input.VolumeId,
        state: 'pending',
        tags: tagsFor(input.TagSpecifications, 'snapshot'),
        settleIn: 3,
      };
      snapshots.set(snap.id, snap);
      return { SnapshotId: snap.id, State: 'pending' };
    });
  ec2
    .on(EC2.DescribeSnapshotsCommand)
    .callsFake((input: { SnapshotIds?: string[]; Filters?: EC2.Filter[] }) => {
      const found = input.SnapshotIds
        ? input.SnapshotIds.map((s) => snapshots.get(s)).filter((s): s is Snap => s !== undefined)
        : [...snapshots.values()].filter((s) => matches(s.tags, input.Filters));
      const out = found.map((s) => settle(s, { pending: 'completed' }));
      log('DescribeSnapshots', input.SnapshotIds ? ` → ${out.map((s) => s.state).join(',')}` : ' filtered');
      return {
        Snapshots: out.map((s) => ({
          SnapshotId: s.id,
          VolumeId: s.volumeId,
          State: s.state,
          Progress: '10%',
        })),
      };
    });
  ec2
    .on(EC2.CreateVolumeCommand)
    .callsFake(
      (input: {
        SnapshotId: string;
        AvailabilityZone: string;
        TagSpecifications?: EC2.TagSpecification[];
      }) => {
        log('CreateVolume', ` ${input.SnapshotId} ${input.AvailabilityZone}`);
        if (snapshots.get(input.SnapshotId)?.state !== 'completed') throw awsError('IncorrectState');
        const vol: Vol = {
          id: id('vol'),
          state: 'creating',
          az: input.AvailabilityZone,
          snapshotId: input.SnapshotId,
          tags: tagsFor(input.TagSpecifications, 'volume'),
          settleIn: 1,
        };
        volumes.set(vol.id, vol);
        return { VolumeId: vol.id, State: 'creating' };
      },
    );
  ec2.on(EC2.DescribeVolumesCommand).callsFake((input: { VolumeIds?: string[]; Filters?: EC2.Filter[] }) => {
    log('DescribeVolumes', input.VolumeIds ? ` ${input.VolumeIds.join(',')}` : ' filtered');
    const found = input.VolumeIds
      ? input.VolumeIds.map((v) => volumes.get(v)).filter((v): v is Vol => v !== undefined)
      : [...volumes.values()].filter((v) => matches(v.tags, input.Filters));
    return {
      Volumes: found
        .map((v) => settle(v, { creating: 'available', attaching: 'in-use' }))
        .map((v) => ({ VolumeId: v.id, State: v.state === 'attaching' ? 'available' : v.state })),
    };
  });
  ec2
    .on(EC2.AttachVolumeCommand)
    .callsFake((input: { VolumeId: string; InstanceId: string; Device: string }) => {
      log('AttachVolume', ` ${input.VolumeId} ${input.InstanceId} ${input.Device}`);
      const vol = volumes.get(input.VolumeId);
      const inst = instances.get(input.InstanceId);
      if (!vol || !inst || vol.state !== 'available' || vol.az !== inst.az) throw awsError('IncorrectState');
      Object.assign(vol, { state: 'attaching', instanceId: inst.id, settleIn: 1 });
      inst.devices.set(input.Device, vol.id);
      return { State: 'attaching' };
    });
  // The replacement's console: empty on the first read after boot, then cloud-init's host key block.
  const consoleReads = new Map<string, number>();
  ec2.on(EC2.GetConsoleOutputCommand).callsFake((input: { InstanceId: string; Latest?: boolean }) => {
    log('GetConsoleOutput', ` ${input.InstanceId}${input.Latest ? ' latest' : ''}`);
    const inst = instances.get(input.InstanceId);
    if (!inst) throw awsError('InvalidInstanceID.NotFound');
    const reads = (consoleReads.get(inst.id) ?? 0) + 1;
    consoleReads.set(inst.id, reads);
    if (reads === 1) return { InstanceId: inst.id };
    const text = cloudInitConsole({ instanceId: inst.id, privateIp: inst.ip }, [REPLACEMENT_HOST_KEY], true);
    return { InstanceId: inst.id, Output: Buffer.from(text).toString('base64'), Timestamp: new Date() };
  });
  ec2.on(EC2.DescribeAddressesCommand).callsFake(() => {
    log('DescribeAddresses');
    return {
      Addresses: [{ AllocationId: eip.allocationId, PublicIp: eip.publicIp, InstanceId: eip.instanceId }],
    };
  });
  ec2.on(EC2.AssociateAddressCommand).callsFake((input: { InstanceId: string }) => {
    log('AssociateAddress', ` ${input.InstanceId}`);
    eip.instanceId = input.InstanceId;
    return { AssociationId: 'eipassoc-0001' };
  });
  const images = new Map<string, { state: string; settleIn: number; tags: EC2.Tag[] }>([
    [IDS.image, { state: 'available', settleIn: 0, tags: [] }],
  ]);
  ec2.on(EC2.DescribeImagesCommand).callsFake((input: { ImageIds?: string[]; Filters?: EC2.Filter[] }) => {
    log('DescribeImages', input.ImageIds ? ` ${input.ImageIds.join(',')}` : ' filtered');
    const found = input.ImageIds
      ? input.ImageIds.flatMap((i) => {
          const image = images.get(i);
          return image ? [[i, image] as const] : [];
        })
      : [...images].filter(([, image]) => matches(image.tags, input.Filters));
    return {
      Images: found.map(([ImageId, image]) => ({
        ImageId,
        State: settle(image, { pending: 'available' }).state,
        Name: 'cn2 image',
        CreationDate: '2026-11-01T00:00:00.000Z',
      })),
    };
  });
  ec2.on(EC2.CreateImageCommand).callsFake((input: { TagSpecifications?: EC2.TagSpecification[] }) => {
    log('CreateImage');
    const imageId = id('ami');
    images.set(imageId, { state: 'pending', settleIn: 2, tags: tagsFor(input.TagSpecifications, 'image') });
    return { ImageId: imageId };
  });

  return { instances, volumes, snapshots, eip };
}

describe('snapshot failover against the EC2 adapter (aws-sdk-client-mock)', () => {
  let mocked: MockedEc2;
  let ec2: MockedEc2['ec2'];
  let events: string[];
  let world: ReturnType<typeof fakeEc2>;
  let cell: SnapshotCell;
  let ports: RunbookPorts;

  beforeEach(async () => {
    mocked = mockEc2();
    ec2 = mocked.ec2;
    events = [];
    world = fakeEc2(ec2, events);
    cell = createSnapshotCell({
      hosts: cellHostSeeds(),
      events,
      replacement: REPLACEMENT_SEED,
      chainHeight: () => CHAIN_HEIGHT,
      instanceAt: (address) =>
        [...world.instances.values()].find((i) => i.ip === address && i.state === 'running')?.id,
      instanceRunning: (instanceId) => world.instances.get(instanceId)?.state === 'running',
      attachedVolume: (instanceId, volumeId) => {
        const volume = world.volumes.get(volumeId);
        if (volume?.instanceId !== instanceId || volume.state !== 'in-use') return undefined;
        return world.snapshots.get(volume.snapshotId ?? '')?.volumeId === IDS.pn1Data
          ? PN_VOLUME_FILES
          : undefined;
      },
    });
    const state = createMemoryCellState();
    await recordBackup(state);
    await state.setImage({ cn: 'cn2', imageId: IDS.image, at: 1, runId: 'image-run' });
    ports = { shell: cell.shell, cloud: mocked.cloud, rpc: cell.rpc, clock: createJumpClock(), state };
  });

  afterEach(() => {
    mocked.restore();
  });

  const inputs: MockedEc2['inputs'] = (command) => mocked.inputs(command);
  const at = (pattern: RegExp): number => {
    const i = events.findIndex((e) => pattern.test(e));
    if (i < 0) throw new Error(`no event ${String(pattern)} in:\n${events.join('\n')}`);
    return i;
  };
  const runTag = { Key: 'cellops:run-id', Value: RUN };

  it('sends tagged creates, AllowReassociation and waiter polls, in the order the procedure needs', async () => {
    const config = snapshotConfig();
    const result = await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: RUN });
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('succeeded');
    const newId = [...world.instances.keys()].find((i) => i !== IDS.cn2 && i !== IDS.pn1) ?? '';

    // Request shapes.
    const [snapshot] = inputs(EC2.CreateSnapshotCommand);
    expect(snapshot).toMatchObject({ VolumeId: IDS.pn1Data });
    expect(snapshot?.TagSpecifications).toEqual([
      {
        ResourceType: 'snapshot',
        Tags: expect.arrayContaining([runTag, { Key: 'cellops:cell', Value: 'test-cell' }]) as unknown,
      },
    ]);
    const [launch] = inputs(EC2.RunInstancesCommand);
    expect(launch).toMatchObject({
      ImageId: IDS.image,
      InstanceType: 'm6i.2xlarge',
      SubnetId: IDS.subnet,
      SecurityGroupIds: [IDS.sg],
      KeyName: 'cn',
      MinCount: 1,
      MaxCount: 1,
      ClientToken: `${RUN}:launch`,
    });
    expect(launch?.TagSpecifications?.map((s) => s.ResourceType)).toEqual(['instance', 'volume']);
    for (const spec of launch?.TagSpecifications ?? [])
      expect(spec.Tags).toEqual(
        expect.arrayContaining([runTag, { Key: 'Name', Value: 'cn2-replacement' }]) as unknown,
      );
    const [volume] = inputs(EC2.CreateVolumeCommand);
    expect(volume).toMatchObject({ AvailabilityZone: `${TEST_REGION}c` });
    expect(volume?.TagSpecifications?.[0]?.Tags).toEqual(expect.arrayContaining([runTag]) as unknown);
    expect(inputs(EC2.AttachVolumeCommand)).toEqual([
      { VolumeId: expect.any(String) as unknown, InstanceId: newId, Device: '/dev/sdf' },
    ]);
    expect(inputs(EC2.StopInstancesCommand)).toEqual([{ InstanceIds: [IDS.cn2], Force: false }]);
    expect(inputs(EC2.AssociateAddressCommand)).toEqual([
      { AllocationId: IDS.eip, InstanceId: newId, AllowReassociation: true },
    ]);

    // Waiters poll Describe* until the state is reached.
    const snapshotPolls = events.filter((e) => /^ec2:DescribeSnapshots → /.test(e));
    expect(snapshotPolls.length).toBeGreaterThanOrEqual(3);
    expect(snapshotPolls.at(-1)).toBe('ec2:DescribeSnapshots → completed');
    expect(events.filter((e) => e === `ec2:DescribeInstances ${newId}`).length).toBeGreaterThanOrEqual(2);
    expect(events.filter((e) => e === `ec2:DescribeInstances ${IDS.cn2}`).length).toBeGreaterThanOrEqual(2);

    // Order: kpnd is down only around CreateSnapshot; the launch does not wait for the snapshot.
    expect(at(/^ssh pn1: sudo -n systemctl stop kpnd$/)).toBeLessThan(at(/^ec2:CreateSnapshot /));
    expect(at(/^ec2:CreateSnapshot /)).toBeLessThan(at(/^ssh pn1: sudo -n systemctl start kpnd$/));
    expect(at(/^ssh pn1: sudo -n systemctl start kpnd$/)).toBeLessThan(at(/^ec2:RunInstances/));
    expect(events[at(/^ec2:RunInstances/)]).toBe('ec2:RunInstances (snapshots: pending)');
    expect(at(/^ec2:RunInstances/)).toBeLessThan(at(/^ec2:DescribeSnapshots → completed$/));
    expect(at(/^ec2:DescribeSnapshots → completed$/)).toBeLessThan(at(/^ec2:CreateVolume /));
    // Fencing: cn2 is stopped (and seen stopped) before its EIP moves; kcnd starts after both.
    const stopIndex = at(/^ec2:StopInstances /);
    const associate = at(/^ec2:AssociateAddress /);
    expect(stopIndex).toBeLessThan(associate);
    expect(events.slice(stopIndex, associate)).toContain(`ec2:DescribeInstances ${IDS.cn2}`);
    expect(associate).toBeLessThan(events.lastIndexOf('ssh cn2-replacement: sudo -n systemctl start kcnd'));
    // Fence first (docs/runbooks.md §Snapshot failover): StopInstances answered and cn2 seen stopped before
    // its key is written.
    const install = at(/^ssh cn2-replacement: sudo -n install -D -m 0600 -- \/dev\/stdin .*\/klay\/nodekey$/);
    expect(stopIndex).toBeLessThan(install);
    expect(events.slice(stopIndex, install)).toContain(`ec2:DescribeInstances ${IDS.cn2}`);
    expect(at(/^ssh cn2-replacement: sudo -n systemctl disable kcnd$/)).toBeLessThan(install);
    // A consistent snapshot: sync after kpnd stopped and no kpn is left, before CreateSnapshot.
    expect(at(/^ssh pn1: sudo -n systemctl stop kpnd$/)).toBeLessThan(
      at(/^ssh pn1: sudo -n pgrep -x -- kpn$/),
    );
    expect(at(/^ssh pn1: sudo -n pgrep -x -- kpn$/)).toBeLessThan(at(/^ssh pn1: sudo -n sync$/));
    expect(at(/^ssh pn1: sudo -n sync$/)).toBeLessThan(at(/^ec2:CreateSnapshot /));

    expect(world.instances.get(IDS.cn2)?.state).toBe('stopped');
    expect(world.eip.instanceId).toBe(newId);
    expect(cell.host(NEW_IP).loadedAddress).toBe(CN_ADDRESS);
    expect(await ports.state.role('cn2')).toMatchObject({ instanceId: newId, address: NEW_IP });
  });

  it('lists the tagged resources it left when CreateVolume fails midway', async () => {
    const config = snapshotConfig();
    ec2.on(EC2.CreateVolumeCommand).rejects(awsError('VolumeLimitExceeded'));
    const result = await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: RUN });

    expect(result.status).toBe('failed');
    expect(result.failedStep).toBe('attach-volume');
    expect(result.error).toBeInstanceOf(ExternalError);
    const newId = [...world.instances.keys()].find((i) => i !== IDS.cn2 && i !== IDS.pn1) ?? '';
    const snapshotId = [...world.snapshots.keys()][0] ?? '';
    const rootVolume = world.instances.get(newId)?.devices.get('/dev/xvda') ?? '';
    const message = (result.error as Error).message;
    expect(message).toContain(`Resources this run left (tagged cellops:run-id=${RUN}`);
    expect(message).toContain(`instance ${newId} (running)`);
    expect(message).toContain(`snapshot ${snapshotId} (completed)`);
    expect(message).toContain(`volume ${rootVolume} (in-use)`);
    // findTagged asked EC2 with the run-id tag filter, and the failed CN was never touched.
    const filtered = inputs(EC2.DescribeInstancesCommand).filter((i) => i.Filters !== undefined);
    expect(filtered.at(-1)?.Filters).toEqual([{ Name: 'tag:cellops:run-id', Values: [RUN] }]);
    expect(inputs(EC2.StopInstancesCommand)).toEqual([]);
    expect(inputs(EC2.AssociateAddressCommand)).toEqual([]);
    expect(world.instances.get(IDS.cn2)?.state).toBe('running');
    expect(cell.host('pn1').running).toBe(true);
  });

  it('images the CN with a NoDevice mapping for DATA_DIR and NoReboot, polling DescribeImages until available', async () => {
    const config = snapshotConfig();
    // Imaging reads what the image will hold on the CN, which answers here.
    const cn2 = cell.host('cn2');
    cn2.reachable = true;
    cn2.files.set('/usr/bin/kcn', 'kcn v2.0.0');
    cn2.files.set('/etc/kcnd/conf/kcnd.conf', 'DATA_DIR=/var/kcnd/data\n');
    const result = await runSteps(imageSteps(), { params: { cn: 'cn2' }, config, ports, runId: RUN });
    expect(result.error).toBeUndefined();
    expect(await ports.state.image('cn2')).toMatchObject({
      binarySha256: createHash('sha256').update('kcn v2.0.0').digest('hex'),
      confSha256: createHash('sha256').update('DATA_DIR=/var/kcnd/data\n').digest('hex'),
    });
    const [create] = inputs(EC2.CreateImageCommand);
    expect(create).toMatchObject({
      InstanceId: IDS.cn2,
      NoReboot: true,
      BlockDeviceMappings: [{ DeviceName: '/dev/sdf', NoDevice: '' }],
    });
    expect(create?.Name).toMatch(/^cellops-test-cell-cn2-\d{8}T\d{6}Z$/);
    expect(create?.TagSpecifications?.map((s) => s.ResourceType)).toEqual(['image', 'snapshot']);
    expect(create?.TagSpecifications?.[0]?.Tags).toEqual(expect.arrayContaining([runTag]) as unknown);
    const imageId = (await ports.state.image('cn2'))?.imageId ?? '';
    expect(imageId).toMatch(/^ami-/);
    expect(events.filter((e) => e === `ec2:DescribeImages ${imageId}`).length).toBeGreaterThanOrEqual(3);
  });
});
