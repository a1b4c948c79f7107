/**
 * The test lab: a small Core Cell made of real OpenSSH servers in real network namespaces.
 *
 *   const lab = await startLab({ hosts: ['cn1', 'cn1s', 'pn1', 'pn2'] });
 *   try { … lab.hosts.cn1.address … } finally { await lab.stop(); }
 *
 * Layout (as root, the normal case; `.ci/run` runs as root):
 * - a Linux bridge `clb<id>` in the root namespace with 10.231.<n>.1/24, and one namespace
 *   `cellops-<id>-<host>` per host with `eth0` = 10.231.<n>.(11+i)/24 on that bridge, so the tests (root
 *   namespace) reach every host directly. The VIP is 10.231.<n>.100/24 on `eth0`, first on the first CN.
 * - in every namespace Debian's sshd (`/usr/sbin/sshd -D -f <generated config>`) on port 22 with its own
 *   ed25519 and ecdsa host keys; login as the Unix user `cellopslab` (created once if missing, password
 *   locked to key-only, passwordless sudo through /etc/sudoers.d/cellopslab) with a key pair generated per
 *   lab; `lab.knownHostsPath` lists every host's ed25519 key.
 * - namespaces share the filesystem, so every host has its own root `/tmp/cellops-lab-<id>/<host>/`
 *   holding its DATA_DIR (`…/var/kcnd/data` or `…/var/kpnd/data`); the lab's configuration uses those.
 * - a node stand-in (node-standin.ts) per host, started and stopped by the lab's systemctl shim
 *   `lab.binDir/lab-systemctl {action} {service}` (`sudo -n` in front, as on real hosts), serving
 *   :61001/metrics and JSON-RPC on :8551, and `kcn`/`kpn` shims in `lab.binDir` for `attach --exec`.
 *   sshd passes CELLOPS_LAB_HOST_ROOT to sessions (and sudo keeps it), which is how the shims know the
 *   host they run on.
 *
 * Without root (or with `namespaces: false`) the lab falls back to sshd on distinct loopback addresses
 * 127.231.<n>.(11+i) sharing one free port, stand-ins on free ports, no VIP: `lab.namespaces` is false and
 * `lab.skipReason` says why, for tests of IP moves to skip with (skipWithoutNamespaces). In CI as root
 * (CI=true) the lab never falls back: startLab throws if namespaces cannot be made, and
 * skipWithoutNamespaces fails the test instead of skipping it.
 *
 * Build a cellops configuration for the lab with `labConfig(lab, overrides)` from lab-config.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { nodeAddressFromKey, nodekeyProblem } from '../../src/runbooks/nodekey.js';
import { freePort } from '../support/free-port.js';
import {
  chainHeight,
  readJson,
  writeJsonAtomic,
  type ChainState,
  type HostFaults,
  type HostSpec,
} from './lab-state.js';

export type LabRole = 'cn' | 'standby' | 'pn';

export interface LabHostOptions {
  readonly name: string;
  /** Default from the name: `pn…` → pn, ends with `s` → standby, else cn. */
  readonly role?: LabRole;
  /**
   * Files this host alone sees under /etc (path relative to /etc → content), namespace mode only: `ip netns
   * exec` bind-mounts `/etc/netns/<ns>/<top>` over `/etc/<top>` for the host's sshd and everything it
   * starts (the lab creates an empty `/etc/<top>` as the mount point when the machine has none). A
   * `kcnd/conf/kcnd.conf` (`kpnd/…`) given here is also where the host's stand-in reads DATA_DIR, as the
   * init script does. Mounts made in the host's sessions stay in its mount namespace.
   */
  readonly etc?: Readonly<Record<string, string | ((host: { root: string; dataDir: string }) => string)>>;
  /**
   * Paths the host helper may touch besides the host's own root (PATHS in its host.conf), e.g. a DATA_DIR
   * path that is another host's in the lab but the same path on a real replacement.
   */
  readonly helperPaths?: (host: { root: string; labRoot: string }) => readonly string[];
}

export interface StartLabOptions {
  /** Host names (or name and role), e.g. ['cn1', 'cn1s', 'pn1', 'pn2']. At most 80. */
  readonly hosts: readonly (string | LabHostOptions)[];
  /** Use network namespaces. Default: when running as root and `ip netns` works. false forces the fallback. */
  readonly namespaces?: boolean;
  /** Start every host's node stand-in. Default true. */
  readonly startNodes?: boolean;
  /** Milliseconds per block of the shared chain. Default 1000 (Kaia's block time). */
  readonly blockMs?: number;
  /** Height of the shared chain at start. Default 1000. */
  readonly startHeight?: number;
  /** Host that holds the VIP at start (namespace mode). Default the first CN; null: nobody. */
  readonly vipOn?: string | null;
  /** CN peers a council member reports. Default 3. */
  readonly externalCnPeers?: number;
}

export interface LabHostKey {
  readonly type: string;
  /** `<type> <base64>` as in a .pub file or a known_hosts line after the host names. */
  readonly publicKey: string;
  /** `SHA256:…` as ssh-keygen -lf prints it. */
  readonly fingerprint: string;
}

