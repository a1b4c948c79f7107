/**
 * What rebuild-standby (rebuild-standby.ts) does on a machine beyond the shared node operations: free disk
 * space, the key files moved aside by earlier runs, a fresh nodekey made on the machine itself, and the
 * PNs' kni URLs for static-nodes.json. Like node-ops.ts, every privileged call is one fixed
 * `sudo -n <tool> <args>` command (the simulated hosts interpret exactly these forms).
 *
 * The fresh key never leaves its host: `install` creates the empty file with mode 0600 first, then
 * `openssl rand` fills it in place; nothing of it is printed, and cellops only ever reads its checksum.
 */
import type { CellopsConfig, NodeInventoryEntry } from '../config/config.js';
import type { Fence, HostRef, Shell } from '../ports/shell.js';
import { operand, sh, shTemplate, type ShellCommand } from '../ports/shell-command.js';
import { CommandFailedError, onHost } from './node-ops.js';
import { ExternalError } from '../errors.js';

/** Names of files moved aside by cellops runs (`<path>.cellops-<run>`), in both key locations. */
const ASIDE_PATTERN = '*nodekey.cellops-*';

export const rebuildCommands = {
  /** POSIX output: one header line, then `fs 1024-blocks used available capacity mount`. */
  freeSpace(dir: string): ShellCommand {
    return sh`sudo -n df -Pk -- ${dir}`;
  },
  /** DATA_DIR and DATA_DIR/klay: where kcnd's key files and their moved-aside copies live. */
  listAside(dataDir: string): ShellCommand {
    return sh`sudo -n find ${operand(dataDir)} -maxdepth 2 -name ${ASIDE_PATTERN}`;
  },
  /** An empty file with mode 0600 (fails nothing if it exists: the caller checks first). */
  createPrivate(path: string): ShellCommand {
    return sh`sudo -n install -m 0600 -- /dev/null ${path}`;
  },
  /** 32 random bytes as 64 hex characters (and a newline) into the existing 0600 file. */
  randomKey(path: string): ShellCommand {
    return sh`sudo -n openssl rand -hex -out ${operand(path)} 32`;
  },
  size(path: string): ShellCommand {
    return sh`sudo -n stat -c %s -- ${path}`;
  },
  nodeInfo(config: CellopsConfig, node: NodeInventoryEntry): ShellCommand {
    return shTemplate(config.ssh.attachCommand, {
      binary: node.endpoint.binary,
      js: 'admin.nodeInfo',
      dataDir: node.dataDir,
    });
  },
} as const;

export interface RebuildOps {
  /** Bytes free for the data directory's file system. */
  freeBytes(host: HostRef, dir: string): Promise<number>;
  /** Paths of key files moved aside under DATA_DIR (nodekey and bls-nodekey copies), sorted. */
  asideFiles(host: HostRef, dataDir: string): Promise<string[]>;
  /** Makes a fresh nodekey at `path` on the host; it is never read by cellops. */
  makeNodekey(host: HostRef, path: string): Promise<void>;
  size(host: HostRef, path: string): Promise<number>;
  /** The node's kni URL as it reports it (admin.nodeInfo over IPC through SSH). */
  kni(node: NodeInventoryEntry): Promise<string>;
}

export function createRebuildOps(deps: {
  readonly shell: Shell;
  readonly config: CellopsConfig;
  readonly signal: AbortSignal;
  /** The run's fencing token, for hosts that check it (the host helper). */
  readonly fence?: Fence;
}): RebuildOps {
  const { shell, config, signal, fence } = deps;
  const must = async (host: HostRef, command: ShellCommand): Promise<string> => {
    const result = await shell.exec(host, command, {
      timeoutMs: config.ssh.commandTimeoutMs,
      signal,
      ...(fence ? { fence } : {}),
    });
    if (result.exitCode !== 0) throw new CommandFailedError(host, command, result);
    return result.stdout;
  };
  const unreadable = (host: HostRef, command: ShellCommand, what: string) =>
    new ExternalError('command_failed', `${onHost(host, command)} printed no ${what}`);
  return {
    async freeBytes(host, dir) {
      const command = rebuildCommands.freeSpace(dir);
      const line = (await must(host, command)).trim().split('\n').at(-1) ?? '';
      const available = Number(line.trim().split(/\s+/)[3]);
      if (!Number.isFinite(available)) throw unreadable(host, command, 'free space');
      return available * 1024;
    },
    async asideFiles(host, dataDir) {
      const out = await must(host, rebuildCommands.listAside(dataDir));
      return out
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line.startsWith('/'))
        .sort();
    },
    async makeNodekey(host, path) {
      await must(host, rebuildCommands.createPrivate(path));
      await must(host, rebuildCommands.randomKey(path));
    },
    async size(host, path) {
      const command = rebuildCommands.size(path);
      const bytes = Number((await must(host, command)).trim());
      if (!Number.isFinite(bytes)) throw unreadable(host, command, 'size');
      return bytes;
    },
    async kni(node) {
      const command = rebuildCommands.nodeInfo(config, node);
      const out = await must(node.host, command);
      let info: unknown;
      try {
        info = JSON.parse(out);
      } catch {
        throw unreadable(node.host, command, 'node info (not JSON)');
      }
      const kni = (info as { kni?: unknown; enode?: unknown }).kni ?? (info as { enode?: unknown }).enode;
      if (typeof kni !== 'string' || !/^(kni|enode):\/\/[0-9a-f]{128}@/i.test(kni))
        throw unreadable(node.host, command, 'kni URL');
      return kni;
    },
  };
}

/** The kni URL as the standby should dial it: the PN's configured address, keeping its id, port and query. */
export function kniAt(kni: string, address: string): string {
  const match = /^(kni|enode):\/\/([0-9a-fA-F]{128})@[^:/?]*(?::(\d+))?(\?.*)?$/.exec(kni);
  if (!match) return kni;
  const [, , id, port, query] = match;
  const host = address.includes(':') ? `[${address}]` : address;
  return `kni://${id}@${host}:${port ?? '32323'}${query ?? '?ntype=pn'}`;
}
