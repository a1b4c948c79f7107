/**
 * One simulated cell host: its file system, its daemon (kcnd or kpnd) and its power, as sim-hosts.ts
 * assembles them into a cell. The daemon's start follows kcnd where the runbooks' safety depends on it
 * (key precedence, silent key regeneration, derived BLS key, DATA_DIR from `<service>.conf`); the cell
 * around it (chain height, other hosts, violations) comes in as `CellInternals`.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import type { Clock } from '../ports/clock.js';
import { nodeAddressFromKey, nodekeyProblem } from '../runbooks/nodekey.js';
import { confDataDir, parseKeyFlags } from '../runbooks/kcnd-conf.js';
import type { SimFiles } from './sim-disks.js';

export interface SimHostSeed {
  readonly name: string;
  /** The address SSH reaches it at. */
  readonly address: string;
  /** What the daemon is: kcnd (CN and standby) or kpnd (PN). */
  readonly kind: 'cn' | 'pn';
  /** Default /var/kcnd/data (cn) or /var/kpnd/data (pn). */
  readonly dataDir?: string;
  /** Default kcnd / kpnd. */
  readonly service?: string;
  /** Installed at $DATA_DIR/klay/nodekey with mode 0600. */
  readonly nodekey?: string;
  /** Further files, path → content (mode 0644). */
  readonly files?: Readonly<Record<string, string>>;
  /** Is the daemon running at the start. Default true. */
  readonly running?: boolean;
  /** Device → CIDR addresses. Default `{ eth0: [<address>/24] }`. */
  readonly devices?: Readonly<Record<string, readonly string[]>>;
  /** Is arping installed. Default true. */
  readonly arping?: boolean;
  /** Blocks behind the chain while running. Default 0. */
  readonly lagBlocks?: number;
  /** The EC2 instance the host is (see SimCellOptions.machines). */
  readonly instanceId?: string;
  /** Mount point → volume id, e.g. `{ '/': rootVolume, '/var/kpnd/data': dataVolume }`. */
  readonly mounts?: Readonly<Record<string, string>>;
  /** Whether the daemon starts when the instance boots (systemd enabled). Default true. */
  readonly startsAtBoot?: boolean;
}

export interface SimFile {
  content: string;
  mode: number;
  mtimeMs: number;
}

export interface SimFault {
  /** Matched against the command text. */
  readonly match: RegExp;
  readonly exitCode: number;
  readonly stderr?: string;
  /** Removed after the first match. Default true. */
  readonly once?: boolean;
}

export interface SimHost {
  readonly name: string;
  readonly address: string;
  readonly kind: 'cn' | 'pn';
  readonly dataDir: string;
  readonly service: string;
  /** The EC2 instance it is, if any. */
  readonly instanceId?: string;
  /** Mount point → volume id. */
  readonly mounts: Map<string, string>;
  /** On SSH's network (a fault can cut it off). */
  reachable: boolean;
  /**
   * Cut off from the other CNs (a partition of the consensus network; SSH and its PNs still reach it): it
   * reports 0 CN peers, the other CNs do not count it, and it signs nothing. It still receives blocks
   * through its PNs, so its height follows the chain.
   */
  isolated: boolean;
  arping: boolean;
  lagBlocks: number;
  readonly files: Map<string, SimFile>;
  readonly devices: Map<string, Set<string>>;
  readonly faults: SimFault[];
  isRunning(): boolean;
  /** False while its instance is not running (stopped, stopping, or still booting). */
  isPoweredOn(): boolean;
  /** Address of the key the running daemon loaded; undefined when stopped. */
  loadedAddress(): string | undefined;
  height(): number;
  /** Starts or stops the daemon as `systemctl` would (also for tests: a crash, a restart behind our back). */
  startDaemon(): void;
  stopDaemon(): void;
  /** The running daemon stops following the chain (a stalled node). */
  stall(): void;
  /** Whether a running daemon is stalled. */
  isStalled(): boolean;
  /** A stalled daemon follows the chain again, catching up at once (as after a restart). */
  resume(): void;
  /** Content of a file, or undefined. */
  read(path: string): string | undefined;
  write(path: string, content: string, mode?: number): void;
}

interface Daemon {
  readonly address: string;
  readonly bls: string;
  /** Chain height when it started: it signs only blocks after that. */
  readonly since: number;
}

/** What a host sees of the cell it is in (set up by createSimCell). */
export interface CellInternals {
  /** Brings hosts in line with their instances (set by createSimCell). */
  sync(): void;
  chainHeight(): number;
  hosts(): readonly SimHost[];
  violation(text: string): void;
}

/** A host with what only the simulation sees: its daemon, its power, its files as sim-disks.ts sees them. */
export type SimHostRec = SimHost & {
  daemon?: Daemon;
  /** Its instance runs (always true for a host that is no instance). */
  powered: boolean;
  readonly startsAtBoot: boolean;
  readonly disk: SimFiles;
};

function deriveBls(nodekey: string): string {
  // Stands in for BLS KeyGen over the nodekey: deterministic, 64 hex characters.
  return bytesToHex(sha256(utf8ToBytes(`bls:${nodekey.trim().toLowerCase()}`)));
}

