/**
 * Simulated cell hosts behind the Shell and NodeRpc ports, for runbook unit tests and the sandbox.
 *
 * Each host has a file system (a map of absolute paths), one daemon (kcnd or kpnd) that is running or not,
 * IPv4 addresses per network device, and a reachable flag. The Shell interprets exactly the command forms
 * that src/runbooks/node-ops.ts builds — every one `sudo -n <tool> <args>` — and answers anything else with
 * exit status 127, so a runbook that drifts from those forms fails loudly here instead of on a real node.
 *
 * The daemon behaves like kcnd where the runbooks' safety depends on it: at start it loads
 * `$DATA_DIR/nodekey` when present (legacy precedence) else `$DATA_DIR/klay/nodekey`, silently generates
 * and saves a fresh key when the file is missing or malformed, and derives a missing bls-nodekey. Its
 * height follows a shared chain while it runs; it signs blocks when its address is in the council and its
 * BLS key is the registered one. Two running daemons with one address are recorded as a violation.
 *
 * Hosts may be EC2 instances (`machines`, linked to sim-cloud.ts by sim-machines.ts): a host whose instance
 * is not running runs no daemon and answers neither SSH nor probes; an instance launched from an image
 * becomes a host at its private IP, booting what the image holds; a volume mounted on a host is the files
 * below its mount point, which is what a snapshot of it captures. The snapshot failover's `cellops-*`
 * scripts are acted out by sim-disks.ts, and the daemon takes DATA_DIR from its `<service>.conf` when
 * there is one, as kcnd's start script does.
 *
 * Time comes from the injected Clock (heights are computed when read), so a manual clock drives it.
 *
 * This module assembles the cell; one host (files, daemon, power) is sim-host.ts, the Shell port
 * sim-shell.ts with its command interpreter sim-shell-commands.ts, and the NodeRpc port sim-node-rpc.ts.
 */
import type { Clock } from '../ports/clock.js';
import type { HostRef, Shell } from '../ports/shell.js';
import type { NodeRpc } from '../ports/node-rpc.js';
import { mountedVolumeFiles } from './sim-disks.js';
import {
  createSimHost,
  type CellInternals,
  type SimHost,
  type SimHostRec,
  type SimHostSeed,
} from './sim-host.js';
import { createSimNodeRpc } from './sim-node-rpc.js';
import { createSimShell, type SimCommand } from './sim-shell.js';

export type { SimFault, SimFile, SimHost, SimHostSeed } from './sim-host.js';
export type { SimCommand } from './sim-shell.js';

/** What a machine launched from an image is at first boot. */
export interface SimMachineImage {
  readonly kind: 'cn' | 'pn';
  readonly dataDir?: string;
  readonly service?: string;
  /** The root file system, path → content. */
  readonly files?: Readonly<Record<string, string>>;
  /** Whether the daemon starts at boot. Default false. */
  readonly startsAtBoot?: boolean;
}

/** An instance launched after the hosts were made, booting or running. */
export interface SimLaunchedMachine {
  readonly instanceId: string;
  readonly privateIp: string;
  readonly image: SimMachineImage;
  /** Its root volume, mounted at `/`. */
  readonly rootVolumeId?: string;
  /** What is on the root volume at first boot (from the image), relative to `/`; default the image's `files`. */
  rootFiles?(): Readonly<Record<string, string>> | undefined;
}

/** The EC2 side of the hosts (sim-machines.ts links a SimCloud). */
export interface SimMachines {
  /**
   * Whether the instance is running; a host whose instance is not runs nothing and answers nothing.
   * Undefined when the EC2 side does not know the instance: the host is left as it is.
   */
  isRunning(instanceId: string): boolean | undefined;
  /** Instances that are pending or running; each becomes a host named by its instance id. */
  launched(): readonly SimLaunchedMachine[];
  /** The files of a volume attached to the instance and in use, relative to its root; else undefined. */
  attachedVolume(instanceId: string, volumeId: string): Readonly<Record<string, string>> | undefined;
}

export interface SimCellOptions {
  readonly clock: Clock;
  readonly hosts: readonly SimHostSeed[];
  /** Block time. Default 1000 ms (Kaia's target). */
  readonly blockMs?: number;
  /** Chain height at the clock's current time. Default 1 000 000. */
  readonly startHeight?: number;
  /** Validators outside the simulated hosts, always signing. Default 3. */
  readonly externalValidators?: number;
  /**
   * Addresses of the council. Default: the addresses of the CN-kind hosts that are running at the start
   * with a valid key, plus the external validators. Their registered BLS key is the one they start with.
   */
  readonly council?: readonly string[];
  /** The instances behind hosts with an `instanceId`, and the ones launched later. */
  readonly machines?: SimMachines;
}

export interface SimCell {
  readonly shell: Shell;
  readonly rpc: NodeRpc;
  host(name: string): SimHost;
  /** Every host, the launched ones included. */
  hosts(): readonly SimHost[];
  /** The files of a volume mounted on a host (relative to its root), or undefined when none has it. */
  volumeFiles(volumeId: string): Record<string, string> | undefined;
  chainHeight(): number;
  readonly commands: readonly SimCommand[];
  /** Every moment two running daemons had one node address (what fencing exists to prevent). */
  readonly violations: readonly string[];
}

