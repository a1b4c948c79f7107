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
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import type { Clock } from '../ports/clock.js';
import type { ExecOptions, ExecResult, HostRef, Shell } from '../ports/shell.js';
import type { ShellCommand } from '../ports/shell-command.js';
import type {
  BlockConsensusInfo,
  NodeEndpoint,
  NodeHealth,
  NodeRpc,
  ProbeOptions,
} from '../ports/node-rpc.js';
import { ExternalError, HostError } from '../errors.js';
import { nodeAddressFromKey, nodekeyProblem } from '../runbooks/nodekey.js';
import { confDataDir, parsePrivilegedScript } from '../runbooks/snapshot-ops.js';
import { actOutDiskOperation, mountedVolumeFiles, type SimFiles } from './sim-disks.js';

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

export interface SimCommand {
  readonly host: string;
  readonly command: string;
  /** Bytes of standard input; the content is never kept (it may be a key). */
  readonly stdinBytes: number;
  readonly exitCode: number;
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

interface Daemon {
  readonly address: string;
  readonly bls: string;
  /** Chain height when it started: it signs only blocks after that. */
  readonly since: number;
}

const DEFAULT_START_HEIGHT = 1_000_000;

/** Addresses of the simulated validators outside the cell, for tests that set the council themselves. */
export function simExternalValidators(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `0x${(i + 1).toString(16).padStart(40, 'e')}`);
}

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

