import { describe, expect, it } from 'vitest';
import { HostError } from '../../../src/errors.js';
import { sh } from '../../../src/ports/shell-command.js';
import { nodeAddressFromKey } from '../../../src/runbooks/nodekey.js';
import {
  SNAPSHOT_OPERATIONS,
  dataLayout,
  keepOnlyChaindata,
  mountDataVolume,
  setConfDataDir,
} from '../../../src/runbooks/snapshot-ops.js';
import { createSimCloud } from '../../../src/sandbox/sim-cloud.js';
import { actOutDiskOperation } from '../../../src/sandbox/sim-disks.js';
import { createSimCell, type SimMachineImage } from '../../../src/sandbox/sim-hosts.js';
import { createSimWorldLinks } from '../../../src/sandbox/sim-machines.js';
import { createJumpClock } from '../../support/run-steps.js';

const CN_KEY = '4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318';
const PN_KEY = 'b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291';
const TAGS = { 'cellops:run-id': 'run-1' };
const CONF = '/etc/kcnd/conf/kcnd.conf';
const CN_MACHINE: SimMachineImage = { kind: 'cn', dataDir: '/var/kcnd/data', service: 'kcnd' };

/** cn2 and pn1 on EC2 instances whose volumes are their mounted directories, linked as the sandbox does. */
function world(machine: SimMachineImage = CN_MACHINE) {
  const clock = createJumpClock();
  const links = createSimWorldLinks(() => machine);
  const sim = createSimCell({
    clock,
    machines: links.machines,
    hosts: [
      {
        name: 'cn2',
        address: '10.0.2.11',
        kind: 'cn',
        nodekey: CN_KEY,
        files: { [CONF]: 'DATA_DIR=/var/kcnd/data\n', '/var/kcnd/data/klay/chaindata/CURRENT': 'cn2' },
        instanceId: 'i-cn2',
        mounts: { '/': 'vol-cn2root', '/var/kcnd/data': 'vol-cn2data' },
      },
      {
        name: 'pn1',
        address: '10.0.3.11',
        kind: 'pn',
        nodekey: PN_KEY,
        files: {
          '/var/kpnd/data/klay/chaindata/CURRENT': 'pn1 blocks',
          '/var/kpnd/data/logs/kpnd.out': 'log',
          '/var/backup/other.key': 'outside the data volume',
        },
        instanceId: 'i-pn1',
        mounts: { '/': 'vol-pn1root', '/var/kpnd/data': 'vol-pn1data' },
      },
    ],
  });
  const cloud = createSimCloud({
    clock,
    region: 'sim-1',
    delays: { instanceStart: 10_000, instanceStop: 5_000, snapshot: 20_000, volumeCreate: 1_000 },
    disks: links.disks,
    seed: {
      instances: [
        {
          instanceId: 'i-cn2',
          privateIp: '10.0.2.11',
          volumes: [
            { volumeId: 'vol-cn2root', device: '/dev/xvda' },
            { volumeId: 'vol-cn2data', device: '/dev/sdf' },
          ],
        },
        {
          instanceId: 'i-pn1',
          privateIp: '10.0.3.11',
          volumes: [
            { volumeId: 'vol-pn1root', device: '/dev/xvda' },
            { volumeId: 'vol-pn1data', device: '/dev/sdf' },
          ],
        },
      ],
      images: [
        { imageId: 'ami-cn', name: 'cn', rootFiles: { [CONF.slice(1)]: 'DATA_DIR=/var/kcnd/elsewhere\n' } },
      ],
    },
  });
  links.connect({ cloud, cell: sim });
  const ops = { shell: sim.shell, commandTimeoutMs: 1_000 };
  return { clock, sim, cloud, ops };
}

async function launch(w: ReturnType<typeof world>, imageId = 'ami-cn') {
  const info = await w.cloud.runInstance({
    imageId,
    instanceType: 'm6i.large',
    subnetId: 'subnet-1',
    securityGroupIds: ['sg-1'],
    tags: TAGS,
  });
  return { instanceId: info.instanceId, host: { name: 'replacement', address: info.privateIp ?? '' } };
}