const DEFAULT_START_HEIGHT = 1_000_000;

/** Addresses of the simulated validators outside the cell, for tests that set the council themselves. */
export function simExternalValidators(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `0x${(i + 1).toString(16).padStart(40, 'e')}`);
}

/** A volume's files (relative to its root) as absolute paths of the machine it is the root of. */
function rooted(files: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(files).map(([path, content]) => [`/${path.replace(/^\/+/, '')}`, content]),
  );
}
export function createSimCell(options: SimCellOptions): SimCell {
  const { clock, machines } = options;
  const blockMs = options.blockMs ?? 1_000;
  const t0 = clock.now();
  const startHeight = options.startHeight ?? DEFAULT_START_HEIGHT;
  const hosts = new Map<string, SimHostRec>();
  const commands: SimCommand[] = [];
  const violations: string[] = [];
  const internals: CellInternals = {
    sync: () => undefined,
    chainHeight: () => startHeight + Math.floor((clock.now() - t0) / blockMs),
    hosts: () => [...hosts.values()],
    violation: (text) => violations.push(text),
  };
  for (const seed of options.hosts) hosts.set(seed.name, createSimHost(seed, clock, internals));
  for (const seed of options.hosts) {
    const host = hosts.get(seed.name);
    if (!host || !(seed.running ?? true)) continue;
    host.startDaemon();
    // Running before the simulation began: it signed the blocks before too.
    if (host.daemon) host.daemon = { ...host.daemon, since: -1 };
  }

  const sync = (): void => {
    if (machines) syncWithMachines(hosts, machines, clock, internals);
  };
  // Before any daemon starts: instances stopped meanwhile take theirs down first.
  internals.sync = sync;
  sync();

  const externals = simExternalValidators(options.externalValidators ?? 3);
  const registeredBls = new Map<string, string>();
  for (const host of hosts.values())
    if (host.kind === 'cn' && host.daemon) registeredBls.set(host.daemon.address, host.daemon.bls);
  const council = options.council ?? [...registeredBls.keys(), ...externals];

  const hostOf = (ref: HostRef): SimHostRec => {
    sync();
    // SSH and probes go to the address; the name is a label (the runbooks call a replacement
    // "cn2-replacement", and fence the failed CN by the role's name at whatever address served it).
    const host =
      (ref.address === undefined ? undefined : [...hosts.values()].find((h) => h.address === ref.address)) ??
      hosts.get(ref.name);
    if (!host) throw new Error(`sim: no simulated host ${ref.name}`);
    return host;
  };

  return {
    shell: createSimShell({
      hostOf,
      attachedVolume: (instanceId, volumeId) => machines?.attachedVolume(instanceId, volumeId),
      commands,
    }),
    rpc: createSimNodeRpc({ hostOf, hosts: () => [...hosts.values()], council, externals, registeredBls }),
    host(name) {
      sync();
      const host = hosts.get(name);
      if (!host) throw new Error(`sim: no simulated host ${name}`);
      return host;
    },
    hosts() {
      sync();
      return [...hosts.values()];
    },
    // No sync here: the cloud asks while the hosts sync with it, and a volume is mounted only by a command.
    volumeFiles(volumeId) {
      for (const host of hosts.values())
        for (const [mountPoint, mounted] of host.mounts)
          if (mounted === volumeId)
            return mountedVolumeFiles({ files: host.disk, mounts: host.mounts }, mountPoint);
      return undefined;
    },
    chainHeight: () => internals.chainHeight(),
    commands,
    violations,
  };
}

/**
 * Brings the hosts in line with their instances: a launched instance becomes a host (named by its id,
 * off until it runs), an instance that stopped takes its daemon down, one that started boots it. Run at
 * every entry point, since sim-cloud's states change with the clock, not by events.
 */
function syncWithMachines(
  hosts: Map<string, SimHostRec>,
  machines: SimMachines,
  clock: Clock,
  internals: CellInternals,
): void {
  const known = new Set([...hosts.values()].map((h) => h.instanceId));
  for (const launched of machines.launched()) {
    if (known.has(launched.instanceId)) continue;
    const { image } = launched;
    const host = createSimHost(
      {
        name: launched.instanceId,
        address: launched.privateIp,
        kind: image.kind,
        ...(image.dataDir === undefined ? {} : { dataDir: image.dataDir }),
        ...(image.service === undefined ? {} : { service: image.service }),
        files: rooted(launched.rootFiles?.() ?? image.files ?? {}),
        instanceId: launched.instanceId,
        ...(launched.rootVolumeId === undefined ? {} : { mounts: { '/': launched.rootVolumeId } }),
        startsAtBoot: image.startsAtBoot ?? false,
      },
      clock,
      internals,
    );
    host.powered = false;
    hosts.set(host.name, host);
  }
  for (const host of hosts.values()) {
    if (host.instanceId === undefined) continue;
    const on = machines.isRunning(host.instanceId);
    if (on === undefined || on === host.powered) continue;
    if (on) {
      host.powered = true;
      if (host.startsAtBoot) host.startDaemon();
    } else {
      // Powered off (stopped, or forced): the daemon dies with the machine.
      host.stopDaemon();
      host.powered = false;
    }
  }
}
