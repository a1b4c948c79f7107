/**
 * The Shell port over ssh2: key authentication, host keys always checked against an OpenSSH known_hosts
 * file (or against the keys pinned for a host, HostRef.hostKeys), an optional bastion (jump host through `forwardOut`), one connection per host reused until it
 * closes, a timeout per command and bounded output capture.
 *
 * Secrets travel on stdin (ExecOptions.stdin), never on a command line, and stdin is never logged.
 *
 * The parts: ssh-connect.ts (one connection, host-key verification), ssh-pool.ts (reuse, bastion),
 * ssh-exec.ts (one command with bounds and timeouts), ssh-errors.ts (the operator-facing errors).
 */
import { readFile as fsReadFile, stat } from 'node:fs/promises';
import type { CellopsConfig } from '../../config/config.js';
import type { Logger } from '../../ports/logger.js';
import type { ShellCommand } from '../../ports/shell-command.js';
import type { ExecOptions, ExecResult, HostRef, Shell } from '../../ports/shell.js';
import { connect, knownHostKeys } from './ssh-connect.js';
import type { Endpoint } from './ssh-endpoint.js';
import { abortError, connectionError } from './ssh-errors.js';
import { execOn } from './ssh-exec.js';
import { createConnectionPool } from './ssh-pool.js';

/** Bytes kept of each of stdout and stderr; the rest is read and dropped so the remote never blocks. */
export const OUTPUT_LIMIT_BYTES = 256 * 1024;

export interface SshShellDeps {
  readonly ssh: CellopsConfig['ssh'];
  readonly logger: Logger;
  /** Reads the private key and known_hosts files; injectable for tests. Default fs.readFile. */
  readonly readFile?: (path: string) => Promise<Buffer>;
  /** Where the key passphrase (ssh.passphraseEnv) and SSH_AUTH_SOCK are read. Default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Bytes kept per output stream. Default OUTPUT_LIMIT_BYTES (256 KiB). */
  readonly outputLimitBytes?: number;
}

export function createSshShell(deps: SshShellDeps): Shell {
  const { ssh, logger } = deps;
  const connectDeps = {
    ssh,
    logger,
    readFile: deps.readFile ?? ((path: string) => fsReadFile(path)),
    fileMode: async (path: string) => (await stat(path)).mode,
    env: deps.env ?? process.env,
  };
  const outputLimit = deps.outputLimitBytes ?? OUTPUT_LIMIT_BYTES;
  const bastion: Endpoint | undefined = ssh.bastion && {
    name: 'bastion',
    address: ssh.bastion.host,
    port: ssh.bastion.port,
    user: ssh.bastion.user,
  };
  const pool = createConnectionPool({
    bastion,
    connect: (endpoint, sock, via) => connect(connectDeps, endpoint, sock, via),
    forwardError: (target, error, via) => connectionError(ssh, target, error, via),
  });

  async function exec(host: HostRef, command: ShellCommand, options: ExecOptions = {}): Promise<ExecResult> {
    const target: Endpoint = {
      name: host.name,
      address: host.address,
      port: ssh.port,
      user: ssh.user,
      ...(host.hostKeys === undefined ? {} : { hostKeys: host.hostKeys }),
    };
    const timeoutMs = options.timeoutMs ?? ssh.commandTimeoutMs;
    if (options.signal?.aborted) throw abortError(options.signal, target);
    const client = await pool.clientFor(target);
    const started = performance.now();
    const log = logger.child({ host: host.name, address: host.address });
    log.debug({ command, timeoutMs, stdinBytes: stdinLength(options.stdin) }, 'ssh exec');
    const result = await execOn({
      client,
      target,
      command,
      options,
      timeoutMs,
      outputLimit,
      started,
      evict: (dead) => pool.evict(dead),
      channelError: (error) => connectionError(ssh, target, error, bastion),
    });
    log.debug(
      { exitCode: result.exitCode, durationMs: Math.round(result.durationMs), truncated: result.truncated },
      'ssh exec done',
    );
    return result;
  }

  return {
    exec,
    knownHostKeys: (address) => knownHostKeys(connectDeps, address),
    close: () => pool.close(),
  };
}

function stdinLength(stdin: ExecOptions['stdin']): number | undefined {
  if (stdin === undefined) return undefined;
  return typeof stdin === 'string' ? Buffer.byteLength(stdin) : stdin.length;
}
