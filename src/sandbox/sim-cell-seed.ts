/**
 * The sandbox's simulated Core Cell (README §Quick start, `src/sandbox`): cn1 active with its standby cn1s
 * (the VIP moves as an `ip addr` alias), cn2 in cloud style (snapshot mode: an EC2 instance in the simulated
 * EC2, an Elastic IP, a recorded machine image), and two PNs, pn1 and pn2, following a chain of 1-second
 * blocks.
 *
 * Its configuration is YAML parsed by src/config/load.ts like a user's file, so the sandbox runs on a
 * configuration the bot would accept in production. Nodekeys are random per process and never shown;
 * the backups the failovers need are in place, so a failover's preflight passes as it would on a cell
 * prepared by `/cell backup-nodekey`.
 *
 * cn2 and pn1 are EC2 instances whose volumes are the hosts' mounted directories (sim-machines.ts links the
 * hosts and the EC2): a snapshot of pn1's data volume carries its chaindata, an instance launched from the
 * CN image boots as a new host at its private IP with kcnd installed (not started at boot) and no nodekey
 * or chaindata, and stopping cn2's instance takes its kcnd down. So cn2's snapshot failover runs end to end.
 *
 * `createSandboxCell` hands out ports that delegate to the current simulation, so `reset()` can re-seed the
 * hosts and the EC2 (same keys, chain height carried on) after a failover and let people try again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { bytesToHex } from '@noble/hashes/utils.js';
import { parseConfigText } from '../config/load.js';
import type { CellopsConfig } from '../config/config.js';
import type { CellState } from '../ports/cell-state.js';
import type { Clock } from '../ports/clock.js';
import type { Cloud } from '../ports/cloud.js';
import type { NodeRpc } from '../ports/node-rpc.js';
import type { Shell } from '../ports/shell.js';
import { nodeAddressFromKey, nodeIdFromKey, nodekeyChecksum, nodekeyProblem } from '../runbooks/nodekey.js';
import {
  createSimCell,
  simExternalValidators,
  type SimCell,
  type SimHostSeed,
  type SimMachineImage,
} from './sim-hosts.js';
import { createSimCloud, type SimCloud, type SimDelays } from './sim-cloud.js';
import { createSimWorldLinks } from './sim-machines.js';

/** People of the sandbox's pretend workspace; the console's user selector offers them. */
export const SANDBOX_USERS = [
  { id: 'U0ALICE', name: 'alice', role: 'operator' },
  { id: 'U0BOB', name: 'bob', role: 'approver' },
  { id: 'U0CAROL', name: 'carol', role: 'approver (on-call group)' },
  { id: 'U0DAVE', name: 'dave', role: 'no cellops role' },
] as const;

/** The on-call user group of the sandbox and its members (approvers through the group). */
export const SANDBOX_USERGROUPS: Readonly<Record<string, readonly string[]>> = {
  S0ONCALL: ['U0CAROL'],
};

export const SANDBOX_CHANNEL = 'C0SANDBOX';
export const SANDBOX_CELL = 'sandbox-core-cell';