export interface LabHost {
  readonly name: string;
  readonly role: LabRole;
  readonly service: 'kcnd' | 'kpnd';
  readonly binary: 'kcn' | 'kpn';
  /** Where SSH, metrics and JSON-RPC reach this host from the tests (root namespace). */
  readonly address: string;
  readonly sshPort: number;
  /** This host's own file root; everything it owns lives below it. */
  readonly root: string;
  /** DATA_DIR of the stand-in: `<root>/var/kcnd/data` (CN, standby) or `<root>/var/kpnd/data` (PN). */
  readonly dataDir: string;
  /** Network namespace name; undefined in the loopback fallback. */
  readonly netns?: string;
  readonly metricsUrl: string;
  readonly rpcUrl: string;
  /** Test data: the nodekey the lab installed at `<dataDir>/klay/nodekey` at start, and its address. */
  readonly initialNodekey: string;
  readonly initialNodeAddress: string;
  readonly hostKeys: readonly LabHostKey[];
}

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface LabChain {
  /** The shared chain height now. */
  height(): number;
  setHeight(height: number): void;
  /** The whole chain stops (no node's height moves). */
  stall(): void;
  resume(): void;
  council(): readonly string[];
  setCouncil(addresses: readonly string[]): void;
}

export interface Lab {
  readonly id: string;
  readonly root: string;
  readonly namespaces: boolean;
  /** Why namespace-only tests must skip (set when `namespaces` is false). */
  readonly skipReason?: string;
  readonly hosts: Readonly<Record<string, LabHost>>;
  host(name: string): LabHost;
  /** SSH login user on every host. */
  readonly user: string;
  readonly privateKeyPath: string;
  readonly knownHostsPath: string;
  /** SSH port, the same on every host (22 in namespaces). */
  readonly sshPort: number;
  /** Whether privileged commands go through `sudo -n` (false in the non-root fallback). */
  readonly useSudo: boolean;
  /** Directory of the shims: lab-systemctl, kcn, kpn. */
  readonly binDir: string;
  /**
   * ssh.hostHelper for the lab (namespace mode): the shipped helper, which the shipped sudoers allows and
   * nothing else. Its per-host /etc/cellops/host.conf points it at the lab's shims.
   */
  readonly hostHelper?: string;
  /** ssh.serviceCommand for the lab, e.g. `sudo -n /tmp/…/bin/lab-systemctl {action} {service}`. */
  readonly serviceCommand: string;
  /** ssh.attachCommand for the lab, e.g. `sudo -n /tmp/…/bin/{binary} attach --exec {js} {dataDir}/klay.ipc`. */
  readonly attachCommand: string;
  /** Address the tests have on the bridge (namespace mode). */
  readonly gateway?: string;
  /** The VIP with its prefix, e.g. 10.231.7.100/24 (namespace mode). */
  readonly vip?: string;
  /** The VIP without prefix. */
  readonly vipAddress?: string;
  /** Interface name inside every namespace. */
  readonly device: string;
  readonly chain: LabChain;
  /** Starts the host's node stand-in through the systemctl shim (no-op when it runs). */
  startNode(name: string): Promise<void>;
  /** Stops it (SIGTERM, as systemctl stop would). */
  stopNode(name: string): Promise<void>;
  /** Kills it with SIGKILL (a crash). */
  killNode(name: string): Promise<void>;
  isNodeRunning(name: string): Promise<boolean>;
  /** The node's height freezes where it is while the chain goes on; `unstallNode` lets it catch up. */
  stallNode(name: string): void;
  unstallNode(name: string): void;
  /** The node loses every peer (CN peers 0) and stops signing; `reconnectNode` undoes it. */
  isolateNode(name: string): void;
  reconnectNode(name: string): void;
  /** The host drops off the network (its link goes down; in the fallback its sshd stops). */
  makeUnreachable(name: string): Promise<void>;
  makeReachable(name: string): Promise<void>;
  /** Runs argv as root on the host (inside its namespace), for setting up and checking state. */
  run(name: string, argv: readonly string[], options?: { input?: string }): Promise<CommandResult>;
  /** Hosts whose `eth0` holds the VIP now. */
  vipHolders(): Promise<string[]>;
  /** Forgets the tests' ARP entries, as a gratuitous ARP would update them after a VIP move. */
  flushNeighbours(): Promise<void>;
  /** The pid of the host's sshd, whose mount namespace its sessions share (for `nsenter -m`). */
  sshdPid(name: string): number | undefined;
  /** Stops every process and removes namespaces, bridge and files. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * The SSH user of namespace labs: the user deploy/host/sudoers names, so that the lab installs that file
 * exactly as shipped (and the helper it allows, at HOST_HELPER) and every test proves that it is enough.
 */
export const LAB_USER = 'cellops';
/**
 * The loopback fallback as root cannot give each host its own /etc/cellops/host.conf, so its user keeps a
 * broad sudo rule and runs commands without the helper. CI never uses the fallback.
 */
export const FALLBACK_LAB_USER = 'cellopslab';
/** Where the lab installs deploy/host/cellops-host, as deploy/host/sudoers expects it. */
export const HOST_HELPER = '/usr/local/sbin/cellops-host';
const DEPLOY_HOST_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'deploy', 'host');
const NEIGHBOUR_TUNING: Readonly<Record<string, string>> = {
  base_reachable_time_ms: '500',
  delay_first_probe_time: '0',
  ucast_solicit: '1',
  retrans_time_ms: '200',
};
const SSHD = '/usr/sbin/sshd';
const LAB_PREFIX = 'cellops-lab-';
const here = dirname(fileURLToPath(import.meta.url));
const standinPath = resolve(here, 'node-standin.ts');
const tsxLoader = pathToFileURL(
  join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist', 'loader.mjs'),
).href;