/** Splits a command into words the way sh would for the forms we build: words, '…' quotes, \x escapes. */
function shellWords(command: string): string[] | undefined {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  for (let i = 0; i < command.length; i++) {
    const c = command[i] ?? '';
    if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) return undefined;
      current += command.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '\\') {
      current += command[i + 1] ?? '';
      inWord = true;
      i += 1;
    } else if (c === ' ' || c === '\t') {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else if (/[;&|<>$`"(){}*?\n]/.test(c)) {
      // Anything beyond plain words is outside the forms the runbooks build.
      return undefined;
    } else {
      current += c;
      inWord = true;
    }
  }
  if (inWord) words.push(current);
  return words;
}

/** A host with what only this module sees: its daemon, its power, its files as sim-disks.ts sees them. */
type HostRec = SimHost & {
  daemon?: Daemon;
  /** Its instance runs (always true for a host that is no instance). */
  powered: boolean;
  readonly startsAtBoot: boolean;
  readonly disk: SimFiles;
};

function createHost(seed: SimHostSeed, clock: Clock, cell: CellInternals): HostRec {
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
  const host: HostRec = {
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
      // kcnd's order: the legacy $DATA_DIR/nodekey wins; a missing or malformed key is silently replaced.
      const legacy = files.get(`${dir}/nodekey`);
      const loaded = legacy ?? files.get(`${dir}/klay/nodekey`);
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

/** A volume's files (relative to its root) as absolute paths of the machine it is the root of. */
function rooted(files: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(files).map(([path, content]) => [`/${path.replace(/^\/+/, '')}`, content]),
  );
}

interface CellInternals {
  /** Brings hosts in line with their instances (set by createSimCell). */
  sync(): void;
  chainHeight(): number;
  hosts(): readonly SimHost[];
  violation(text: string): void;
}

interface Outcome {
  readonly exitCode: number;
  readonly stdout?: string;
  readonly stderr?: string;
}

export function createSimCell(options: SimCellOptions): SimCell {
  const { clock } = options;
  const blockMs = options.blockMs ?? 1_000;
  const t0 = clock.now();
  const startHeight = options.startHeight ?? DEFAULT_START_HEIGHT;
  const hosts = new Map<string, HostRec>();
  const commands: SimCommand[] = [];
  const violations: string[] = [];
  const internals: CellInternals = {
    sync: () => undefined,
    chainHeight: () => startHeight + Math.floor((clock.now() - t0) / blockMs),
    hosts: () => [...hosts.values()],
    violation: (text) => violations.push(text),
  };
  for (const seed of options.hosts) hosts.set(seed.name, createHost(seed, clock, internals));
  for (const seed of options.hosts) {
    const host = hosts.get(seed.name);
    if (!host || !(seed.running ?? true)) continue;
    host.startDaemon();
    // Running before the simulation began: it signed the blocks before too.
    if (host.daemon) host.daemon = { ...host.daemon, since: -1 };
  }

  const { machines } = options;
  /**
   * Brings the hosts in line with their instances: a launched instance becomes a host (named by its id,
   * off until it runs), an instance that stopped takes its daemon down, one that started boots it. Run at
   * every entry point, since sim-cloud's states change with the clock, not by events.
   */
  const sync = (): void => {
    if (!machines) return;
    const known = new Set([...hosts.values()].map((h) => h.instanceId));
    for (const launched of machines.launched()) {
      if (known.has(launched.instanceId)) continue;
      const { image } = launched;
      const host = createHost(
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
  };
  // Before any daemon starts: instances stopped meanwhile take theirs down first.
  internals.sync = sync;
  sync();

  const externals = simExternalValidators(options.externalValidators ?? 3);
  const registeredBls = new Map<string, string>();
  for (const host of hosts.values())
    if (host.kind === 'cn' && host.daemon) registeredBls.set(host.daemon.address, host.daemon.bls);
  const council = options.council ?? [...registeredBls.keys(), ...externals];

  const hostOf = (ref: { name: string; address?: string }): HostRec => {
    sync();
    // SSH and probes go to the address; the name is a label (the runbooks call a replacement
    // "cn2-replacement", and fence the failed CN by the role's name at whatever address served it).
    const host =
      (ref.address === undefined ? undefined : [...hosts.values()].find((h) => h.address === ref.address)) ??
      hosts.get(ref.name);
    if (!host) throw new Error(`sim: no simulated host ${ref.name}`);
    return host;
  };

  const signs = (host: HostRec): boolean =>
    host.kind === 'cn' &&
    host.daemon !== undefined &&
    !host.isolated &&
    council.includes(host.daemon.address) &&
    registeredBls.get(host.daemon.address) === host.daemon.bls;

  const interpret = (host: SimHost, words: string[], stdin: string | undefined): Outcome => {
    if (words[0] !== 'sudo')
      return { exitCode: 1, stderr: `sim: ${words[0] ?? ''}: privileged commands must run through sudo -n` };
    const args = words[1] === '-n' ? words.slice(2) : words.slice(1);
    const [tool, ...rest] = args;
    const path = (p: string | undefined) => (p !== undefined && p.startsWith('/') ? p : undefined);
    const missing = (tool: string, p: string): Outcome => ({
      exitCode: 1,
      stderr: `${tool}: ${p}: No such file or directory`,
    });
    const isDir = (p: string) =>
      [...host.files.keys()].some((f) => f.startsWith(`${p.replace(/\/+$/, '')}/`));
    switch (tool) {
      case 'systemctl': {
        const [action, unitWord] = rest;
        const unit = unitWord?.replace(/\.service$/, '');
        if (rest.length !== 2 || unit === undefined) break;
        const known = unit === host.service;
        if (action === 'is-active') {
          const active = known && host.isRunning();
          return { exitCode: active ? 0 : 3, stdout: active ? 'active\n' : 'inactive\n' };
        }
        if (!known)
          return {
            exitCode: 5,
            stderr: `Failed to ${action} ${unit}.service: Unit ${unit}.service not found.`,
          };
        if (action === 'start') host.startDaemon();
        else if (action === 'stop') host.stopDaemon();
        else break;
        return { exitCode: 0 };
      }
      case 'test': {
        const p = path(rest[1]);
        if (rest.length !== 2 || rest[0] !== '-e' || !p) break;
        return { exitCode: host.files.has(p) || isDir(p) ? 0 : 1 };
      }
      case 'cat': {
        const p = path(rest[0]);
        if (rest.length !== 1 || !p) break;
        const file = host.files.get(p);
        return file ? { exitCode: 0, stdout: file.content } : missing('cat', p);
      }
      case 'install': {
        // install -D -m 0600 /dev/stdin PATH (or without -D)
        const flags = rest.slice(0, -2);
        const [source, p] = rest.slice(-2);
        const mode = flags[flags.indexOf('-m') + 1];
        if (
          !flags.includes('-m') ||
          !mode ||
          !/^0?[0-7]{3}$/.test(mode) ||
          source !== '/dev/stdin' ||
          !path(p)
        )
          break;
        if (flags.filter((f) => f !== '-D').length !== 2) break;
        if (stdin === undefined) return { exitCode: 1, stderr: 'install: no input on /dev/stdin (sim)' };
        host.write(p ?? '', stdin, parseInt(mode, 8));
        return { exitCode: 0 };
      }
      case 'sha256sum': {
        const p = path(rest[0]);
        if (rest.length !== 1 || !p) break;
        const file = host.files.get(p);
        return file
          ? { exitCode: 0, stdout: `${bytesToHex(sha256(utf8ToBytes(file.content)))}  ${p}\n` }
          : missing('sha256sum', p);
      }
      case 'stat': {
        const p = path(rest[2]);
        if (rest.length !== 3 || rest[0] !== '-c' || rest[1] !== '%Y' || !p) break;
        const file = host.files.get(p);
        return file ? { exitCode: 0, stdout: `${Math.floor(file.mtimeMs / 1000)}\n` } : missing('stat', p);
      }
      case 'mv': {
        const from = path(rest[0]);
        const to = path(rest[1]);
        if (rest.length !== 2 || !from || !to) break;
        const file = host.files.get(from);
        if (!file) return missing('mv', from);
        host.files.delete(from);
        host.files.set(to, file);
        return { exitCode: 0 };
      }
      case 'rm': {
        const p = path(rest[1]);
        if (rest.length !== 2 || rest[0] !== '-f' || !p) break;
        host.files.delete(p);
        return { exitCode: 0 };
      }
      case 'ip': {
        // ip addr add|del CIDR dev DEV   |   ip -o addr show dev DEV
        if (
          rest[0] === '-o' &&
          rest[1] === 'addr' &&
          rest[2] === 'show' &&
          rest[3] === 'dev' &&
          rest.length === 5
        ) {
          const device = rest[4] ?? '';
          const cidrs = host.devices.get(device);
          if (!cidrs) return { exitCode: 1, stderr: `Device "${device}" does not exist.` };
          const stdout = [...cidrs]
            .map(
              (cidr, i) =>
                `${i + 2}: ${device}    inet ${cidr} brd + scope global ${device}\\       valid_lft forever preferred_lft forever\n`,
            )
            .join('');
          return { exitCode: 0, stdout };
        }
        const [addr, action, cidr, dev, device] = rest;
        if (rest.length !== 5 || addr !== 'addr' || dev !== 'dev' || !cidr || !device) break;
        if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(cidr))
          return { exitCode: 1, stderr: `Error: any valid prefix is expected rather than "${cidr}".` };
        const cidrs = host.devices.get(device);
        if (!cidrs) return { exitCode: 1, stderr: `Cannot find device "${device}"` };
        if (action === 'add') {
          if (cidrs.has(cidr)) return { exitCode: 2, stderr: 'RTNETLINK answers: File exists' };
          cidrs.add(cidr);
          return { exitCode: 0 };
        }
        if (action === 'del') {
          if (!cidrs.delete(cidr))
            return { exitCode: 2, stderr: 'RTNETLINK answers: Cannot assign requested address' };
          return { exitCode: 0 };
        }
        break;
      }
      case 'arping': {
        // arping -U -c N -I DEV IP
        if (!host.arping) return { exitCode: 1, stderr: 'sudo: arping: command not found' };
        const [u, c, count, i, device, ip] = rest;
        if (rest.length !== 6 || u !== '-U' || c !== '-c' || !/^\d+$/.test(count ?? '') || i !== '-I' || !ip)
          break;
        if (![...(host.devices.get(device ?? '') ?? [])].some((cidr) => cidr.startsWith(`${ip}/`)))
          return { exitCode: 2, stderr: `arping: ${ip} is not an address of ${device ?? ''}` };
        return {
          exitCode: 0,
          stdout: `ARPING ${ip} from ${ip} ${device ?? ''}\nSent ${count ?? ''} probes (${count ?? ''} broadcast(s))\n`,
        };
      }
      case 'pgrep': {
        // pgrep -x NAME: the daemon's process is kcn (CN, standby) or kpn (PN); 1 and no output when none.
        const [x, name] = rest;
        if (rest.length !== 2 || x !== '-x' || !name) break;
        const binary = host.kind === 'pn' ? 'kpn' : 'kcn';
        return host.isRunning() && name === binary ? { exitCode: 0, stdout: '4242\n' } : { exitCode: 1 };
      }
      default:
        break;
    }
    return { exitCode: 127, stderr: `sim: command form not understood: ${words.join(' ')}` };
  };

  const shell: Shell = {
    async exec(ref: HostRef, command: ShellCommand, execOptions?: ExecOptions): Promise<ExecResult> {
      if (execOptions?.signal?.aborted) throw execOptions.signal.reason;
      const host = hostOf(ref);
      if (!host.reachable || !host.powered)
        throw new HostError(
          'host_unreachable',
          `cannot reach ${host.name} (${host.address}) over SSH: connection timed out (simulated)`,
        );
      const stdin =
        execOptions?.stdin === undefined
          ? undefined
          : typeof execOptions.stdin === 'string'
            ? execOptions.stdin
            : new TextDecoder().decode(execOptions.stdin);
      const faultIndex = host.faults.findIndex((f) => f.match.test(command));
      let outcome: Outcome;
      const fault = host.faults[faultIndex];
      if (fault) {
        if (fault.once ?? true) host.faults.splice(faultIndex, 1);
        outcome = { exitCode: fault.exitCode, stderr: fault.stderr ?? 'simulated failure' };
      } else if (command === 'true') {
        // What a runbook runs to see that a fresh machine answers SSH.
        outcome = { exitCode: 0 };
      } else {
        const script = parsePrivilegedScript(command);
        const words = script ? undefined : shellWords(command);
        outcome = script
          ? actOutDiskOperation(
              {
                files: host.disk,
                mounts: host.mounts,
                attachedVolume: (volumeId) =>
                  host.instanceId === undefined
                    ? undefined
                    : machines?.attachedVolume(host.instanceId, volumeId),
              },
              script.name,
              script.args,
            )
          : words
            ? interpret(host, words, stdin)
            : { exitCode: 127, stderr: `sim: command form not understood: ${command}` };
      }
      commands.push({ host: host.name, command, stdinBytes: stdin?.length ?? 0, exitCode: outcome.exitCode });
      return {
        exitCode: outcome.exitCode,
        stdout: outcome.stdout ?? '',
        stderr: outcome.stderr ?? '',
        truncated: false,
        durationMs: 0,
      };
    },
    async close() {},
  };

  const answering = (endpoint: NodeEndpoint, probe: ProbeOptions): HostRec => {
    if (probe.signal?.aborted) throw probe.signal.reason;
    const host = hostOf({ name: endpoint.name, address: endpoint.host.address });
    if (!host.reachable || !host.powered || !host.daemon)
      throw new ExternalError(
        'rpc_unreachable',
        `${host.name} does not answer at ${endpoint.rpcUrl ?? endpoint.metricsUrl}: connection refused (simulated)`,
        { retryable: true },
      );
    return host;
  };

  const rpc: NodeRpc = {
    async health(endpoint, probe): Promise<NodeHealth> {
      const host = answering(endpoint, probe);
      const running = [...hosts.values()].filter((h) => h !== host && h.daemon);
      const pnPeers = running.filter((h) => h.kind === 'pn').length;
      let cnPeers: number;
      if (host.isolated) cnPeers = 0;
      else if (host.kind === 'pn') cnPeers = running.filter((h) => h.kind === 'cn').length;
      // A CN admits CN peers only when its own address is in the council.
      else if (host.daemon && council.includes(host.daemon.address))
        cnPeers =
          externals.length +
          running.filter(
            (h) => h.kind === 'cn' && h.daemon && !h.isolated && council.includes(h.daemon.address),
          ).length;
      else cnPeers = 0;
      return {
        height: host.height(),
        cnPeers,
        pnPeers,
        totalPeers: cnPeers + pnPeers,
        source: endpoint.rpcUrl ? 'rpc' : 'metrics',
      };
    },
    async nodeAddress(endpoint, probe) {
      const host = answering(endpoint, probe);
      if (!host.daemon) throw new ExternalError('rpc_unreachable', `${host.name} is not running`);
      return host.daemon.address;
    },
    async recentBlocks(endpoint, count, probe): Promise<readonly BlockConsensusInfo[]> {
      const host = answering(endpoint, probe);
      if (!endpoint.rpcUrl)
        throw new ExternalError('rpc_unavailable', `${host.name} has no JSON-RPC endpoint configured`);
      const head = host.height();
      const signers = [...hosts.values()].filter(signs);
      const blocks: BlockConsensusInfo[] = [];
      for (let n = Math.max(0, head - count + 1); n <= head; n++) {
        const committers = [
          ...externals,
          ...signers
            .filter((h) => h.height() >= n && (h.daemon?.since ?? Infinity) < n)
            .map((h) => h.daemon?.address ?? ''),
        ];
        blocks.push({
          number: n,
          proposer: committers[n % committers.length],
          committers,
          committee: [...council],
        });
      }
      return blocks;
    },
  };

  return {
    shell,
    rpc,
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