/** Addresses and resources of the simulated cell. Documentation ranges: nothing here is ever contacted. */
export const SANDBOX_HOSTS = {
  cn1: '10.0.1.11',
  cn1s: '10.0.1.12',
  cn2: '10.0.2.11',
  pn1: '10.0.3.11',
  pn2: '10.0.3.12',
} as const;
export const SANDBOX_VIP = '10.0.1.100/24';
export const SANDBOX_CN1_BACKUP = '/var/cellops/backup/cn1.nodekey';
export const SANDBOX_CN2_BACKUP = '/var/cellops/backup/cn2.nodekey';
const CN_DATA_DIR = '/var/kcnd/data';
const PN_DATA_DIR = '/var/kpnd/data';
/** Where kcnd's start script reads DATA_DIR (kaia's RPM layout). */
export const SANDBOX_KCND_CONF = '/etc/kcnd/conf/kcnd.conf';
/** The kcn binary of cn2 and its image, whose checksum the image record keeps. */
export const SANDBOX_KCN_BINARY = '/usr/bin/kcn';
/** A node's chain database, a stand-in for LevelDB's files. */
function chaindata(dataDir: string): Record<string, string> {
  return {
    [`${dataDir}/klay/chaindata/CURRENT`]: 'MANIFEST-000001\n',
    [`${dataDir}/klay/chaindata/MANIFEST-000001`]: 'sandbox chain database manifest',
    [`${dataDir}/klay/chaindata/000001.ldb`]: 'sandbox blocks',
  };
}
/** The root file system of cn2 and of its machine image: kcnd's configuration, no keys, no chain. */
const CN_ROOT_FILES: Readonly<Record<string, string>> = {
  [SANDBOX_KCND_CONF]: `NETWORK=mainnet\nDATA_DIR=${CN_DATA_DIR}\nLOG_DIR=/var/log/kcnd\n`,
  [SANDBOX_KCN_BINARY]: 'sandbox kcn v2.0.0 (linux-amd64)\n',
  '/etc/fstab': 'LABEL=/ / ext4 defaults 0 1\n',
};
/** What a machine launched from a CN image runs: kcnd installed but not started at boot. */
const CN_MACHINE: SimMachineImage = {
  kind: 'cn',
  dataDir: CN_DATA_DIR,
  service: 'kcnd',
  startsAtBoot: false,
};
const CLOUD = {
  region: 'ap-northeast-2',
  cn2Instance: 'i-0c2c2c2c2c2c2c2c2',
  cn2Root: 'vol-0c2root',
  cn2Data: 'vol-0c2data',
  pn1Instance: 'i-0a1a1a1a1a1a1a1a1',
  pn1Data: 'vol-0a1data',
  pn1Root: 'vol-0a1root',
  eip: 'eipalloc-0c2c2c2c',
  eipAddress: '203.0.113.25',
  image: 'ami-0c2image',
  subnet: 'subnet-0c2',
  zone: 'ap-northeast-2a',
} as const;

/** The simulated nodes' keys: random per process, never logged or posted. */
export interface SandboxKeys {
  readonly cn1: string;
  readonly cn1s: string;
  readonly cn2: string;
  readonly pn1: string;
  readonly pn2: string;
}

function randomNodekey(): string {
  for (;;) {
    const key = bytesToHex(randomBytes(32));
    if (nodekeyProblem(key) === undefined) return key;
  }
}

export function generateSandboxKeys(): SandboxKeys {
  return {
    cn1: randomNodekey(),
    cn1s: randomNodekey(),
    cn2: randomNodekey(),
    pn1: randomNodekey(),
    pn2: randomNodekey(),
  };
}

/** Monitor settings as they would be written in cellops.yaml (durations as strings). */
export interface SandboxMonitorSettings {
  readonly interval?: string;
  readonly lagBlocks?: number;
  readonly for?: string;
  readonly stall?: string;
  readonly failures?: number;
}

export interface SandboxConfigOptions {
  /** Prefix of every Redis key; the sandbox uses one per process so runs of earlier sandboxes never mix in. */
  readonly redisPrefix: string;
  /** Overrides of the monitor's defaults (tests use faster ones). */
  readonly monitor?: SandboxMonitorSettings;
  /** Approval timeout, e.g. "15m" (the default). */
  readonly approvalTimeout?: string;
  /** Escalation delays; default short ones (30s, 1m, 2m), so a newcomer sees paging happen. */
  readonly escalation?: {
    readonly pageAfter?: string;
    readonly approvalReminder?: string;
    readonly approvalPage?: string;
  };
}

const yamlString = (value: string) => JSON.stringify(value);