describe('simulated hosts on simulated EC2', () => {
  it('boots a launched instance as a host at its private IP, answering SSH only once it runs', async () => {
    const w = world();
    const { instanceId, host } = await launch(w);

    await expect(w.sim.shell.exec(host, sh`true`)).rejects.toBeInstanceOf(HostError);
    w.clock.advance(10_000);
    expect((await w.sim.shell.exec(host, sh`true`)).exitCode).toBe(0);
    const machine = w.sim.host(instanceId);
    expect(machine.address).toBe(host.address);
    // kcnd installed, not started at boot, and no key and no chain until someone puts them there.
    expect(machine.isRunning()).toBe(false);
    expect(machine.read(CONF)).toBe('DATA_DIR=/var/kcnd/elsewhere\n');
    expect([...machine.files.keys()].filter((p) => p.startsWith('/var/kcnd/'))).toEqual([]);
  });

  it('runs the daemon at boot when the image has it enabled, with a fresh key of its own', async () => {
    const w = world({ ...CN_MACHINE, startsAtBoot: true });
    const { instanceId } = await launch(w);
    w.clock.advance(10_000);
    const machine = w.sim.host(instanceId);
    expect(machine.isRunning()).toBe(true);
    expect(machine.loadedAddress()).not.toBe(nodeAddressFromKey(CN_KEY));
    expect(machine.read('/var/kcnd/elsewhere/klay/nodekey')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('takes the daemon of a stopped instance down with it and makes it unreachable', async () => {
    const w = world();
    await w.cloud.stopInstance('i-cn2');
    const cn2 = w.sim.host('cn2');
    expect(cn2.isPoweredOn()).toBe(false);
    expect(cn2.isRunning()).toBe(false);
    await expect(w.sim.shell.exec(cn2, sh`sudo -n systemctl is-active kcnd`)).rejects.toBeInstanceOf(
      HostError,
    );
    const endpoint = { name: 'cn2', host: cn2, metricsUrl: 'http://10.0.2.11:61001/metrics', dataDir: '/x' };
    await expect(w.sim.rpc.health({ ...endpoint, binary: 'kcn' }, { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'rpc_unreachable',
    });
    // Nothing starts on a machine that is off.
    cn2.startDaemon();
    expect(cn2.isRunning()).toBe(false);
  });

  it("records double signing when a stopped CN's instance boots again while another machine runs its key", async () => {
    const w = world();
    const { instanceId } = await launch(w);
    await w.cloud.stopInstance('i-cn2');
    w.clock.advance(10_000);
    const replacement = w.sim.host(instanceId);
    replacement.write('/var/kcnd/elsewhere/klay/nodekey', CN_KEY, 0o600);
    replacement.startDaemon();
    expect(w.sim.violations).toEqual([]);

    w.cloud.setInstanceState('i-cn2', 'running');
    expect(w.sim.host('cn2').isRunning()).toBe(true);
    expect(w.sim.violations).toEqual([
      expect.stringContaining(`cn2 started as ${nodeAddressFromKey(CN_KEY)} while ${instanceId} runs it`),
    ]);
  });

  it('snapshots what is on the volume when the snapshot starts, not what is written after', async () => {
    const w = world();
    const { snapshotId } = await w.cloud.createSnapshot('vol-pn1data', 'pn1', TAGS);
    w.sim.host('pn1').write('/var/kpnd/data/klay/chaindata/000002.ldb', 'written after');
    w.clock.advance(20_000);
    const { volumeId } = await w.cloud.createVolume(snapshotId, 'sim-1a', TAGS);

    const files = w.cloud.volumeFiles(volumeId) ?? {};
    expect(Object.keys(files).sort()).toEqual([
      'klay/bls-nodekey',
      'klay/chaindata/CURRENT',
      'klay/nodekey',
      'logs/kpnd.out',
    ]);
    expect(files['klay/nodekey']).toBe(PN_KEY);
    // The root volume's files are not on the data volume, and the other way round.
    expect(w.cloud.volumeFiles('vol-pn1root')).toEqual({ 'var/backup/other.key': 'outside the data volume' });
  });

  it('mounts a volume made from a PN snapshot only once attached, and leaves its chaindata under DATA_DIR', async () => {
    const w = world();
    const { snapshotId } = await w.cloud.createSnapshot('vol-pn1data', 'pn1', TAGS);
    const { instanceId, host } = await launch(w);
    w.clock.advance(20_000);
    const { volumeId } = await w.cloud.createVolume(snapshotId, 'sim-1a', TAGS);
    w.clock.advance(1_000);

    await expect(mountDataVolume(w.ops, host, volumeId, '/dev/sdf', '/var/kcnd/data')).rejects.toThrow(
      /exit status 3: no block device/,
    );
    await w.cloud.attachVolume(volumeId, instanceId, '/dev/sdf');
    w.clock.advance(2_000);
    expect(await mountDataVolume(w.ops, host, volumeId, '/dev/sdf', '/var/kcnd/data')).toBe(
      `mounted ${volumeId} at /var/kcnd/data`,
    );
    expect(await keepOnlyChaindata(w.ops, host, '/var/kcnd/data')).toEqual([
      'chaindata found at /var/kcnd/data/klay/chaindata',
      'removed: klay logs',
      'kept: /var/kcnd/data/klay/chaindata',
    ]);
    expect(await setConfDataDir(w.ops, host, '/var/kcnd/data')).toEqual({
      previous: '/var/kcnd/elsewhere',
      changed: true,
    });
    expect(await dataLayout(w.ops, host, '/var/kcnd/data')).toEqual({
      mounted: true,
      hasChaindata: true,
      strayTop: [],
      strayKlay: [],
    });

    const machine = w.sim.host(instanceId);
    expect(machine.read('/var/kcnd/data/klay/chaindata/CURRENT')).toBe('pn1 blocks');
    expect(machine.read('/etc/fstab')).toContain(`UUID=${volumeId} /var/kcnd/data ext4 defaults,nofail 0 2`);
    // kcnd takes DATA_DIR from kcnd.conf: it loads the key installed there.
    machine.write('/var/kcnd/data/klay/nodekey', CN_KEY, 0o600);
    machine.startDaemon();
    expect(machine.loadedAddress()).toBe(nodeAddressFromKey(CN_KEY));
    // What the machine writes on the mounted volume is the volume's content now.
    expect(w.cloud.volumeFiles(volumeId)?.['klay/nodekey']).toBe(CN_KEY);
  });

  it("images a CN's root volume without its data volume, and boots launches from it with that root", async () => {
    const w = world();
    const { imageId } = await w.cloud.createImage({
      instanceId: 'i-cn2',
      name: 'cn2 image',
      description: 'cn2',
      excludeDevices: ['/dev/sdf'],
      tags: TAGS,
    });
    await expect(launch(w, imageId)).rejects.toMatchObject({ code: 'ec2_incorrect_state' });
    w.clock.advance(45_000);
    const { instanceId } = await launch(w, imageId);
    w.clock.advance(10_000);
    const machine = w.sim.host(instanceId);
    expect(machine.read(CONF)).toBe('DATA_DIR=/var/kcnd/data\n');
    expect(machine.read('/var/kcnd/data/klay/nodekey')).toBeUndefined();
    expect(machine.read('/var/kcnd/data/klay/chaindata/CURRENT')).toBeUndefined();
  });

  it('acts out every cellops-* operation of the snapshot failover', () => {
    const machine = {
      files: {
        paths: () => [],
        get: () => undefined,
        set: () => undefined,
        delete: () => undefined,
        rename: () => undefined,
      },
      mounts: new Map<string, string>(),
      attachedVolume: () => undefined,
    };
    for (const name of SNAPSHOT_OPERATIONS)
      expect(actOutDiskOperation(machine, name, ['/x', '/y', '/z']).exitCode).not.toBe(127);
    expect(actOutDiskOperation(machine, 'format-disk', []).exitCode).toBe(127);
  });
});
