/**
 * The privileged operations runbooks perform on a node, built as Shell commands.
 *
 * Two layers: `nodeCommands` builds the exact command text (pure, so `describe()` shows approvers the very
 * command that will run), and `createNodeOps` runs those commands through the Shell port and interprets
 * their results. The command forms are deliberately few and regular — every privileged call is
 * `sudo -n <tool> <args>` — so that the simulated hosts (src/sandbox/sim-hosts.ts) can interpret exactly
 * these forms and fail loudly on anything else.
 *
 * Secrets: file contents travel through stdin (writes) and stdout (reads) only, never on a command line;
 * nothing here logs or returns a file's content except `readFile` to its caller.
 */
import type { ExecResult, Fence, HostRef, Shell } from '../ports/shell.js';
import type { ShellCommand } from '../ports/shell-command.js';
import { operand, sh, shTemplate } from '../ports/shell-command.js';
import { assertDeletableInside } from '../config/plain-path.js';
import type { CellopsConfig } from '../config/config.js';
import { ExternalError, HostError } from '../errors.js';
import { redactThenTruncate } from '../infra/redact.js';

export type ServiceAction = 'start' | 'stop' | 'is-active' | 'enable' | 'disable';

/** The files of a node's identity, in both the current and the legacy location (legacy wins in kcnd). */
export interface NodeKeyPaths {
  /** The DATA_DIR the files are in: the only place cellops deletes (`NodeOps.remove`). */
  readonly dataDir: string;
  /** `$DATA_DIR/klay/nodekey`: where cellops installs keys. */
  readonly nodekey: string;
  /** `$DATA_DIR/nodekey`: legacy location that takes precedence over the one above when present. */
  readonly legacyNodekey: string;
  readonly blsNodekey: string;
  readonly legacyBlsNodekey: string;
}

export function nodeKeyPaths(dataDir: string): NodeKeyPaths {
  const base = dataDir.replace(/\/+$/, '');
  return {
    dataDir: base,
    nodekey: `${base}/klay/nodekey`,
    legacyNodekey: `${base}/nodekey`,
    blsNodekey: `${base}/klay/bls-nodekey`,
    legacyBlsNodekey: `${base}/bls-nodekey`,
  };
}

/** Where a file is moved aside by a run, so that it can be moved back and the run that did it is known. */
export function asidePath(path: string, runId: string): string {
  return `${path}.cellops-${runId}`;
}

/**
 * Where the bls-nodekey of a backup lives: next to the nodekey backup, `…/cn1.nodekey` →
 * `…/cn1.bls-nodekey`, `…/nodekey` → `…/bls-nodekey`, anything else gets `.bls-nodekey` appended.
 */
export function blsBackupPath(nodekeyBackupPath: string): string {
  if (/(^|[/.])nodekey$/.test(nodekeyBackupPath)) return nodekeyBackupPath.replace(/nodekey$/, 'bls-nodekey');
  return `${nodekeyBackupPath}.bls-nodekey`;
}

