/**
 * The cell of the snapshot-mode tests: cn2 on EC2 (failed: its host no longer answers), pn1 with its data
 * volume (the snapshot source), pn2 holding cn2's nodekey backup, and the configuration that describes
 * them. Shared by the unit tests (simulated EC2) and the integration test (the real EC2 adapter).
 */
import { configSchema } from '../../src/config/schema.js';
import { resolveConfig, type CellopsConfig } from '../../src/config/config.js';
import type { CellState } from '../../src/ports/cell-state.js';
import { nodeAddressFromKey, nodeIdFromKey, nodekeyChecksum } from '../../src/runbooks/nodekey.js';
import { testKey, type CellHostSeed } from './snapshot-cell.js';

export const CN_KEY = testKey('cn2');
export const CN_ADDRESS = nodeAddressFromKey(CN_KEY);
export const PN1_KEY = testKey('pn1');
export const BACKUP_PATH = '/var/cellops/backup/cn2.nodekey';
export const CHAIN_HEIGHT = 5_000_000;

export const IDS = {
  cn2: 'i-00000000000000c02',
  cn2Root: 'vol-0cn2root',
  cn2Data: 'vol-0cn2data',
  pn1: 'i-00000000000000a01',
  pn1Data: 'vol-0pn1data',
  image: 'ami-0cn2image',
  eip: 'eipalloc-0123',
  subnet: 'subnet-0123',
  sg: 'sg-0123',
} as const;

/** What pn1's DATA_DIR volume holds, relative to its root (the volume is mounted at DATA_DIR). */
export const PN_VOLUME_FILES: Readonly<Record<string, string>> = {
  'klay/chaindata/000001.ldb': 'blocks',
  'klay/chaindata/CURRENT': 'MANIFEST-000001',
  'klay/nodekey': PN1_KEY,
  'klay/static-nodes.json': '[]',
  // A legacy copy of the PN's own key: kcnd would load it before klay/nodekey.
  nodekey: PN1_KEY,
  'logs/kpnd.out': 'log',
  'lost+found/.keep': '',
};

/** kcnd.conf in the CN image, pointing somewhere else than the configured DATA_DIR. */
export const IMAGE_KCND_CONF = 'NETWORK=mainnet\nDATA_DIR=/var/kcnd/data-old\nLOG_DIR=/var/log/kcnd\n';

export function snapshotConfig(failoverExtra: Record<string, unknown> = {}): CellopsConfig {
  return resolveConfig(
    configSchema.parse({
      cell: 'test-cell',
      slack: { channel: 'C0123ALERTS', approvers: { users: ['U0AAA'] } },
      ssh: { user: 'ops', privateKey: '/etc/cellops/id_ed25519', knownHosts: '/etc/cellops/known_hosts' },
      monitor: { lagBlocks: 10 },
      nodes: {
        cn2: {
          role: 'cn',
          host: '10.0.2.11',
          instanceId: IDS.cn2,
          dataVolumeId: IDS.cn2Data,
          dataDir: '/var/kcnd/data',
          failover: {
            mode: 'snapshot',
            ip: { method: 'eip', allocationId: IDS.eip },
            launch: {
              instanceType: 'm6i.2xlarge',
              subnetId: IDS.subnet,
              securityGroupIds: [IDS.sg],
              keyName: 'cn',
            },
            snapshotFrom: ['pn2', 'pn1'],
            nodekeyBackup: { host: 'pn2', path: BACKUP_PATH },
            ...failoverExtra,
          },
        },
        pn1: {
          role: 'pn',
          host: '10.0.3.11',
          dataDir: '/var/kpnd/data',
          service: 'kpnd',
          instanceId: IDS.pn1,
          dataVolumeId: IDS.pn1Data,
        },
        // No data volume configured: never a snapshot source, but it keeps the cell served meanwhile.
        pn2: { role: 'pn', host: '10.0.3.12', dataDir: '/var/kpnd/data', service: 'kpnd' },
      },
    }),
  );
}

export function cellHostSeeds(): CellHostSeed[] {
  return [
    {
      name: 'cn2',
      address: '10.0.2.11',
      service: 'kcnd',
      dataDir: '/var/kcnd/data',
      instanceId: IDS.cn2,
      reachable: false,
      files: { '/var/kcnd/data/klay/nodekey': CN_KEY },
    },
    {
      name: 'pn1',
      address: '10.0.3.11',
      service: 'kpnd',
      dataDir: '/var/kpnd/data',
      instanceId: IDS.pn1,
      files: { '/var/kpnd/data/klay/nodekey': PN1_KEY },
    },
    {
      name: 'pn2',
      address: '10.0.3.12',
      service: 'kpnd',
      dataDir: '/var/kpnd/data',
      files: { [BACKUP_PATH]: CN_KEY, '/var/kpnd/data/klay/nodekey': testKey('pn2') },
    },
  ];
}

/** What an instance launched from the CN image has: kcnd enabled at boot, DATA_DIR on the root volume. */
export const REPLACEMENT_SEED: Omit<CellHostSeed, 'name' | 'address'> = {
  service: 'kcnd',
  dataDir: '/var/kcnd/data',
  running: true,
  files: { '/etc/kcnd/conf/kcnd.conf': IMAGE_KCND_CONF, '/etc/fstab': '' },
};

export async function recordBackup(state: CellState): Promise<void> {
  await state.setNodekeyBackup({
    cn: 'cn2',
    host: 'pn2',
    path: BACKUP_PATH,
    checksum: nodekeyChecksum(CN_KEY),
    nodeAddress: CN_ADDRESS,
    nodeId: nodeIdFromKey(CN_KEY),
    at: Date.UTC(2026, 10, 1),
    runId: 'setup',
  });
}
