/**
 * The snapshot-mode failover in the test lab: real OpenSSH hosts in network namespaces, the EC2 adapter
 * speaking HTTP to the local EC2 endpoint (ec2-endpoint.ts), and the endpoint's hooks making EC2's calls
 * happen to the lab:
 *
 * - cn2 is the failed CN (instance SNAPSHOT_IDS.cn2); StopInstances stops its node and takes its link down.
 * - pn1 is the PN to snapshot (volume SNAPSHOT_IDS.pn1Data = its DATA_DIR). CreateSnapshot images that
 *   directory into an ext4 file at that instant (point-in-time); CreateVolume copies the image;
 *   AttachVolume puts it on a loop device and links the configured data device to it on the replacement.
 * - RunInstances hands out cn2r, a host prepared as a fresh instance from the CN image: its own sshd with its
 *   own host keys, which are NOT in known_hosts, its own kcnd.conf (/etc/kcnd only it sees, DATA_DIR its
 *   own directory, as an image's would be) and a node running with a key of its own. Its keys are known
 *   only from the console output the endpoint serves (empty for its first seconds, as after boot).
 * - pn2 keeps cn2's nodekey backup.
 *
 * The replacement mounts the volume at cn2's DATA_DIR path inside its own mount namespace, so the shared
 * lab file system is untouched; `inReplacement` runs a command there to look.
 */
import type { CellopsConfig } from '../../src/config/config.js';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { snapshotFailoverSteps } from '../../src/runbooks/failover-snapshot.js';
import { failoverRunbook } from '../../src/runbooks/failover.js';
import type { SnapshotFailoverTimings } from '../../src/runbooks/failover-timings.js';
import { createRunbooks } from '../../src/runbooks/registry.js';
import type { AnyRunbook } from '../../src/runbooks/types.js';
import { createEc2Cloud } from '../../src/adapters/ec2/ec2-cloud.js';
import { createSystemClock } from '../../src/infra/system-clock.js';
import type { Cloud } from '../../src/ports/cloud.js';
import type { Logger } from '../../src/ports/logger.js';
import { runCommand, startLab, type CommandResult, type Lab } from '../lab/lab.js';
import type { LabConfigObject } from '../lab/lab-config.js';
import { startEc2Endpoint, type Ec2Endpoint, type Ec2EndpointDelays } from './ec2-endpoint.js';

export const SNAPSHOT_IDS = {
  cn2: 'i-0c2000000000000aa',
  cn2Data: 'vol-0c2data',
  pn1: 'i-0a1000000000000aa',
  pn1Data: 'vol-0a1data',
  image: 'ami-0c2image',
  eip: 'eipalloc-0c2',
  subnet: 'subnet-0c2',
  sg: 'sg-0c2',
} as const;
export const REGION = 'ap-northeast-2';

/** Lab waits scaled down: the lab answers in milliseconds what EC2 answers in minutes. */
export const LAB_SNAPSHOT_TIMINGS: Partial<SnapshotFailoverTimings> = {
  pollMs: 500,
  probeMs: 3_000,
  commandMs: 30_000,
  serviceStopMs: 30_000,
  instanceRunningMs: 60_000,
  sshReadyMs: 60_000,
  consoleKeyMs: 60_000,
  snapshotCompletedMs: 60_000,
  volumeMs: 60_000,
  instanceStoppedMs: 60_000,
  cleanMs: 60_000,
  catchUpMs: 60_000,
  fenceSshMs: 5_000,
};

export function snapshotLabRunbooks(timings = LAB_SNAPSHOT_TIMINGS): AnyRunbook[] {
  return createRunbooks().map((r) =>
    r.id === failoverRunbook.id ? { ...failoverRunbook, steps: () => snapshotFailoverSteps({ timings }) } : r,
  );
}