/** The exact command text of every operation, for running and for `describe()`. */
export const nodeCommands = {
  service(config: CellopsConfig, action: ServiceAction, service: string): ShellCommand {
    return shTemplate(config.ssh.serviceCommand, { action, service });
  },
  exists(path: string): ShellCommand {
    return sh`sudo -n test -e ${operand(path)}`;
  },
  read(path: string): ShellCommand {
    return sh`sudo -n cat -- ${path}`;
  },
  /** Content comes from stdin; `-D` creates the backup directory when missing. */
  write(path: string): ShellCommand {
    return sh`sudo -n install -D -m 0600 -- /dev/stdin ${path}`;
  },
  sha256(path: string): ShellCommand {
    return sh`sudo -n sha256sum -- ${path}`;
  },
  /** Modification time in seconds since the epoch. */
  mtime(path: string): ShellCommand {
    return sh`sudo -n stat -c %Y -- ${path}`;
  },
  move(from: string, to: string): ShellCommand {
    return sh`sudo -n mv -- ${from} ${to}`;
  },
  /** Only ever strictly inside the node's DATA_DIR: a path from a stored fact or a typo cannot widen it. */
  remove(path: string, dataDir: string): ShellCommand {
    assertDeletableInside(path, dataDir);
    return sh`sudo -n rm -f -- ${path}`;
  },
  ipAddr(action: 'add' | 'del', cidr: string, device: string): ShellCommand {
    return action === 'add'
      ? sh`sudo -n ip addr add ${cidr} dev ${device}`
      : sh`sudo -n ip addr del ${cidr} dev ${device}`;
  },
  ipShow(device: string): ShellCommand {
    return sh`sudo -n ip -o addr show dev ${device}`;
  },
  /** Unsolicited ARP (iputils and Habets arping both take these flags) so neighbours update their caches. */
  gratuitousArp(device: string, ip: string): ShellCommand {
    return sh`sudo -n arping -U -c 3 -I ${device} ${ip}`;
  },
  /** Flushes every file system's dirty pages to disk, e.g. before a volume snapshot. */
  sync(): ShellCommand {
    return sh`sudo -n sync`;
  },
  /** Freezes (`-f`) or thaws (`-u`) the file system mounted at `mountPoint`: writes block meanwhile. */
  fsfreeze(action: 'freeze' | 'unfreeze', mountPoint: string): ShellCommand {
    return action === 'freeze'
      ? sh`sudo -n fsfreeze -f -- ${mountPoint}`
      : sh`sudo -n fsfreeze -u -- ${mountPoint}`;
  },
  /**
   * Is a process of this exact name (`kcn`, `kpn`) alive? Asked besides `systemctl is-active` because kcnd's
   * AUTO_RESTART restarts kcn through the init script, outside systemd: the unit can read inactive while kcn
   * runs. Only process ids are printed, never command lines (which may carry `--nodekeyhex`).
   */
  processAlive(binary: string): ShellCommand {
    return sh`sudo -n pgrep -x -- ${binary}`;
  },
} as const;

/** "`cmd` on cn1s (10.0.1.12)": how a command is shown to approvers. */
export function onHost(host: HostRef, command: ShellCommand): string {
  return `\`${command}\` on ${host.name} (${host.address})`;
}

/** The VIP's bare address from CIDR form: 10.0.1.100/24 → 10.0.1.100. */
export function ipOf(cidr: string): string {
  return cidr.split('/')[0] ?? cidr;
}

export interface NodeOpsDeps {
  readonly shell: Shell;
  readonly config: CellopsConfig;
  readonly signal?: AbortSignal;
  /** Per command; default the configuration's ssh.commandTimeout. */
  readonly timeoutMs?: number;
  /** The run's fencing token, handed to hosts that check it (the host helper); absent outside a run. */
  readonly fence?: Fence;
}

/** The fencing token of a step's run for the cell, when the run holds the lock (not in a dry run). */
export function fenceOf(ctx: {
  readonly config: { readonly cell: string };
  readonly fencingToken?: number;
}): Fence | undefined {
  return ctx.fencingToken === undefined ? undefined : { scope: ctx.config.cell, token: ctx.fencingToken };
}

/** The node operations of a step: its shell, configuration and abort signal, and a per-command timeout. */
export function opsOf(
  ctx: {
    readonly ports: { readonly shell: Shell };
    readonly config: CellopsConfig;
    readonly signal: AbortSignal;
    readonly fencingToken?: number;
  },
  timeoutMs?: number,
): NodeOps {
  const fence = fenceOf(ctx);
  return createNodeOps({
    shell: ctx.ports.shell,
    config: ctx.config,
    signal: ctx.signal,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(fence === undefined ? {} : { fence }),
  });
}

/** Runs `fn`, turning "cannot reach the host" (HostError) into the error `as` makes of it. */
export async function mapHostError<T>(fn: () => Promise<T>, as: (error: HostError) => Error): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof HostError) throw as(error);
    throw error;
  }
}