/** The sandbox cell's cellops.yaml, as text. */
export function sandboxConfigText(options: SandboxConfigOptions): string {
  const monitor = options.monitor ?? {};
  const monitorLines = [
    monitor.interval === undefined ? undefined : `  interval: ${monitor.interval}`,
    monitor.lagBlocks === undefined ? undefined : `  lagBlocks: ${monitor.lagBlocks}`,
    monitor.for === undefined ? undefined : `  for: ${monitor.for}`,
    monitor.stall === undefined ? undefined : `  stall: ${monitor.stall}`,
    monitor.failures === undefined ? undefined : `  failures: ${monitor.failures}`,
    // Readiness checks run on demand (`/cell check cn1`); on a schedule they would take the cell lock
    // in the middle of someone's try-out.
    '  checkInterval: 0s',
  ].filter((line): line is string => line !== undefined);
  const h = SANDBOX_HOSTS;
  return `# The sandbox's simulated Core Cell (generated by src/sandbox/sim-cell-seed.ts).
cell: ${SANDBOX_CELL}
slack:
  channel: ${SANDBOX_CHANNEL}
  approvers: { users: [U0BOB], usergroups: [S0ONCALL] }
  operators: { users: [U0ALICE] }
  fourEyes: true
  approvals: 1
  approvalTimeout: ${options.approvalTimeout ?? '15m'}
ssh:
  # Never used: the sandbox's hosts are simulated in the process.
  user: ops
  privateKey: /sandbox/no-ssh-key
  knownHosts: /sandbox/no-known-hosts
monitor:
${monitorLines.join('\n')}
aws:
  region: ${CLOUD.region}
# No pager targets: the sandbox records the pages it would send (the console's Pager panel).
escalation:
  pageAfter: ${options.escalation?.pageAfter ?? '30s'}
  approvalReminder: ${options.escalation?.approvalReminder ?? '1m'}
  approvalPage: ${options.escalation?.approvalPage ?? '2m'}
redis:
  prefix: ${yamlString(options.redisPrefix)}
nodes:
  cn1:
    role: cn
    host: ${h.cn1}
    rpc: http://${h.cn1}:8551
    dataDir: ${CN_DATA_DIR}
    failover:
      mode: standby
      standby: cn1s
      ip: { method: alias, address: ${SANDBOX_VIP}, device: eth0 }
      nodekeyBackup: { host: cn1s, path: ${SANDBOX_CN1_BACKUP} }
  cn1s:
    role: standby
    host: ${h.cn1s}
    rpc: http://${h.cn1s}:8551
    dataDir: ${CN_DATA_DIR}
  cn2:
    role: cn
    host: ${h.cn2}
    instanceId: ${CLOUD.cn2Instance}
    dataVolumeId: ${CLOUD.cn2Data}
    rpc: http://${h.cn2}:8551
    dataDir: ${CN_DATA_DIR}
    failover:
      mode: snapshot
      ip: { method: eip, allocationId: ${CLOUD.eip} }
      launch: { instanceType: m6i.2xlarge, subnetId: ${CLOUD.subnet}, securityGroupIds: [sg-0c2c2c2c], keyName: cn }
      snapshotFrom: [pn1]
      nodekeyBackup: { host: pn1, path: ${SANDBOX_CN2_BACKUP} }
  pn1:
    role: pn
    host: ${h.pn1}
    rpc: http://${h.pn1}:8551
    dataDir: ${PN_DATA_DIR}
    instanceId: ${CLOUD.pn1Instance}
    dataVolumeId: ${CLOUD.pn1Data}
  pn2:
    role: pn
    host: ${h.pn2}
    rpc: http://${h.pn2}:8551
    dataDir: ${PN_DATA_DIR}
`;
}

/** The sandbox's configuration, validated exactly as a user's cellops.yaml is. */
export function sandboxConfig(options: SandboxConfigOptions): CellopsConfig {
  return parseConfigText(sandboxConfigText(options), 'sandbox cellops.yaml');
}

const STATIC_NODES = JSON.stringify([
  `kni://pn1@${SANDBOX_HOSTS.pn1}:32323?discport=0&ntype=pn`,
  `kni://pn2@${SANDBOX_HOSTS.pn2}:32323?discport=0&ntype=pn`,
]);

