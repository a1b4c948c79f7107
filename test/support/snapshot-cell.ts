/**
 * A small simulated cell for the snapshot-mode failover tests: hosts with a flat file system, one daemon
 * each, mounts of restored volumes, and a NodeRpc that reports what the daemon really loaded (the nodekey
 * at start, legacy location first, a fresh key when none). The Shell interprets the command forms of
 * src/runbooks/node-ops.ts and the `cellops-*` scripts of src/runbooks/snapshot-ops.ts (acted out by
 * src/sandbox/sim-disks.ts, which the sandbox's hosts use too), and rejects anything else. A host that appears at a new address (the replacement) is booted from `replacement`
 * when `instanceAt` says an instance runs there.
 *
 * Every command goes into `events` as `ssh <host>: <words>` so tests can assert the order of SSH
 * commands and cloud calls in one list.
 */
import { HostError } from '../../src/errors.js';
import type { ExecOptions, ExecResult, HostRef, Shell } from '../../src/ports/shell.js';
import type { ShellCommand } from '../../src/ports/shell-command.js';
import type { BlockConsensusInfo, NodeEndpoint, NodeHealth, NodeRpc } from '../../src/ports/node-rpc.js';
import { nodeAddressFromKey, nodekeyChecksum, nodekeyProblem } from '../../src/runbooks/nodekey.js';
import { parsePrivilegedScript, splitShellWords } from '../../src/ports/shell-command.js';
import { actOutDiskOperation, moveTree, pathExists, type SimFiles } from '../../src/sandbox/sim-disks.js';

export interface CellHostSeed {
  readonly name: string;
  readonly address: string;
  readonly service: string;
  readonly dataDir: string;
  readonly running?: boolean;
  readonly reachable?: boolean;
  readonly files?: Readonly<Record<string, string>>;
  readonly lagBlocks?: number;
  /** The EC2 instance the host is; when `instanceRunning` says it is not running, the host is dead. */
  readonly instanceId?: string;
}

export interface CellHost {
  readonly name: string;
  readonly address: string;
  readonly service: string;
  readonly dataDir: string;
  running: boolean;
  reachable: boolean;
  lagBlocks: number;
  readonly files: Map<string, string>;
  readonly modes: Map<string, number>;
  readonly mounts: Map<string, string>;
  /** Address of the key the daemon loaded at its last start. */
  loadedAddress?: string;
  /** `systemctl enable|disable`: undefined until either ran. */
  enabled?: boolean;
  /** Between `fsfreeze -f` and `fsfreeze -u`. */
  frozen?: boolean;
  /** CIDR addresses added with `ip addr add`, by device. */
  readonly addresses: Map<string, string[]>;
  readonly instanceId?: string;
}

export interface SnapshotCellOptions {
  readonly hosts: readonly CellHostSeed[];
  /** The instance running at an address no seeded host has, if any. */
  readonly instanceAt: (address: string) => string | undefined;
  /** What a machine launched from the CN image looks like at first boot. */
  readonly replacement: Omit<CellHostSeed, 'name' | 'address'>;
  /** The files of a volume attached to the instance (paths relative to the volume's root), or undefined. */
  readonly attachedVolume: (
    instanceId: string,
    volumeId: string,
  ) => Readonly<Record<string, string>> | undefined;
  readonly chainHeight: () => number;
  /** Whether an instance is powered on (a stopped instance runs no daemon and answers nothing). */
  readonly instanceRunning?: (instanceId: string) => boolean;
  readonly events?: string[];
}

export interface SnapshotCell {
  readonly shell: Shell;
  readonly rpc: NodeRpc;
  readonly events: string[];
  host(nameOrAddress: string): CellHost;
  /** Every moment two running daemons had one node address. */
  readonly violations: string[];
}

/** A deterministic valid key per label, so tests can tell keys apart without randomness. */
export function testKey(label: string): string {
  for (let i = 0; ; i++) {
    const key = nodekeyChecksum(`${label}:${i}`);
    if (nodekeyProblem(key) === undefined) return key;
  }
}

function ok(stdout = ''): ExecResult {
  return { exitCode: 0, stdout, stderr: '', truncated: false, durationMs: 1 };
}
function fail(exitCode: number, stderr = ''): ExecResult {
  return { exitCode, stdout: '', stderr, truncated: false, durationMs: 1 };
}