export interface GratuitousArpResult {
  readonly sent: boolean;
  /** What happened, for the step output (e.g. that arping is not installed). */
  readonly note: string;
}

export interface NodeOps {
  /** `enable`/`disable`: whether the unit starts at boot. */
  service(host: HostRef, service: string, action: 'start' | 'stop' | 'enable' | 'disable'): Promise<void>;
  sync(host: HostRef): Promise<void>;
  fsfreeze(host: HostRef, mountPoint: string, action: 'freeze' | 'unfreeze'): Promise<void>;
  /**
   * True only for systemd's "active". Throws when the answer is not a unit state at all (sudo refused, the
   * command failed): a refusal must never read as "stopped".
   */
  isActive(host: HostRef, service: string): Promise<boolean>;
  /** Whether a process named `binary` runs on the host (`pgrep -x`), whatever systemd believes. */
  processAlive(host: HostRef, binary: string): Promise<boolean>;
  exists(host: HostRef, path: string): Promise<boolean>;
  /** The file's content, or undefined when it does not exist. The caller must never log it. */
  readFile(host: HostRef, path: string): Promise<string | undefined>;
  /** Writes `content` (through stdin) with mode 0600, owned by root. */
  writeFile(host: HostRef, path: string, content: string): Promise<void>;
  /** Lower-case hex sha256 of the file, or undefined when it does not exist. */
  sha256(host: HostRef, path: string): Promise<string | undefined>;
  /** Modification time (epoch ms), or undefined when the file does not exist. */
  mtime(host: HostRef, path: string): Promise<number | undefined>;
  move(host: HostRef, from: string, to: string): Promise<void>;
  /** Refused (SafetyGateError, nothing run) unless `path` is strictly inside `dataDir`. */
  remove(host: HostRef, path: string, dataDir: string): Promise<void>;
  /** CIDR addresses (IPv4) on the device. */
  addresses(host: HostRef, device: string): Promise<string[]>;
  ipAdd(host: HostRef, cidr: string, device: string): Promise<void>;
  ipDel(host: HostRef, cidr: string, device: string): Promise<void>;
  /** Never throws for a missing or failing arping: a late ARP update is not worth failing a failover. */
  gratuitousArp(host: HostRef, device: string, ip: string): Promise<GratuitousArpResult>;
}

export class CommandFailedError extends ExternalError {
  readonly exitCode: number;
  constructor(host: HostRef, command: ShellCommand, result: ExecResult) {
    const detail = redactThenTruncate((result.stderr || result.stdout).trim(), 400);
    super(
      'command_failed',
      `${onHost(host, command)} failed with exit status ${result.exitCode}${detail ? `: ${detail}` : ''}`,
    );
    this.exitCode = result.exitCode;
  }
}