export interface SandboxSeedOptions {
  readonly clock: Clock;
  readonly keys: SandboxKeys;
  /** Block time. Default 1000 ms. */
  readonly blockMs?: number;
  /** Chain height now. Default the simulation's default. */
  readonly startHeight?: number;
  /** Simulated EC2 durations. Default sim-cloud's (tens of seconds). */
  readonly cloudDelays?: Partial<SimDelays>;
  /** How often the simulated EC2's waits look again. Default sim-cloud's (1 s). */
  readonly cloudPollMs?: number;
}

export interface SeededCell {
  readonly sim: SimCell;
  readonly cloud: SimCloud;
}

/** Builds the simulated hosts and EC2 of the sandbox cell: everything healthy, roles as configured. */
export function seedSandboxCell(options: SandboxSeedOptions): SeededCell {
  const { keys, clock } = options;
  const h = SANDBOX_HOSTS;
  const hosts: SimHostSeed[] = [
    {
      name: 'cn1',
      address: h.cn1,
      kind: 'cn',
      nodekey: keys.cn1,
      files: chaindata(CN_DATA_DIR),
      devices: { eth0: [`${h.cn1}/24`, SANDBOX_VIP] },
    },
    {
      name: 'cn1s',
      address: h.cn1s,
      kind: 'cn',
      nodekey: keys.cn1s,
      files: {
        ...chaindata(CN_DATA_DIR),
        [`${CN_DATA_DIR}/static-nodes.json`]: STATIC_NODES,
        [SANDBOX_CN1_BACKUP]: keys.cn1,
      },
    },
    {
      name: 'cn2',
      address: h.cn2,
      kind: 'cn',
      nodekey: keys.cn2,
      files: { ...CN_ROOT_FILES, ...chaindata(CN_DATA_DIR) },
      instanceId: CLOUD.cn2Instance,
      mounts: { '/': CLOUD.cn2Root, [CN_DATA_DIR]: CLOUD.cn2Data },
    },
    {
      name: 'pn1',
      address: h.pn1,
      kind: 'pn',
      nodekey: keys.pn1,
      files: {
        ...chaindata(PN_DATA_DIR),
        [`${PN_DATA_DIR}/static-nodes.json`]: '[]',
        [`${PN_DATA_DIR}/logs/kpnd.out`]: 'kpnd log',
        [SANDBOX_CN2_BACKUP]: keys.cn2,
      },
      instanceId: CLOUD.pn1Instance,
      mounts: { '/': CLOUD.pn1Root, [PN_DATA_DIR]: CLOUD.pn1Data },
    },
    { name: 'pn2', address: h.pn2, kind: 'pn', nodekey: keys.pn2, files: chaindata(PN_DATA_DIR) },
  ];
  // Every image in the sandbox is a CN's (`/cell image` images CNs), so every launch boots a CN.
  const links = createSimWorldLinks(() => CN_MACHINE);
  const sim = createSimCell({
    clock,
    hosts,
    ...(options.blockMs === undefined ? {} : { blockMs: options.blockMs }),
    ...(options.startHeight === undefined ? {} : { startHeight: options.startHeight }),
    // The validators are cn1, cn2 and the outside ones; the standby's own key is not a validator.
    council: [nodeAddressFromKey(keys.cn1), nodeAddressFromKey(keys.cn2), ...simExternalValidators(3)],
    machines: links.machines,
  });
  const cloud = createSimCloud({
    clock,
    region: CLOUD.region,
    ...(options.cloudDelays === undefined ? {} : { delays: options.cloudDelays }),
    ...(options.cloudPollMs === undefined ? {} : { pollMs: options.cloudPollMs }),
    disks: links.disks,
    seed: {
      instances: [
        {
          instanceId: CLOUD.cn2Instance,
          availabilityZone: CLOUD.zone,
          privateIp: h.cn2,
          publicIp: CLOUD.eipAddress,
          imageId: CLOUD.image,
          tags: { Name: 'cn2' },
          volumes: [
            { volumeId: CLOUD.cn2Root, device: '/dev/xvda' },
            { volumeId: CLOUD.cn2Data, device: '/dev/sdf' },
          ],
        },
        {
          instanceId: CLOUD.pn1Instance,
          availabilityZone: CLOUD.zone,
          privateIp: h.pn1,
          tags: { Name: 'pn1' },
          volumes: [
            { volumeId: CLOUD.pn1Root, device: '/dev/xvda' },
            { volumeId: CLOUD.pn1Data, device: '/dev/sdf' },
          ],
        },
      ],
      addresses: [{ allocationId: CLOUD.eip, publicIp: CLOUD.eipAddress, instanceId: CLOUD.cn2Instance }],
      images: [
        {
          imageId: CLOUD.image,
          name: 'cn2 kcnd image (sandbox)',
          // A volume's files are relative to its root.
          rootFiles: Object.fromEntries(Object.entries(CN_ROOT_FILES).map(([p, c]) => [p.slice(1), c])),
        },
      ],
      subnets: { [CLOUD.subnet]: CLOUD.zone },
    },
  });
  links.connect({ cloud, cell: sim });
  return { sim, cloud };
}