export function createSnapshotCell(options: SnapshotCellOptions): SnapshotCell {
  const events = options.events ?? [];
  const violations: string[] = [];
  const hosts = new Map<string, CellHost>();
  let fresh = 0;

  const alive = (host: CellHost): boolean =>
    host.instanceId === undefined || (options.instanceRunning?.(host.instanceId) ?? true);

  const makeHost = (seed: CellHostSeed, instanceId = seed.instanceId): CellHost => {
    const host: CellHost = {
      name: seed.name,
      address: seed.address,
      service: seed.service,
      dataDir: seed.dataDir,
      running: false,
      reachable: seed.reachable ?? true,
      lagBlocks: seed.lagBlocks ?? 0,
      files: new Map(Object.entries(seed.files ?? {})),
      modes: new Map(),
      mounts: new Map(),
      addresses: new Map(),
      ...(instanceId === undefined ? {} : { instanceId }),
    };
    hosts.set(seed.address, host);
    if (seed.running ?? true) start(host);
    return host;
  };

  const start = (host: CellHost): void => {
    if (host.running) return;
    const legacy = host.files.get(`${host.dataDir}/nodekey`);
    let key = legacy ?? host.files.get(`${host.dataDir}/klay/nodekey`);
    if (key === undefined || nodekeyProblem(key.slice(0, 64)) !== undefined) {
      fresh += 1;
      key = testKey(`fresh-${fresh}`);
      host.files.set(`${host.dataDir}/klay/nodekey`, key);
    }
    const address = nodeAddressFromKey(key.slice(0, 64));
    for (const other of hosts.values())
      if (other !== host && other.running && alive(other) && other.loadedAddress === address)
        violations.push(`${host.name} started as ${address} while ${other.name} runs it`);
    host.loadedAddress = address;
    host.running = true;
  };

  for (const seed of options.hosts) makeHost(seed);

  const lookup = (address: string): CellHost | undefined => {
    const known = hosts.get(address);
    if (known) return known;
    const instanceId = options.instanceAt(address);
    if (instanceId === undefined) return undefined;
    return makeHost({ ...options.replacement, name: 'replacement', address }, instanceId);
  };

  /** The host's files as the shared disk operations of src/sandbox/sim-disks.ts see them. */
  const fileSystem = (host: CellHost): SimFiles => ({
    paths: () => [...host.files.keys()],
    get: (path) => host.files.get(path),
    set: (path, content) => host.files.set(path, content),
    delete: (path) => {
      host.files.delete(path);
      host.modes.delete(path);
    },
    rename: (from, to) => {
      const content = host.files.get(from);
      if (content === undefined) return;
      const mode = host.modes.get(from);
      host.files.delete(from);
      host.modes.delete(from);
      host.files.set(to, content);
      if (mode !== undefined) host.modes.set(to, mode);
    },
  });

  const script = (host: CellHost, name: string, args: readonly string[]): ExecResult => {
    const outcome = actOutDiskOperation(
      {
        files: fileSystem(host),
        mounts: host.mounts,
        attachedVolume: (volumeId) =>
          host.instanceId === undefined ? undefined : options.attachedVolume(host.instanceId, volumeId),
      },
      name,
      args,
    );
    return outcome.exitCode === 0
      ? ok(outcome.stdout)
      : { ...fail(outcome.exitCode, outcome.stderr), stdout: outcome.stdout ?? '' };
  };

  const run = (host: CellHost, command: string, stdin: string | undefined): ExecResult => {
    if (command === 'true') return ok();
    const parsed = parsePrivilegedScript(command);
    if (parsed) return script(host, parsed.name, parsed.args);
    const words = splitShellWords(command) ?? [];
    if (words[0] !== 'sudo' || words[1] !== '-n')
      return fail(127, `not a form the runbooks build: ${command}`);
    const [tool, ...rest] = words.slice(2);
    switch (tool) {
      case 'systemctl': {
        const [action, service] = rest;
        if (service !== host.service) return fail(5, `Unit ${service}.service not found.`);
        if (action === 'is-active')
          return host.running ? ok('active\n') : { ...fail(3), stdout: 'inactive\n' };
        if (action === 'stop') host.running = false;
        else if (action === 'start') start(host);
        else if (action === 'enable' || action === 'disable') host.enabled = action === 'enable';
        else return fail(1, `unknown action ${action}`);
        return ok();
      }
      case 'pgrep':
        if (rest[0] !== '-x' || rest[1] !== '--')
          return fail(127, `not a form the runbooks build: ${command}`);
        return host.running && rest[2] === (host.service === 'kpnd' ? 'kpn' : 'kcn') ? ok('4242\n') : fail(1);
      case 'sync':
        return ok();
      case 'ip': {
        const device = rest[rest.length - 1] ?? '';
        const list = host.addresses.get(device) ?? [];
        if (rest[0] === '-o') return ok(list.map((a) => `2: ${device}    inet ${a} scope global\n`).join(''));
        const cidr = rest[2] ?? '';
        host.addresses.set(device, rest[1] === 'add' ? [...list, cidr] : list.filter((a) => a !== cidr));
        return ok();
      }
      case 'fsfreeze':
        host.frozen = rest[0] === '-f';
        return ok();
      case 'test':
        return pathExists(fileSystem(host), rest[1] ?? '') ? ok() : fail(1);
      case 'cat': {
        if (rest[0] !== '--') return fail(127, `not a form the runbooks build: ${command}`);
        const text = host.files.get(rest[1] ?? '');
        return text === undefined ? fail(1, `cat: ${rest[1]}: No such file or directory`) : ok(text);
      }
      case 'install': {
        const path = rest[rest.length - 1] ?? '';
        host.files.set(path, stdin ?? '');
        host.modes.set(path, 0o600);
        return ok();
      }
      case 'sha256sum': {
        if (rest[0] !== '--') return fail(127, `not a form the runbooks build: ${command}`);
        const text = host.files.get(rest[1] ?? '');
        return text === undefined ? fail(1) : ok(`${nodekeyChecksum(text)}  ${rest[1]}\n`);
      }
      case 'mv':
        if (rest[0] !== '--') return fail(127, `not a form the runbooks build: ${command}`);
        if (!pathExists(fileSystem(host), rest[1] ?? '')) return fail(1, `mv: cannot stat ${rest[1]}`);
        moveTree(fileSystem(host), rest[1] ?? '', rest[2] ?? '');
        return ok();
      case 'rm':
        for (const path of rest.filter((w) => !w.startsWith('-'))) host.files.delete(path);
        return ok();
      default:
        return fail(127, `not a form the runbooks build: ${command}`);
    }
  };

  const shell: Shell = {
    exec(ref: HostRef, command: ShellCommand, execOptions: ExecOptions = {}): Promise<ExecResult> {
      execOptions.signal?.throwIfAborted();
      const host = lookup(ref.address);
      const parsed = parsePrivilegedScript(command);
      const shown = parsed ? `cellops-${parsed.name} ${parsed.args.join(' ')}` : command;
      events.push(`ssh ${ref.name}: ${shown}`);
      if (!host || !host.reachable || !alive(host))
        return Promise.reject(
          new HostError('host_unreachable', `${ref.name} (${ref.address}) is unreachable`),
        );
      const stdin =
        execOptions.stdin === undefined
          ? undefined
          : typeof execOptions.stdin === 'string'
            ? execOptions.stdin
            : Buffer.from(execOptions.stdin).toString('utf8');
      return Promise.resolve(run(host, command, stdin));
    },
    close: () => Promise.resolve(),
  };

  const running = (endpoint: NodeEndpoint): CellHost => {
    const host = hosts.get(endpoint.host.address);
    if (!host?.running || !host.reachable || !alive(host))
      throw new Error(`connect ECONNREFUSED ${endpoint.host.address}:61001`);
    return host;
  };

  const rpc: NodeRpc = {
    async health(endpoint): Promise<NodeHealth> {
      const host = running(endpoint);
      return { height: options.chainHeight() - host.lagBlocks, cnPeers: 3, pnPeers: 2, source: 'metrics' };
    },
    async nodeAddress(endpoint): Promise<string> {
      return running(endpoint).loadedAddress ?? '';
    },
    async recentBlocks(endpoint, count): Promise<readonly BlockConsensusInfo[]> {
      const host = running(endpoint);
      const head = options.chainHeight();
      return Array.from({ length: count }, (_, i) => ({
        number: head - count + 1 + i,
        committers: [host.loadedAddress ?? ''],
        committee: [host.loadedAddress ?? ''],
      }));
    },
  };

  return {
    shell,
    rpc,
    events,
    violations,
    host(nameOrAddress) {
      const host = hosts.get(nameOrAddress) ?? [...hosts.values()].find((h) => h.name === nameOrAddress);
      if (!host) throw new Error(`no host ${nameOrAddress}`);
      return host;
    },
  };
}