export function startSnapshotLab(): Promise<Lab> {
  return startLab({
    hosts: [
      'cn2',
      {
        name: 'cn2r',
        role: 'cn',
        etc: {
          // The image's kcnd.conf: DATA_DIR is where the image had it, not cn2's (prepare-data changes it).
          'kcnd/conf/kcnd.conf': ({ dataDir }) =>
            `NETWORK=mainnet\nDATA_DIR=${dataDir}\nLOG_DIR=$DATA_DIR/logs\n`,
          fstab: '# /etc/fstab of the replacement (lab)\n',
        },
        // A real replacement has cn2's DATA_DIR path as its own; in the lab that path is under cn2's root.
        helperPaths: ({ labRoot }) => [join(labRoot, 'cn2', 'var', 'kcnd', 'data')],
      },
      'pn1',
      'pn2',
    ],
    vipOn: null,
  });
}

export function backupPath(lab: Lab): string {
  return join(lab.host('pn2').root, 'var', 'cellops', 'backup', 'cn2.nodekey');
}

export function dataDevice(lab: Lab): string {
  return join(lab.host('cn2r').root, 'dev', 'sdf');
}

/**
 * The resolved configuration with the replacement's data device under its lab root: the attach hook
 * links that path to the loop device holding the restored volume.
 */
export function snapshotLabPaths(lab: Lab): (config: CellopsConfig) => CellopsConfig {
  return (config) => {
    const cn2 = config.nodes.cn2;
    const launch = cn2?.failover?.launch;
    if (!cn2?.failover || !launch) return config;
    const failover = { ...cn2.failover, launch: { ...launch, dataDevice: dataDevice(lab) } };
    return { ...config, nodes: { ...config.nodes, cn2: { ...cn2, failover } } };
  };
}

/** Cell state the run starts from: cn2 lags, pn1 holds chaindata, the backup of cn2's key is on pn2. */
export async function prepareSnapshotCell(lab: Lab): Promise<void> {
  const pn1 = lab.host('pn1');
  mkdirSync(join(pn1.dataDir, 'klay', 'chaindata'), { recursive: true });
  writeFileSync(join(pn1.dataDir, 'klay', 'chaindata', 'CURRENT'), 'MANIFEST-000001\n');
  writeFileSync(join(pn1.dataDir, 'klay', 'chaindata', '000001.ldb'), 'blocks');
  mkdirSync(join(backupPath(lab), '..'), { recursive: true, mode: 0o700 });
  writeFileSync(backupPath(lab), lab.host('cn2').initialNodekey, { mode: 0o600 });
  // cn2r boots as a fresh instance: its host key is not known ahead.
  const known = readFileSync(lab.knownHostsPath, 'utf8')
    .split('\n')
    .filter((line) => !line.startsWith(`${lab.host('cn2r').address} `));
  writeFileSync(lab.knownHostsPath, known.join('\n'));
}

export function snapshotOverrides(lab: Lab): LabConfigObject {
  const cn2 = lab.host('cn2');
  return {
    aws: { region: REGION },
    nodes: {
      cn2: {
        instanceId: SNAPSHOT_IDS.cn2,
        dataVolumeId: SNAPSHOT_IDS.cn2Data,
        dataDir: cn2.dataDir,
        failover: {
          mode: 'snapshot',
          ip: { method: 'eip', allocationId: SNAPSHOT_IDS.eip },
          launch: {
            instanceType: 'm6i.2xlarge',
            subnetId: SNAPSHOT_IDS.subnet,
            securityGroupIds: [SNAPSHOT_IDS.sg],
            // A real device name for the schema; snapshotLabPaths points it into the replacement's root.
            dataDevice: '/dev/sdf',
            hostKeys: 'console',
          },
          snapshotFrom: ['pn1'],
          nodekeyBackup: { host: 'pn2', path: backupPath(lab) },
          imageId: SNAPSHOT_IDS.image,
        },
      },
      pn1: { instanceId: SNAPSHOT_IDS.pn1, dataVolumeId: SNAPSHOT_IDS.pn1Data },
    },
  };
}