/**
 * Records what a prepared cell has in cellops' own state: the nodekey backups (checksum, address and
 * node ID, never the key), cn2's machine image, and every CN role served by its own machine.
 */
export async function recordSandboxState(
  state: CellState,
  keys: SandboxKeys,
  now: number,
  runId = 'sandbox-seed',
): Promise<void> {
  const backups = [
    { cn: 'cn1', host: 'cn1s', path: SANDBOX_CN1_BACKUP, key: keys.cn1 },
    { cn: 'cn2', host: 'pn1', path: SANDBOX_CN2_BACKUP, key: keys.cn2 },
  ];
  for (const b of backups) {
    await state.setNodekeyBackup({
      cn: b.cn,
      host: b.host,
      path: b.path,
      checksum: nodekeyChecksum(b.key),
      nodeAddress: nodeAddressFromKey(b.key),
      nodeId: nodeIdFromKey(b.key),
      at: now,
      runId,
    });
  }
  // The seeded image holds cn2's root files as they are, so the readiness check finds it fresh.
  const sha256 = (path: string) =>
    createHash('sha256')
      .update(CN_ROOT_FILES[path] ?? '')
      .digest('hex');
  await state.setImage({
    cn: 'cn2',
    imageId: CLOUD.image,
    at: now,
    runId,
    binarySha256: sha256(SANDBOX_KCN_BINARY),
    confSha256: sha256(SANDBOX_KCND_CONF),
  });
  // cn1 keeps its standby cn1s; cn2 (snapshot mode) has none.
  for (const [cn, standby] of [
    ['cn1', 'cn1s'],
    ['cn2', undefined],
  ] as const) {
    await state.recordRoles({
      cn,
      servedBy: cn,
      ...(standby === undefined ? {} : { standby }),
      at: now,
      runId,
      by: 'cellops',
      reason: 'sandbox seed',
    });
  }
}

/** Forwards every call to whatever `target()` returns now, so the simulation behind a port can be replaced. */
function forwardTo<T extends object>(target: () => T): T {
  // A Proxy keeps this in step with the port interfaces as they grow; each call binds to the current target.
  return new Proxy({} as T, {
    get(_unused, property) {
      const current = target();
      const value: unknown = Reflect.get(current, property);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(current) : value;
    },
  });
}

export interface SandboxCell {
  readonly shell: Shell;
  readonly rpc: NodeRpc;
  readonly cloud: Cloud;
  /** The simulation as it is now (replaced by `reset`). */
  current(): SeededCell;
  /** Re-seeds every host and the EC2 inventory with the same keys; the chain height carries on. */
  reset(): void;
}

export function createSandboxCell(options: SandboxSeedOptions): SandboxCell {
  let seeded = seedSandboxCell(options);
  return {
    shell: forwardTo(() => seeded.sim.shell),
    rpc: forwardTo(() => seeded.sim.rpc),
    cloud: forwardTo<Cloud>(() => seeded.cloud),
    current: () => seeded,
    reset() {
      seeded = seedSandboxCell({ ...options, startHeight: seeded.sim.chainHeight() });
    },
  };
}