function freshKey(): string {
  for (;;) {
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    const key = bytesToHex(bytes);
    if (nodekeyProblem(key) === undefined) return key;
  }
}

export function createSimHost(seed: SimHostSeed, clock: Clock, cell: CellInternals): SimHostRec {
  const dataDir = seed.dataDir ?? (seed.kind === 'pn' ? '/var/kpnd/data' : '/var/kcnd/data');
  const base = dataDir.replace(/\/+$/, '');
  const service = seed.service ?? (seed.kind === 'pn' ? 'kpnd' : 'kcnd');
  const files = new Map<string, SimFile>();
  const write = (path: string, content: string, mode = 0o644) => {
    files.set(path, { content, mode, mtimeMs: clock.now() });
  };
  if (seed.nodekey !== undefined) write(`${base}/klay/nodekey`, seed.nodekey, 0o600);
  for (const [path, content] of Object.entries(seed.files ?? {})) write(path, content);
  const devices = new Map<string, Set<string>>();
  for (const [device, cidrs] of Object.entries(seed.devices ?? { eth0: [`${seed.address}/24`] }))
    devices.set(device, new Set(cidrs));
  const disk: SimFiles = {
    paths: () => [...files.keys()],
    get: (path) => files.get(path)?.content,
    set: (path, content) => write(path, content, files.get(path)?.mode ?? 0o644),
    delete: (path) => {
      files.delete(path);
    },
    rename: (from, to) => {
      const file = files.get(from);
      if (!file) return;
      files.delete(from);
      files.set(to, file);
    },
  };
  // kcnd's start script sources <service>.conf, whose DATA_DIR is where the daemon keeps everything.
  const daemonDataDir = (): string =>
    confDataDir(files.get(`/etc/${service}/conf/${service}.conf`)?.content ?? '')?.replace(/\/+$/, '') ||
    base;

  let frozenHeight = cell.chainHeight();
  let stalledAt: number | undefined;
  const host: SimHostRec = {
    name: seed.name,
    address: seed.address,
    kind: seed.kind,
    dataDir: base,
    service,
    ...(seed.instanceId === undefined ? {} : { instanceId: seed.instanceId }),
    mounts: new Map(Object.entries(seed.mounts ?? {})),
    powered: true,
    startsAtBoot: seed.startsAtBoot ?? true,
    disk,
    reachable: true,
    isolated: false,
    arping: seed.arping ?? true,
    lagBlocks: seed.lagBlocks ?? 0,
    files,
    devices,
    faults: [],
    isRunning: () => host.daemon !== undefined,
    isPoweredOn: () => host.powered,
    loadedAddress: () => host.daemon?.address,
    height() {
      if (!host.daemon) return frozenHeight;
      if (stalledAt !== undefined) return stalledAt;
      // `lagBlocks` is how far behind a running node is, whatever height it had before.
      return cell.chainHeight() - host.lagBlocks;
    },
    startDaemon() {
      // A machine that is off runs nothing.
      if (host.daemon || !host.powered) return;
      const dir = daemonDataDir();
      // kcn's order: kcnd.conf's --nodekey file, else the legacy $DATA_DIR/nodekey, else klay/nodekey; a
      // missing or malformed key is silently replaced.
      const flagged = parseKeyFlags(
        files.get(`/etc/${service}/conf/${service}.conf`)?.content ?? '',
      ).nodekeyPath;
      const legacy = files.get(`${dir}/nodekey`);
      const loaded =
        flagged === undefined ? (legacy ?? files.get(`${dir}/klay/nodekey`)) : files.get(flagged);
      let key = loaded?.content;
      if (key === undefined || nodekeyProblem(key.slice(0, 64)) !== undefined) {
        key = freshKey();
        write(`${dir}/klay/nodekey`, key, 0o600);
      }
      const blsFile = files.get(`${dir}/bls-nodekey`) ?? files.get(`${dir}/klay/bls-nodekey`);
      let bls = blsFile?.content.trim().replace(/^0x/i, '').toLowerCase();
      if (bls === undefined) {
        bls = deriveBls(key.slice(0, 64));
        write(`${dir}/klay/bls-nodekey`, bls, 0o600);
      }
      const address = nodeAddressFromKey(key.slice(0, 64));
      for (const other of cell.hosts())
        if (other !== host && other.loadedAddress() === address)
          cell.violation(`${host.name} started as ${address} while ${other.name} runs it (double signing)`);
      host.daemon = { address, bls, since: cell.chainHeight() };
      stalledAt = undefined;
    },
    stopDaemon() {
      if (!host.daemon) return;
      frozenHeight = host.height();
      delete host.daemon;
      stalledAt = undefined;
    },
    stall() {
      stalledAt = host.height();
    },
    isStalled: () => host.daemon !== undefined && stalledAt !== undefined,
    resume() {
      stalledAt = undefined;
    },
    read: (path) => files.get(path)?.content,
    write,
  };
  return host;
}