/** Runs a program and collects its output; never rejects for a non-zero exit. */
export function runCommand(
  argv: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return new Promise((resolvePromise, reject) => {
    const [file, ...args] = argv;
    if (file === undefined) throw new Error('empty command');
    const child = spawn(file, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

async function must(argv: readonly string[], options: { input?: string } = {}): Promise<string> {
  const result = await runCommand(argv, options);
  if (result.code !== 0)
    throw new Error(`lab: \`${argv.join(' ')}\` failed (${result.code}): ${result.stderr.trim()}`);
  return result.stdout;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * CI runs the tests as root precisely so that the IP moves are tested in network namespaces. There, a lab
 * that fell back to loopback would turn those tests into skips and CI would stay green without them.
 */
export function namespacesRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === 'true' && isRoot();
}

/**
 * The lab's VIP, for a test of IP moves; skips the test when the lab has no network namespaces, except in
 * CI as root (namespacesRequired), where it throws instead: the test fails rather than silently not running.
 */
export function skipWithoutNamespaces(lab: Lab, what: string, skip: (note: string) => never): string {
  if (lab.namespaces && lab.vip !== undefined) return lab.vip;
  const reason = lab.skipReason ?? 'the lab has no network namespaces';
  if (namespacesRequired()) {
    throw new Error(`${what} must be tested in CI (CI=true, running as root), but ${reason}`);
  }
  return skip(`${what} not tested: ${reason}`);
}

function defaultRole(name: string): LabRole {
  if (name.startsWith('pn')) return 'pn';
  if (name.endsWith('s')) return 'standby';
  return 'cn';
}

function randomNodekey(): string {
  for (;;) {
    const key = randomBytes(32).toString('hex');
    if (nodekeyProblem(key) === undefined) return key;
  }
}

function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/s.test(stat);
  } catch {
    return false;
  }
}

async function waitForTcp(address: string, port: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolvePromise) => {
      const socket = connect({ host: address, port });
      socket.setTimeout(500);
      socket.once('connect', () => {
        socket.destroy();
        resolvePromise(true);
      });
      socket.once('timeout', () => {
        socket.destroy();
        resolvePromise(false);
      });
      socket.once('error', () => resolvePromise(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`lab: ${what} did not listen on ${address}:${port}`);
    await delay(50);
  }
}

/** Namespaces/bridges of labs whose owning process is gone (a crashed test run): removed at start. */
async function removeStaleLabs(): Promise<void> {
  let entries: string[];
  try {
    entries = readdirSync('/tmp').filter((e) => e.startsWith(LAB_PREFIX));
  } catch {
    return;
  }
  for (const entry of entries) {
    const root = join('/tmp', entry);
    const owner = Number(readJson<{ pid: number }>(join(root, 'owner.json'))?.pid);
    if (Number.isFinite(owner) && owner > 0 && pidAlive(owner)) continue;
    const id = entry.slice(LAB_PREFIX.length);
    await teardownNetwork(id, root).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
}

/** Writes a host's own /etc files under /etc/netns/<ns>, with a mount point for each in /etc. */
function writeHostEtc(ns: string, files: Readonly<Record<string, string>>): void {
  for (const [relative, content] of Object.entries(files)) {
    if (relative.startsWith('/') || relative.split('/').includes('..'))
      throw new Error(`lab: bad /etc path ${relative}`);
    const target = join('/etc/netns', ns, relative);
    mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
    writeFileSync(target, content, { mode: 0o644 });
    const top = relative.split('/')[0] ?? relative;
    // The bind mount needs a mount point; an empty one is harmless to the machine (and never removed,
    // since another lab's host may have its own mounted there).
    if (!existsSync(join('/etc', top))) {
      if (top === relative) writeFileSync(join('/etc', top), '', { flag: 'a' });
      else mkdirSync(join('/etc', top), { mode: 0o755 });
    }
  }
}

async function teardownNetwork(id: string, root: string): Promise<void> {
  killRecordedProcesses(root);
  if (!isRoot()) return;
  for (const entry of existsSync('/etc/netns') ? readdirSync('/etc/netns') : [])
    if (entry.startsWith(`cellops-${id}-`))
      rmSync(join('/etc/netns', entry), { recursive: true, force: true });
  const list = await runCommand(['ip', 'netns', 'list']);
  for (const line of list.stdout.split('\n')) {
    const ns = line.split(' ')[0];
    if (!ns?.startsWith(`cellops-${id}-`)) continue;
    const pids = await runCommand(['ip', 'netns', 'pids', ns]);
    for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await runCommand(['ip', 'netns', 'del', ns]);
  }
  await runCommand(['ip', 'link', 'del', `clb${id}`]);
  rmSync(`/tmp/cellops-lab-subnet-${subnetOf(root) ?? 'none'}.lock`, { force: true });
}

function subnetOf(root: string): number | undefined {
  return readJson<{ subnet?: number }>(join(root, 'owner.json'))?.subnet;
}

/** Kills stand-ins and sshds recorded under the lab root (the fallback has no namespace to empty). */
function killRecordedProcesses(root: string): void {
  let hosts: string[];
  try {
    hosts = readdirSync(root);
  } catch {
    return;
  }
  for (const host of hosts) {
    for (const file of [join(root, host, 'lab', 'standin.pid'), join(root, host, 'ssh', 'sshd.pid')]) {
      const pid = Number(existsSync(file) ? readFileSync(file, 'utf8').trim() : NaN);
      if (Number.isFinite(pid) && pid > 0 && pidAlive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  }
}

/** Picks a free 10.231.<n>.0/24 (or 127.231.<n>.0/24) and holds it with a lock file. */
function claimSubnet(bridge: string): number {
  for (let attempt = 0; attempt < 500; attempt++) {
    const n = 1 + Math.floor(Math.random() * 250);
    const lock = `/tmp/cellops-lab-subnet-${n}.lock`;
    try {
      writeFileSync(lock, bridge, { flag: 'wx' });
      return n;
    } catch {
      // taken by another lab (or a stale one removed later): try another
    }
  }
  throw new Error('lab: no free 10.231.<n>.0/24 subnet');
}

async function ensureUser(user: string): Promise<void> {
  if ((await runCommand(['id', '-u', user])).code !== 0) {
    const added = await runCommand(['useradd', '--create-home', '--shell', '/bin/sh', user]);
    // Two labs starting together may both try; the loser sees the user exist.
    if (added.code !== 0 && (await runCommand(['id', '-u', user])).code !== 0)
      throw new Error(`lab: could not create the user ${user}: ${added.stderr.trim()}`);
  }
  // "*": no password can match, yet the account is not locked (sshd refuses "!" accounts without PAM).
  await must(['usermod', '-p', '*', user]);
}

/** Puts `content` at `target` (root's, `mode`) unless it is there already; atomic, for labs starting together. */
async function installFile(
  target: string,
  content: string,
  mode: number,
  check?: readonly string[],
): Promise<void> {
  if (existsSync(target) && readFileSync(target, 'utf8') === content) return;
  // sudo ignores files in sudoers.d with a dot in their name, so the temporary one is harmless until renamed.
  const tmp = join(dirname(target), `.${target.split('/').at(-1) ?? 'file'}.${process.pid}`);
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode);
  if (check) {
    const result = await runCommand([...check, tmp]);
    if (result.code !== 0) {
      rmSync(tmp, { force: true });
      throw new Error(`lab: ${target} is invalid: ${result.stdout}${result.stderr}`);
    }
  }
  await must(['mv', '-f', tmp, target]);
}

/**
 * Namespace labs: the user deploy/host/sudoers names, that file installed exactly as shipped, and the
 * helper it allows. The root fallback: its own user with a broad rule (it has no per-host host.conf).
 */
async function ensureLabUser(namespaces: boolean): Promise<void> {
  if (namespaces) {
    await ensureUser(LAB_USER);
    mkdirSync(dirname(HOST_HELPER), { recursive: true, mode: 0o755 });
    await installFile(HOST_HELPER, readFileSync(join(DEPLOY_HOST_DIR, 'cellops-host'), 'utf8'), 0o755);
    await installFile(
      `/etc/sudoers.d/${LAB_USER}`,
      readFileSync(join(DEPLOY_HOST_DIR, 'sudoers'), 'utf8'),
      0o440,
      ['visudo', '-c', '-f'],
    );
    return;
  }
  await ensureUser(FALLBACK_LAB_USER);
  const sudoers =
    `# Written by the cellops test lab (test/lab/lab.ts) for its loopback fallback, which cannot give hosts\n` +
    `# their own /etc/cellops/host.conf. Remove with: userdel -r ${FALLBACK_LAB_USER}; rm this file\n` +
    `${FALLBACK_LAB_USER} ALL=(root) NOPASSWD: ALL\n` +
    `Defaults:${FALLBACK_LAB_USER} env_keep += "CELLOPS_LAB_HOST_ROOT", !lecture\n`;
  await installFile(`/etc/sudoers.d/${FALLBACK_LAB_USER}`, sudoers, 0o440, ['visudo', '-c', '-f']);
}

/** The host helper's /etc/cellops/host.conf on a lab host: its own root, the lab's shims, its own fences. */
function helperConf(labRoot: string, hostRoot: string, extraPaths: readonly string[] = []): string {
  return [
    '# /etc/cellops/host.conf of a cellops test lab host (test/lab/lab.ts).',
    `PATHS='${[hostRoot, '/etc/kcnd/conf', '/etc/kpnd/conf', ...extraPaths].join(' ')}'`,
    "SERVICES='kcnd kpnd'",
    "DEVICES='eth0'",
    // The snapshot lab links a loop device there (test/support/lab-snapshot.ts).
    `DATA_DEVICES='${join(hostRoot, 'dev', 'sdf')}'`,
    `SYSTEMCTL='/bin/sh ${join(labRoot, 'bin', 'lab-systemctl')}'`,
    `KCN='${join(labRoot, 'bin', 'kcn')}'`,
    `KPN='${join(labRoot, 'bin', 'kpn')}'`,
    `STATE_DIR='${join(hostRoot, 'var', 'lib', 'cellops-host')}'`,
    // The shims find their host by this variable; sudo's env_reset drops the session's copy.
    `CELLOPS_LAB_HOST_ROOT='${hostRoot}'`,
    'export CELLOPS_LAB_HOST_ROOT',
    '',
  ].join('\n');
}

function systemctlShim(): string {
  return `#!/bin/sh
# systemctl for the cellops test lab's node stand-ins: start|stop|restart|is-active|status <unit>.
# The host comes from CELLOPS_LAB_HOST_ROOT, which the host's sshd sets and sudo keeps.
set -u
root="\${CELLOPS_LAB_HOST_ROOT:-}"
if [ -z "$root" ] || [ ! -f "$root/lab/host.json" ]; then
  echo "lab-systemctl: CELLOPS_LAB_HOST_ROOT is not set; run me through the lab's sshd" >&2
  exit 1
fi
action="\${1:-}"
unit="\${2:-}"
unit="\${unit%.service}"
service="$(cat "$root/lab/service")"
pidfile="$root/lab/standin.pid"
if [ "$unit" != "$service" ]; then
  echo "Failed to $action $unit.service: Unit $unit.service not found." >&2
  exit 5
fi
alive() { [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) [ZX]' "/proc/$1/stat" 2>/dev/null; }
running() { [ -f "$pidfile" ] && alive "$(cat "$pidfile")"; }
do_start() {
  running && return 0
  rm -f "$root/lab/ready"
  setsid ${JSON.stringify(process.execPath)} --import ${JSON.stringify(tsxLoader)} ${JSON.stringify(standinPath)} "$root" >>"$root/lab/$service.out" 2>&1 </dev/null &
  echo $! >"$pidfile"
  i=0
  while [ ! -f "$root/lab/ready" ]; do
    if ! running; then
      echo "Job for $service.service failed because the control process exited with error code." >&2
      tail -n 5 "$root/lab/$service.out" >&2
      rm -f "$pidfile"
      return 1
    fi
    i=$((i + 1))
    if [ "$i" -gt 600 ]; then echo "$service did not start within 30 s" >&2; return 1; fi
    sleep 0.05
  done
}
do_stop() {
  if ! running; then rm -f "$pidfile"; return 0; fi
  pid="$(cat "$pidfile")"
  kill -TERM "$pid" 2>/dev/null
  i=0
  while alive "$pid"; do
    i=$((i + 1))
    if [ "$i" -eq 200 ]; then kill -KILL "$pid" 2>/dev/null; fi
    if [ "$i" -gt 260 ]; then break; fi
    sleep 0.05
  done
  rm -f "$pidfile" "$root/lab/ready"
}
case "$action" in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop && do_start ;;
  is-active)
    if running; then echo active; else echo inactive; exit 3; fi ;;
  enable) touch "$root/lab/enabled" ;;
  disable) rm -f "$root/lab/enabled" ;;
  is-enabled)
    if [ -f "$root/lab/enabled" ]; then echo enabled; else echo disabled; exit 1; fi ;;
  status)
    if running; then echo "* $service.service - lab stand-in"; echo "   Active: active (running)"; tail -n 5 "$root/lab/$service.out"
    else echo "* $service.service - lab stand-in"; echo "   Active: inactive (dead)"; exit 3; fi ;;
  *) echo "lab-systemctl: unknown action '$action'" >&2; exit 1 ;;
esac
`;
}

/** The kcn/kpn shim: `attach --exec <js> <dataDir>/klay.ipc` (or --datadir), talking to the stand-in. */
const ATTACH_SCRIPT = `// cellops test lab: kcn/kpn attach shim (generated by test/lab/lab.ts).
import { connect } from 'node:net';
const args = process.argv.slice(2);
if (args[0] !== 'attach') { console.error('lab kcn shim: only "attach --exec <js> [endpoint]" is supported'); process.exit(1); }
let exec; let endpoint; let datadir;
for (let i = 1; i < args.length; i++) {
  const a = args[i];
  if (a === '--exec') exec = args[++i];
  else if (a.startsWith('--exec=')) exec = a.slice(7);
  else if (a === '--datadir') datadir = args[++i];
  else if (a.startsWith('--datadir=')) datadir = a.slice(10);
  else if (!a.startsWith('-')) endpoint = a;
}
if (exec === undefined) { console.error('lab kcn shim: the interactive console is not supported; use --exec'); process.exit(1); }
const path = (endpoint ?? (datadir === undefined ? '' : datadir + '/klay.ipc')).replace(/^ipc:/, '');
const socket = connect(path);
let reply = '';
socket.setEncoding('utf8');
socket.on('data', (c) => { reply += c; });
socket.on('error', (e) => {
  const why = e.code === 'ENOENT' ? 'no such file or directory' : 'connection refused';
  console.error('Fatal: Unable to attach to remote kcn: dial unix ' + path + ': connect: ' + why);
  process.exit(1);
});
socket.on('end', () => {
  let parsed;
  try { parsed = JSON.parse(reply); } catch { console.error('Fatal: bad reply from the node'); process.exit(1); }
  if (parsed.ok) { process.stdout.write(parsed.output + '\\n'); process.exit(0); }
  process.stderr.write(parsed.output + '\\n');
  process.exit(1);
});
socket.write(exec.replace(/\\n/g, ' ') + '\\n');
`;

function sshdConfig(options: {
  port: number;
  listen: string;
  hostKeys: readonly string[];
  authorizedKeys: string;
  user: string;
  hostRoot: string;
}): string {
  return [
    '# Generated by the cellops test lab.',
    `Port ${options.port}`,
    `ListenAddress ${options.listen}`,
    ...options.hostKeys.map((k) => `HostKey ${k}`),
    'PidFile none',
    'UsePAM no',
    // The lab's files live under /tmp, which StrictModes would refuse.
    'StrictModes no',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin no',
    `AllowUsers ${options.user}`,
    `AuthorizedKeysFile ${options.authorizedKeys}`,
    `SetEnv CELLOPS_LAB_HOST_ROOT=${options.hostRoot}`,
    'UseDNS no',
    'PrintMotd no',
    'MaxStartups 100:30:200',
    'MaxSessions 64',
    'LogLevel ERROR',
    'Subsystem sftp internal-sftp',
    '',
  ].join('\n');
}

async function generateKey(path: string, type: 'ed25519' | 'ecdsa', comment: string): Promise<void> {
  await must(['ssh-keygen', '-q', '-t', type, '-N', '', '-C', comment, '-f', path]);
}

async function hostKeyInfo(pubPath: string): Promise<LabHostKey> {
  const [type = '', base64 = ''] = readFileSync(pubPath, 'utf8').trim().split(/\s+/);
  const fingerprint = (await must(['ssh-keygen', '-l', '-E', 'sha256', '-f', pubPath])).split(/\s+/)[1] ?? '';
  return { type, publicKey: `${type} ${base64}`, fingerprint };
}

export async function startLab(options: StartLabOptions): Promise<Lab> {
  const root0 = isRoot();
  let namespaces = options.namespaces ?? root0;
  let skipReason: string | undefined;
  if (namespaces && !root0) throw new Error('lab: namespaces need root');
  if (namespaces) {
    const probe = `cellops-probe-${process.pid}`;
    const made = await runCommand(['ip', 'netns', 'add', probe]);
    if (made.code === 0) await runCommand(['ip', 'netns', 'del', probe]);
    else if (namespacesRequired()) {
      throw new Error(
        `lab: CI=true and running as root, but network namespaces cannot be made (\`ip netns add\` failed: ` +
          `${made.stderr.trim()}). CI must test the IP moves, so the lab does not fall back to loopback here: ` +
          'give the runner CAP_SYS_ADMIN and iproute2, or run without CI=true to use the loopback fallback.',
      );
    } else {
      namespaces = false;
      skipReason = `network namespaces cannot be made here (${made.stderr.trim()})`;
    }
  } else {
    skipReason = root0
      ? 'the lab was started with namespaces: false (loopback fallback)'
      : 'not running as root: network namespaces need root (the lab runs on loopback instead)';
  }
  await removeStaleLabs();

  const id = randomBytes(3).toString('hex');
  const root = join('/tmp', `${LAB_PREFIX}${id}`);
  mkdirSync(root, { recursive: true, mode: 0o755 });
  chmodSync(root, 0o755);
  const bridge = `clb${id}`;
  const subnet = claimSubnet(bridge);
  writeFileSync(join(root, 'owner.json'), JSON.stringify({ pid: process.pid, subnet }));

  const sshdChildren: ChildProcess[] = [];
  const specs = options.hosts.map((h, index) => {
    const o = typeof h === 'string' ? { name: h } : h;
    return {
      name: o.name,
      role: o.role ?? defaultRole(o.name),
      index,
      etc: o.etc,
      helperPaths: o.helperPaths,
    };
  });
  if (specs.length > 80) throw new Error('lab: at most 80 hosts');

  let stopped = false;
  const hosts: Record<string, LabHost> = {};
  const sshdByHost = new Map<string, ChildProcess>();
  const hostConfigs = new Map<string, { config: string; ns?: string; veth?: string }>();

  const labUser = root0 ? (namespaces ? LAB_USER : FALLBACK_LAB_USER) : userInfo().username;
  const hostHelper = root0 && namespaces ? HOST_HELPER : undefined;
  const useSudo = root0;
  const sshPort = namespaces ? 22 : await freePort();
  const metricsPort = namespaces ? 61001 : await freePort();
  const rpcPort = namespaces ? 8551 : await freePort();
  const gateway = namespaces ? `10.231.${subnet}.1` : undefined;
  const vipAddress = namespaces ? `10.231.${subnet}.100` : undefined;
  const device = 'eth0';

  const inHost = (name: string, argv: readonly string[]): string[] => {
    const ns = hosts[name]?.netns;
    return ns ? ['ip', 'netns', 'exec', ns, ...argv] : [...argv];
  };

  const lab: Lab = {
    id,
    root,
    namespaces,
    ...(skipReason === undefined ? {} : { skipReason }),
    hosts,
    host(name) {
      const host = hosts[name];
      if (!host) throw new Error(`lab: no host ${name} (hosts: ${Object.keys(hosts).join(', ')})`);
      return host;
    },
    user: labUser,
    privateKeyPath: join(root, 'client', 'id_ed25519'),
    knownHostsPath: join(root, 'client', 'known_hosts'),
    sshPort,
    useSudo,
    binDir: join(root, 'bin'),
    ...(hostHelper === undefined ? {} : { hostHelper }),
    // With the helper, the production defaults: host.conf points the helper at the lab's shims.
    serviceCommand: hostHelper
      ? 'sudo -n systemctl {action} {service}'
      : `${useSudo ? 'sudo -n ' : ''}${join(root, 'bin', 'lab-systemctl')} {action} {service}`,
    attachCommand: hostHelper
      ? 'sudo -n {binary} attach --exec {js} {dataDir}/klay.ipc'
      : `${useSudo ? 'sudo -n ' : ''}${join(root, 'bin')}/{binary} attach --exec {js} {dataDir}/klay.ipc`,
    ...(gateway === undefined ? {} : { gateway }),
    ...(vipAddress === undefined ? {} : { vip: `${vipAddress}/24`, vipAddress }),
    device,
    chain: {
      height: () => chainHeight(readChain(), Date.now()),
      setHeight: (height) => writeChain({ ...readChain(), height, at: Date.now() }),
      stall: () => {
        const state = readChain();
        writeChain({ ...state, height: chainHeight(state, Date.now()), at: Date.now(), stalled: true });
      },
      resume: () => writeChain({ ...readChain(), at: Date.now(), stalled: false }),
      council: () => readChain().council,
      setCouncil: (council) => writeChain({ ...readChain(), council: [...council] }),
    },
    startNode: async (name) => {
      const result = await systemctl(name, 'start');
      if (result.code !== 0)
        throw new Error(`lab: could not start the node on ${name}: ${result.stderr.trim()}`);
    },
    stopNode: async (name) => {
      const result = await systemctl(name, 'stop');
      if (result.code !== 0)
        throw new Error(`lab: could not stop the node on ${name}: ${result.stderr.trim()}`);
    },
    killNode: async (name) => {
      const pidFile = join(lab.host(name).root, 'lab', 'standin.pid');
      const pid = Number(existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : NaN);
      if (!Number.isFinite(pid) || !pidAlive(pid)) return;
      process.kill(pid, 'SIGKILL');
      while (pidAlive(pid)) await delay(20);
    },
    isNodeRunning: async (name) => (await systemctl(name, 'is-active')).code === 0,
    stallNode: (name) => updateFaults(name, { stalledAt: lab.chain.height() }),
    unstallNode: (name) => updateFaults(name, { stalledAt: undefined }),
    isolateNode: (name) => updateFaults(name, { isolated: true }),
    reconnectNode: (name) => updateFaults(name, { isolated: undefined }),
    makeUnreachable: async (name) => {
      lab.host(name);
      if (namespaces) {
        await must(['ip', 'link', 'set', hostConfigs.get(name)?.veth ?? '', 'down']);
        return;
      }
      const child = sshdByHost.get(name);
      if (child && child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
    },
    makeReachable: async (name) => {
      lab.host(name);
      if (namespaces) {
        await must(['ip', 'link', 'set', hostConfigs.get(name)?.veth ?? '', 'up']);
        await waitForTcp(lab.host(name).address, sshPort, 10_000, `sshd of ${name}`);
        return;
      }
      const child = sshdByHost.get(name);
      if (!child || child.exitCode !== null || child.signalCode !== null) await startSshd(name);
    },
    run: (name, argv, runOptions = {}) => {
      lab.host(name);
      return runCommand(inHost(name, argv), {
        ...(runOptions.input === undefined ? {} : { input: runOptions.input }),
        env: { ...process.env, CELLOPS_LAB_HOST_ROOT: lab.host(name).root },
      });
    },
    vipHolders: async () => {
      if (!namespaces || vipAddress === undefined) return [];
      const holders: string[] = [];
      for (const name of Object.keys(hosts)) {
        const shown = await lab.run(name, ['ip', '-4', '-o', 'addr', 'show', 'dev', device]);
        if (shown.stdout.includes(` ${vipAddress}/`)) holders.push(name);
      }
      return holders;
    },
    sshdPid: (name) => sshdByHost.get(name)?.pid,
    flushNeighbours: async () => {
      if (namespaces) await runCommand(['ip', 'neigh', 'flush', 'dev', bridge]);
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      for (const name of Object.keys(hosts)) await systemctl(name, 'stop').catch(() => undefined);
      for (const child of sshdChildren) if (child.exitCode === null) child.kill('SIGKILL');
      await teardownNetwork(id, root).catch(() => undefined);
      rmSync(`/tmp/cellops-lab-subnet-${subnet}.lock`, { force: true });
      rmSync(root, { recursive: true, force: true });
    },
  };

  function readChain(): ChainState {
    const state = readJson<ChainState>(join(root, 'chain.json'));
    if (!state) throw new Error('lab: the chain state is missing (was the lab stopped?)');
    return state;
  }
  function writeChain(state: ChainState): void {
    writeJsonAtomic(join(root, 'chain.json'), state);
  }
  function updateFaults(name: string, change: Partial<Record<keyof HostFaults, unknown>>): void {
    const path = join(lab.host(name).root, 'lab', 'faults.json');
    const next: Record<string, unknown> = { ...(readJson<HostFaults>(path) ?? {}) };
    for (const [key, value] of Object.entries(change)) {
      if (value === undefined) delete next[key];
      else next[key] = value;
    }
    writeJsonAtomic(path, next);
  }
  function systemctl(name: string, action: string): Promise<CommandResult> {
    const host = lab.host(name);
    return lab.run(name, ['/bin/sh', join(root, 'bin', 'lab-systemctl'), action, host.service]);
  }
  async function startSshd(name: string): Promise<void> {
    const host = lab.host(name);
    const conf = hostConfigs.get(name);
    if (!conf) throw new Error(`lab: no sshd config for ${name}`);
    const logFd = openSync(join(host.root, 'ssh', 'sshd.log'), 'a');
    const argv = inHost(name, [SSHD, '-D', '-e', '-f', conf.config]);
    const child = spawn(argv[0] ?? SSHD, argv.slice(1), { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    child.on('error', () => undefined);
    sshdChildren.push(child);
    sshdByHost.set(name, child);
    if (child.pid !== undefined) writeFileSync(join(host.root, 'ssh', 'sshd.pid'), String(child.pid));
    await waitForTcp(host.address, sshPort, 15_000, `sshd of ${name}`);
  }

  try {
    // Users, client key, shims.
    if (root0) {
      await ensureLabUser(namespaces);
      mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    }
    mkdirSync(join(root, 'client'), { mode: 0o755 });
    mkdirSync(join(root, 'bin'), { mode: 0o755 });
    mkdirSync(join(root, 'running'), { mode: 0o755 });
    await generateKey(lab.privateKeyPath, 'ed25519', `cellops-lab-${id}`);
    writeFileSync(join(root, 'client', 'authorized_keys'), readFileSync(`${lab.privateKeyPath}.pub`), {
      mode: 0o644,
    });
    writeFileSync(join(root, 'bin', 'lab-systemctl'), systemctlShim(), { mode: 0o755 });
    writeFileSync(join(root, 'bin', 'attach.mjs'), ATTACH_SCRIPT, { mode: 0o644 });
    for (const binary of ['kcn', 'kpn'])
      writeFileSync(
        join(root, 'bin', binary),
        `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(root, 'bin', 'attach.mjs'))} "$@"\n`,
        { mode: 0o755 },
      );

    if (namespaces) {
      await must(['ip', 'link', 'add', bridge, 'type', 'bridge']);
      await must(['ip', 'addr', 'add', `${gateway}/24`, 'dev', bridge]);
      await must(['ip', 'link', 'set', bridge, 'up']);
      // The hosts have no arping to announce a moved VIP, so the tests' side forgets neighbours quickly
      // instead: a stale ARP entry is re-probed at once and dropped after one unanswered probe.
      for (const [key, value] of Object.entries(NEIGHBOUR_TUNING))
        writeFileSync(`/proc/sys/net/ipv4/neigh/${bridge}/${key}`, value);
    }

    const knownHostLines: string[] = [];
    for (const spec of specs) {
      const hostRoot = join(root, spec.name);
      const service = spec.role === 'pn' ? 'kpnd' : 'kcnd';
      const dataDir = join(hostRoot, 'var', service, 'data');
      const address = namespaces
        ? `10.231.${subnet}.${11 + spec.index}`
        : `127.231.${subnet}.${11 + spec.index}`;
      const ns = namespaces ? `cellops-${id}-${spec.name}` : undefined;
      const veth = `cl${id}v${spec.index}`;
      mkdirSync(join(hostRoot, 'lab'), { recursive: true, mode: 0o755 });
      mkdirSync(join(hostRoot, 'ssh'), { recursive: true, mode: 0o755 });
      mkdirSync(join(dataDir, 'klay'), { recursive: true, mode: 0o755 });
      chmodSync(hostRoot, 0o755);

      const nodekey = randomNodekey();
      writeFileSync(join(dataDir, 'klay', 'nodekey'), nodekey, { mode: 0o600 });

      const keyPaths = [
        join(hostRoot, 'ssh', 'ssh_host_ed25519_key'),
        join(hostRoot, 'ssh', 'ssh_host_ecdsa_key'),
      ];
      await generateKey(keyPaths[0]!, 'ed25519', `${spec.name}@cellops-lab`);
      await generateKey(keyPaths[1]!, 'ecdsa', `${spec.name}@cellops-lab`);
      const hostKeys = [await hostKeyInfo(`${keyPaths[0]}.pub`), await hostKeyInfo(`${keyPaths[1]}.pub`)];
      const config = join(hostRoot, 'ssh', 'sshd_config');
      writeFileSync(
        config,
        sshdConfig({
          port: sshPort,
          listen: namespaces ? '0.0.0.0' : address,
          hostKeys: keyPaths,
          authorizedKeys: join(root, 'client', 'authorized_keys'),
          user: labUser,
          hostRoot,
        }),
      );
      hostConfigs.set(spec.name, { config, ...(ns ? { ns, veth } : {}) });
      const confFile = `${service}/conf/${service}.conf`;
      if (spec.etc && !ns) throw new Error(`lab: ${spec.name}: per-host /etc files need network namespaces`);
      if (ns) {
        const files = Object.entries(spec.etc ?? {}).map(
          ([path, content]) =>
            [path, typeof content === 'string' ? content : content({ root: hostRoot, dataDir })] as const,
        );
        writeHostEtc(ns, {
          ...Object.fromEntries(files),
          'cellops/host.conf': helperConf(
            root,
            hostRoot,
            spec.helperPaths?.({ root: hostRoot, labRoot: root }),
          ),
        });
      }
      const hostSpec: HostSpec = {
        ...(spec.etc?.[confFile] === undefined ? {} : { confFile: `/etc/${confFile}` }),
        name: spec.name,
        role: spec.role,
        service,
        dataDir,
        labRoot: root,
        address,
        bind: namespaces ? '0.0.0.0' : address,
        metricsPort,
        rpcPort,
      };
      writeFileSync(join(hostRoot, 'lab', 'host.json'), JSON.stringify(hostSpec));
      writeFileSync(join(hostRoot, 'lab', 'service'), `${service}\n`);
      writeFileSync(join(hostRoot, 'lab', 'faults.json'), '{}');

      hosts[spec.name] = {
        name: spec.name,
        role: spec.role,
        service,
        binary: spec.role === 'pn' ? 'kpn' : 'kcn',
        address,
        sshPort,
        root: hostRoot,
        dataDir,
        ...(ns ? { netns: ns } : {}),
        metricsUrl: `http://${address}:${metricsPort}/metrics`,
        rpcUrl: `http://${address}:${rpcPort}`,
        initialNodekey: nodekey,
        initialNodeAddress: nodeAddressFromKey(nodekey),
        hostKeys,
      };
      const knownName = sshPort === 22 ? address : `[${address}]:${sshPort}`;
      knownHostLines.push(`${knownName} ${hostKeys[0]!.publicKey}`);

      if (ns) {
        const peer = `cl${id}p${spec.index}`;
        await must(['ip', 'netns', 'add', ns]);
        await must(['ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', peer]);
        await must(['ip', 'link', 'set', peer, 'netns', ns]);
        await must(['ip', '-n', ns, 'link', 'set', peer, 'name', device]);
        await must(['ip', '-n', ns, 'addr', 'add', `${address}/24`, 'dev', device]);
        await must(['ip', '-n', ns, 'link', 'set', device, 'up']);
        await must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
        await must(['ip', 'link', 'set', veth, 'master', bridge, 'up']);
      }
    }
    writeFileSync(lab.knownHostsPath, `${knownHostLines.join('\n')}\n`, { mode: 0o644 });

    writeChain({
      height: options.startHeight ?? 1000,
      at: Date.now(),
      blockMs: options.blockMs ?? 1000,
      stalled: false,
      council: Object.values(hosts)
        .filter((h) => h.role === 'cn')
        .map((h) => h.initialNodeAddress),
      externalCnPeers: options.externalCnPeers ?? 3,
      networkId: 8217,
    });

    await Promise.all(specs.map((spec) => startSshd(spec.name)));

    if (namespaces && options.vipOn !== null) {
      const first = options.vipOn ?? specs.find((s) => s.role === 'cn')?.name;
      if (first !== undefined)
        await must(inHost(first, ['ip', 'addr', 'add', `${vipAddress}/24`, 'dev', device]));
    }
    if (options.startNodes ?? true) await Promise.all(specs.map((spec) => lab.startNode(spec.name)));
    return lab;
  } catch (error) {
    await lab.stop();
    throw error;
  }
}