export function createNodeOps(deps: NodeOpsDeps): NodeOps {
  const { shell, config } = deps;
  const timeoutMs = deps.timeoutMs ?? config.ssh.commandTimeoutMs;

  const exec = (host: HostRef, command: ShellCommand, stdin?: string) =>
    shell.exec(host, command, {
      timeoutMs,
      ...(deps.signal ? { signal: deps.signal } : {}),
      ...(stdin === undefined ? {} : { stdin }),
      ...(deps.fence ? { fence: deps.fence } : {}),
    });

  const must = async (host: HostRef, command: ShellCommand, stdin?: string): Promise<ExecResult> => {
    const result = await exec(host, command, stdin);
    if (result.exitCode !== 0) throw new CommandFailedError(host, command, result);
    return result;
  };

  /**
   * A probe that answers "no" with exit status 1 and nothing on stderr (`test -e`, `pgrep`). `sudo -n` also
   * exits with 1 when it refuses (password required, command not allowed), but says so on stderr: that is a
   * failure, never "no".
   */
  const probeCommand = async (host: HostRef, command: ShellCommand): Promise<boolean> => {
    const result = await exec(host, command);
    if (result.exitCode === 0) return true;
    if (result.exitCode === 1 && result.stderr.trim() === '') return false;
    throw new CommandFailedError(host, command, result);
  };

  const exists = (host: HostRef, path: string): Promise<boolean> =>
    probeCommand(host, nodeCommands.exists(path));

  return {
    async service(host, service, action) {
      await must(host, nodeCommands.service(config, action, service));
    },
    async sync(host) {
      await must(host, nodeCommands.sync());
    },
    async fsfreeze(host, mountPoint, action) {
      await must(host, nodeCommands.fsfreeze(action, mountPoint));
    },
    async isActive(host, service) {
      // systemctl is-active prints the unit's state (active, inactive, failed, activating, …) and exits 0 only
      // for "active". No state word means the question was not answered (sudo refused, no systemctl).
      const command = nodeCommands.service(config, 'is-active', service);
      const result = await exec(host, command);
      const state = result.stdout.trim();
      if (!/^[a-z-]+$/.test(state)) throw new CommandFailedError(host, command, result);
      return result.exitCode === 0 && state === 'active';
    },
    async processAlive(host, binary) {
      return probeCommand(host, nodeCommands.processAlive(binary));
    },
    exists,
    async readFile(host, path) {
      if (!(await exists(host, path))) return undefined;
      const command = nodeCommands.read(path);
      const result = await exec(host, command);
      // The error must not carry stdout: it may be part of a key.
      if (result.exitCode !== 0) throw new CommandFailedError(host, command, { ...result, stdout: '' });
      return result.stdout;
    },
    async writeFile(host, path, content) {
      await must(host, nodeCommands.write(path), content);
    },
    async sha256(host, path) {
      if (!(await exists(host, path))) return undefined;
      const result = await must(host, nodeCommands.sha256(path));
      const digest = /^([0-9a-f]{64})\b/i.exec(result.stdout.trim())?.[1];
      if (!digest)
        throw new ExternalError(
          'command_failed',
          `${onHost(host, nodeCommands.sha256(path))} printed no checksum`,
        );
      return digest.toLowerCase();
    },
    async mtime(host, path) {
      if (!(await exists(host, path))) return undefined;
      const command = nodeCommands.mtime(path);
      const seconds = Number((await must(host, command)).stdout.trim());
      if (!Number.isFinite(seconds))
        throw new ExternalError('command_failed', `${onHost(host, command)} printed no time`);
      return seconds * 1000;
    },
    async move(host, from, to) {
      await must(host, nodeCommands.move(from, to));
    },
    async remove(host, path, dataDir) {
      await must(host, nodeCommands.remove(path, dataDir));
    },
    async addresses(host, device) {
      const result = await must(host, nodeCommands.ipShow(device));
      return [...result.stdout.matchAll(/\binet (\d{1,3}(?:\.\d{1,3}){3}\/\d{1,2})/g)].map((m) => m[1] ?? '');
    },
    async ipAdd(host, cidr, device) {
      await must(host, nodeCommands.ipAddr('add', cidr, device));
    },
    async ipDel(host, cidr, device) {
      await must(host, nodeCommands.ipAddr('del', cidr, device));
    },
    async gratuitousArp(host, device, ip) {
      const command = nodeCommands.gratuitousArp(device, ip);
      const result = await exec(host, command);
      if (result.exitCode === 0)
        return { sent: true, note: `sent gratuitous ARP for ${ip} from ${host.name} on ${device}` };
      const text = `${result.stderr} ${result.stdout}`;
      if (result.exitCode === 127 || /command not found|not found/i.test(text))
        return {
          sent: false,
          note:
            `arping is not installed on ${host.name}: no gratuitous ARP was sent, so neighbours learn the ` +
            `move of ${ip} only when their ARP entries expire (usually within a minute); install iputils-arping to speed this up`,
        };
      return {
        sent: false,
        note: `gratuitous ARP from ${host.name} failed (exit status ${result.exitCode}: ${redactThenTruncate(text.trim(), 200)}); neighbours learn the move when their ARP entries expire`,
      };
    },
  };
}