async function must(argv: readonly string[]): Promise<string> {
  const result = await runCommand(argv);
  if (result.code !== 0) throw new Error(`\`${argv.join(' ')}\` failed: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

export interface SnapshotEndpoint {
  readonly endpoint: Ec2Endpoint;
  /** The Cloud port: the real EC2 adapter aimed at the endpoint. */
  readonly cloud: Cloud;
  close(): Promise<void>;
}

/**
 * The local EC2 wired to the lab. `consoleKeys` replaces what the replacement's console prints (default its
 * real sshd host keys).
 */
export async function startSnapshotEndpoint(
  lab: Lab,
  logger: Logger,
  options: { consoleKeys?: readonly string[]; delays?: Partial<Ec2EndpointDelays> } = {},
): Promise<SnapshotEndpoint> {
  const volumes = join(lab.root, 'ebs');
  mkdirSync(volumes, { recursive: true });
  const loops: string[] = [];
  const replacement = lab.host('cn2r');
  let launched: string | undefined;
  const endpoint = await startEc2Endpoint({
    region: REGION,
    delays: options.delays ?? {},
    seed: {
      instances: [
        {
          instanceId: SNAPSHOT_IDS.cn2,
          privateIp: lab.host('cn2').address,
          devices: { '/dev/xvda': 'vol-0c2root', '/dev/sdf': SNAPSHOT_IDS.cn2Data },
        },
        {
          instanceId: SNAPSHOT_IDS.pn1,
          privateIp: lab.host('pn1').address,
          devices: { '/dev/sdf': SNAPSHOT_IDS.pn1Data },
        },
      ],
      addresses: [{ allocationId: SNAPSHOT_IDS.eip, publicIp: '203.0.113.25', instanceId: SNAPSHOT_IDS.cn2 }],
      images: [{ imageId: SNAPSHOT_IDS.image, name: 'cn2 image' }],
    },
    hooks: {
      launch: ({ instanceId }) => {
        if (launched !== undefined)
          throw new Error(`the lab has one replacement, already handed out as ${launched}`);
        launched = instanceId;
        return { privateIp: replacement.address, hostKeys: replacement.hostKeys.map((k) => k.publicKey) };
      },
      consoleKeys: options.consoleKeys === undefined ? undefined : () => options.consoleKeys ?? [],
      stop: async (instanceId) => {
        if (instanceId !== SNAPSHOT_IDS.cn2) return;
        await lab.stopNode('cn2');
        await lab.makeUnreachable('cn2');
      },
      snapshot: async (volumeId, snapshotId) => {
        if (volumeId !== SNAPSHOT_IDS.pn1Data)
          throw new Error(`the lab only snapshots pn1's data volume, not ${volumeId}`);
        const image = join(volumes, `${snapshotId}.img`);
        await must(['truncate', '-s', '64M', image]);
        await must(['mkfs.ext4', '-q', '-F', '-d', lab.host('pn1').dataDir, image]);
      },
      createVolume: async (snapshotId, volumeId) => {
        await must([
          'cp',
          '--sparse=always',
          join(volumes, `${snapshotId}.img`),
          join(volumes, `${volumeId}.img`),
        ]);
      },
      attach: async (volumeId, _instanceId, device) => {
        const loop = await must(['losetup', '-f', '--show', join(volumes, `${volumeId}.img`)]);
        loops.push(loop);
        mkdirSync(join(device, '..'), { recursive: true });
        rmSync(device, { force: true });
        symlinkSync(loop, device);
      },
    },
  });
  const cloud = createEc2Cloud({
    client: endpoint.client(),
    clock: createSystemClock(),
    logger,
    waiterDelays: { minSeconds: 0.1, maxSeconds: 0.3 },
  });
  return {
    endpoint,
    cloud,
    async close() {
      await endpoint.close();
      // The replacement's sshd (and so its mount namespace) goes with the lab; detach our loop devices now
      // (a still-mounted one is freed when its last mount goes).
      for (const loop of loops) await runCommand(['losetup', '-d', loop]);
    },
  };
}

/** Runs argv as root in the replacement's mount namespace (where its sessions see the mounted volume). */
export function inReplacement(lab: Lab, argv: readonly string[]): Promise<CommandResult> {
  const pid = lab.sshdPid('cn2r');
  if (pid === undefined) throw new Error('cn2r has no sshd');
  return runCommand(['nsenter', '-t', String(pid), '-m', '-n', '--', ...argv]);
}
