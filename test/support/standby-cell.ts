/**
 * A simulated active-standby cell for runbook tests: cn1 (active, holding the VIP), its standby cn1s
 * (which keeps cn1's nodekey backup), and two PNs, over src/sandbox/sim-hosts.ts, with the matching
 * configuration and ports.
 */
import { configSchema } from '../../src/config/schema.js';
import { resolveConfig, type CellopsConfig } from '../../src/config/config.js';
import {
  createSimCell,
  simExternalValidators,
  type SimCell,
  type SimHostSeed,
} from '../../src/sandbox/sim-hosts.js';
import { createSimCloud } from '../../src/sandbox/sim-cloud.js';
import { createMemoryCellState } from '../../src/infra/memory-cell-state.js';
import type { CellState } from '../../src/ports/cell-state.js';
import type { RunbookPorts } from '../../src/runbooks/types.js';
import { nodeAddressFromKey } from '../../src/runbooks/nodekey.js';
import type { FailoverParams } from '../../src/runbooks/failover-params.js';
import { standbyFailoverSteps } from '../../src/runbooks/failover-standby.js';
import { createJumpClock, runSteps } from './run-steps.js';

export const CN1_KEY = '4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318';
export const CN1S_KEY = 'b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291';
export const CN1_ADDRESS = nodeAddressFromKey(CN1_KEY);
export const CN1S_ADDRESS = nodeAddressFromKey(CN1S_KEY);
export const BACKUP_PATH = '/var/cellops/backup/cn1.nodekey';
export const VIP = '10.0.1.100/24';
export const DATA_DIR = '/var/kcnd/data';

export interface StandbyCellOptions {
  /** Content of cn1's backup on cn1s; default cn1's key. `null`: no backup file. */
  readonly backup?: string | null;
  readonly ip?: Record<string, unknown>;
  /** Extra files per host. */
  readonly files?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly hosts?: Partial<Record<string, Partial<SimHostSeed>>>;
  /** Give the standby JSON-RPC (default true). */
  readonly standbyRpc?: boolean;
}

export interface StandbyCell {
  readonly config: CellopsConfig;
  readonly sim: SimCell;
  readonly ports: RunbookPorts;
  readonly state: CellState;
  readonly clock: ReturnType<typeof createJumpClock>;
}

const STATIC_NODES = JSON.stringify([
  'kni://aa@10.0.3.11:32323?discport=0&ntype=pn',
  'kni://bb@10.0.3.12:32323?discport=0&ntype=pn',
]);

export function createStandbyCell(options: StandbyCellOptions = {}): StandbyCell {
  const parsed = configSchema.parse({
    cell: 'test-cell',
    slack: { channel: 'C0TEST', approvers: { users: ['U0AAA'] } },
    ssh: { user: 'ops', privateKey: '/etc/cellops/id_ed25519', knownHosts: '/etc/cellops/known_hosts' },
    nodes: {
      cn1: {
        role: 'cn',
        host: '10.0.1.11',
        rpc: 'http://10.0.1.11:8551',
        failover: {
          mode: 'standby',
          standby: 'cn1s',
          ip: options.ip ?? { method: 'alias', address: VIP, device: 'eth0' },
          nodekeyBackup: { host: 'cn1s', path: BACKUP_PATH },
        },
      },
      cn1s: {
        role: 'standby',
        host: '10.0.1.12',
        ...(options.standbyRpc === false ? {} : { rpc: 'http://10.0.1.12:8551' }),
      },
      pn1: { role: 'pn', host: '10.0.3.11', rpc: 'http://10.0.3.11:8551', dataDir: '/var/kpnd/data' },
      pn2: { role: 'pn', host: '10.0.3.12', rpc: 'http://10.0.3.12:8551', dataDir: '/var/kpnd/data' },
    },
  });
  const config = resolveConfig(parsed);
  const clock = createJumpClock();
  const backup = options.backup === undefined ? CN1_KEY : options.backup;
  const seeds: SimHostSeed[] = [
    {
      name: 'cn1',
      address: '10.0.1.11',
      kind: 'cn',
      nodekey: CN1_KEY,
      devices: { eth0: ['10.0.1.11/24', VIP] },
      files: { ...options.files?.cn1 },
    },
    {
      name: 'cn1s',
      address: '10.0.1.12',
      kind: 'cn',
      nodekey: CN1S_KEY,
      files: {
        [`${DATA_DIR}/static-nodes.json`]: STATIC_NODES,
        ...(backup === null ? {} : { [BACKUP_PATH]: backup }),
        ...options.files?.cn1s,
      },
    },
    {
      name: 'pn1',
      address: '10.0.3.11',
      kind: 'pn',
      nodekey: '11'.repeat(32),
      files: { ...options.files?.pn1 },
    },
    {
      name: 'pn2',
      address: '10.0.3.12',
      kind: 'pn',
      nodekey: '22'.repeat(32),
      files: { ...options.files?.pn2 },
    },
  ].map((seed) => ({ ...seed, ...options.hosts?.[seed.name] }) as SimHostSeed);
  // The council is cn1 plus the outside validators: the standby's own key is not a validator.
  const sim = createSimCell({ clock, hosts: seeds, council: [CN1_ADDRESS, ...simExternalValidators(3)] });
  const state = createMemoryCellState();
  const ports: RunbookPorts = {
    shell: sim.shell,
    rpc: sim.rpc,
    cloud: createSimCloud({ clock }),
    clock,
    state,
  };
  return { config, sim, ports, state, clock };
}

/** The standby failover of cn1 (onto cn1s, not forced) run step by step on `cell` without the engine, as run r1. */
export function runStandbyFailover(
  cell: StandbyCell,
  extra: Partial<Parameters<typeof runSteps<FailoverParams>>[1]> = {},
): ReturnType<typeof runSteps<FailoverParams>> {
  return runSteps(standbyFailoverSteps(), {
    params: { cn: 'cn1', force: false },
    config: cell.config,
    ports: cell.ports,
    runId: 'r1',
    ...extra,
  });
}
