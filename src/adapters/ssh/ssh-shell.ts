/**
 * The Shell port over ssh2: key authentication, host keys always checked against an OpenSSH known_hosts
 * file, an optional bastion (jump host through `forwardOut`), one connection per host reused until it
 * closes, a timeout per command and bounded output capture.
 *
 * Secrets travel on stdin (ExecOptions.stdin), never on a command line, and stdin is never logged.
 */
import { readFile as fsReadFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import type { Duplex } from 'node:stream';
import type { CellopsConfig } from '../../config/config.js';
import { CellopsError, HostError, StepTimeoutError, describeError } from '../../errors.js';
import type { Logger } from '../../ports/logger.js';
import type { ShellCommand } from '../../ports/shell-command.js';
import type { ExecOptions, ExecResult, HostRef, Shell } from '../../ports/shell.js';
import {
  blobKeyType,
  fingerprintSha256,
  knownHostsName,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  verifyHostKey,
  type KnownHosts,
} from './known-hosts.js';

const { Client } = ssh2;
type SshClient = InstanceType<typeof Client>;

/** Bytes kept of each of stdout and stderr; the rest is read and dropped so the remote never blocks. */
export const OUTPUT_LIMIT_BYTES = 256 * 1024;

/** ssh2's default host key algorithms, in its order, to follow the ones known for a host. */
const DEFAULT_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  HUP: 1,
  INT: 2,
  QUIT: 3,
  KILL: 9,
  PIPE: 13,
  TERM: 15,
};

export interface SshShellDeps {
  readonly ssh: CellopsConfig['ssh'];
  readonly logger: Logger;
  /** Reads the private key and known_hosts files; injectable for tests. Default fs.readFile. */
  readonly readFile?: (path: string) => Promise<Buffer>;
  /** Bytes kept per output stream. Default OUTPUT_LIMIT_BYTES (256 KiB). */
  readonly outputLimitBytes?: number;
}

/** One SSH endpoint: a cell host or the bastion. */
interface Endpoint {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly user: string;
}

function where(endpoint: Endpoint): string {
  const port = endpoint.port === 22 ? '' : ` port ${endpoint.port}`;
  return endpoint.name === endpoint.address
    ? `${endpoint.address}${port}`
    : `${endpoint.name} (${endpoint.address}${port})`;
}

class BoundedBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    const room = this.limit - this.size;
    if (room <= 0) {
      if (chunk.length > 0) this.truncated = true;
      return;
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (kept.length < chunk.length) this.truncated = true;
    this.chunks.push(Buffer.from(kept));
    this.size += kept.length;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

export function createSshShell(deps: SshShellDeps): Shell {
  const { ssh, logger } = deps;
  const readFile = deps.readFile ?? ((path: string) => fsReadFile(path));
  const outputLimit = deps.outputLimitBytes ?? OUTPUT_LIMIT_BYTES;
  const connections = new Map<string, Promise<SshClient>>();
  /** Cache key of each open client, to forget one whose connection turned out dead. */
  const keys = new Map<SshClient, string>();
  let closed = false;

  const bastion: Endpoint | undefined = ssh.bastion && {
    name: 'bastion',
    address: ssh.bastion.host,
    port: ssh.bastion.port,
    user: ssh.bastion.user,
  };

  async function loadSecrets(): Promise<{ privateKey: Buffer; knownHosts: KnownHosts }> {
    let privateKey: Buffer;
    try {
      privateKey = await readFile(ssh.privateKeyPath);
    } catch (error) {
      throw new CellopsError(
        'bad_config',
        `cannot read the SSH private key ${ssh.privateKeyPath} (ssh.privateKey): ${describeError(error)}`,
        { cause: error },
      );
    }
    let knownHostsText: string;
    try {
      knownHostsText = (await readFile(ssh.knownHostsPath)).toString('utf8');
    } catch (error) {
      throw new CellopsError(
        'bad_config',
        `cannot read the known_hosts file ${ssh.knownHostsPath} (ssh.knownHosts): ${describeError(error)}`,
        { cause: error },
      );
    }
    const knownHosts = parseKnownHosts(knownHostsText);
    if (knownHosts.problems.length > 0)
      logger.warn(
        { knownHosts: ssh.knownHostsPath, problems: knownHosts.problems },
        'known_hosts has lines that were skipped',
      );
    return { privateKey, knownHosts };
  }

  function hostKeyError(endpoint: Endpoint, offered: Buffer, knownHosts: KnownHosts): HostError | undefined {
    const verdict = verifyHostKey(knownHosts, endpoint.address, endpoint.port, offered);
    const type = blobKeyType(offered) ?? 'unknown-type';
    const fingerprint = fingerprintSha256(offered);
    const name = knownHostsName(endpoint.address, endpoint.port);
    switch (verdict.kind) {
      case 'trusted':
        return undefined;
      case 'unknown':
        return new HostError(
          'host_key_unknown',
          `${where(endpoint)} is not in the known_hosts file ${ssh.knownHostsPath}; it offered the ${type} ` +
            `host key ${fingerprint}. Nothing was run. Compare that fingerprint with the host's own ` +
            `(ssh-keygen -lf /etc/ssh/ssh_host_${type.replace(/^ssh-|-.*$/g, '')}_key.pub on the host) and, ` +
            `if it matches, add it: ssh-keyscan -p ${endpoint.port} ${endpoint.address} >> ${ssh.knownHostsPath}`,
        );
      case 'revoked':
        return new HostError(
          'host_key_mismatch',
          `${where(endpoint)} offered the ${type} host key ${fingerprint}, which ${ssh.knownHostsPath} marks ` +
            `@revoked. Nothing was run. Give the host a new host key and list it in known_hosts.`,
        );
      case 'changed': {
        const listed = verdict.known
          .map((k) => `${k.type} ${fingerprintSha256(k.blob)} (line ${k.line})`)
          .join(', ');
        return new HostError(
          'host_key_mismatch',
          `the host key of ${where(endpoint)} has CHANGED: it offered ${type} ${fingerprint}, but ` +
            `${ssh.knownHostsPath} lists ${listed}. Nothing was run. This is what a man-in-the-middle ` +
            `looks like; if the host was reinstalled on purpose, verify the new fingerprint on the host, then ` +
            `ssh-keygen -R '${name}' -f ${ssh.knownHostsPath} and add the new key.`,
        );
      }
    }
  }

  function connectionError(endpoint: Endpoint, error: unknown, via?: Endpoint): CellopsError {
    if (error instanceof CellopsError) return error;
    const detail = describeError(error);
    const level = (error as { level?: unknown } | undefined)?.level;
    const code = (error as { code?: unknown } | undefined)?.code;
    const route = via ? ` through the bastion ${where(via)}` : '';
    if (level === 'client-authentication')
      return new HostError(
        'auth_failed',
        `SSH authentication as ${endpoint.user} on ${where(endpoint)} failed with the key ` +
          `${ssh.privateKeyPath}. Check that its public key is in ~${endpoint.user}/.ssh/authorized_keys ` +
          `on the host and that ssh.user is right.`,
        error,
      );
    if (
      /encrypted|passphrase|parse|unsupported key/i.test(detail) &&
      level === undefined &&
      code === undefined
    )
      return new CellopsError(
        'bad_config',
        `cannot use the SSH private key ${ssh.privateKeyPath} (ssh.privateKey): ${detail}. ` +
          `cellops needs an unencrypted OpenSSH or PEM key.`,
        { cause: error },
      );
    const timeout = level === 'client-timeout' || code === 'ETIMEDOUT';
    return new HostError(
      'host_unreachable',
      `cannot reach ${where(endpoint)} over SSH${route}: ${timeout ? `no SSH handshake within ${ssh.connectTimeoutMs} ms (ssh.connectTimeout)` : detail}. ` +
        `Check that the host is up, that sshd listens on port ${endpoint.port} and that no firewall drops it.`,
      error,
    );
  }

  function connect(endpoint: Endpoint, sock?: Duplex, via?: Endpoint): Promise<SshClient> {
    return loadSecrets().then(
      ({ privateKey, knownHosts }) =>
        new Promise<SshClient>((resolve, reject) => {
          const client = new Client();
          let hostKeyFailure: HostError | undefined;
          let settled = false;
          const fail = (error: unknown): void => {
            if (settled) return;
            settled = true;
            client.end();
            reject(hostKeyFailure ?? connectionError(endpoint, error, via));
          };
          client.once('ready', () => {
            settled = true;
            resolve(client);
          });
          client.on('error', (error) => {
            if (!settled) fail(error);
            else logger.warn({ host: endpoint.name, err: describeError(error) }, 'SSH connection error');
          });
          client.once('close', () => {
            if (!settled) fail(new Error('the connection closed during the SSH handshake'));
          });
          const known = knownHosts.keysFor(endpoint.address, endpoint.port);
          const preferred = preferredHostKeyAlgorithms(known).filter((a) =>
            DEFAULT_HOST_KEY_ALGORITHMS.includes(a),
          );
          const config: ConnectConfig = {
            host: endpoint.address,
            port: endpoint.port,
            username: endpoint.user,
            privateKey,
            readyTimeout: ssh.connectTimeoutMs,
            keepaliveInterval: 15_000,
            algorithms: {
              serverHostKey: [
                ...preferred,
                ...DEFAULT_HOST_KEY_ALGORITHMS.filter((a) => !preferred.includes(a)),
              ] as NonNullable<ConnectConfig['algorithms']>['serverHostKey'],
            },
            hostVerifier: (key: Buffer) => {
              hostKeyFailure = hostKeyError(endpoint, key, knownHosts);
              if (hostKeyFailure)
                logger.warn(
                  { host: endpoint.name, address: endpoint.address, code: hostKeyFailure.code },
                  'refused the host key',
                );
              return hostKeyFailure === undefined;
            },
            ...(sock ? { sock } : {}),
          };
          try {
            client.connect(config);
          } catch (error) {
            fail(error);
          }
        }),
    );
  }

  /** The cached connection for a key, or a new one; a failed or closed connection is forgotten. */
  function cached(key: string, open: () => Promise<SshClient>): Promise<SshClient> {
    const existing = connections.get(key);
    if (existing) return existing;
    const pending = open();
    connections.set(key, pending);
    pending.then(
      (client) => {
        keys.set(client, key);
        const forget = (): void => {
          keys.delete(client);
          if (connections.get(key) === pending) connections.delete(key);
        };
        client.once('close', forget);
        client.once('end', forget);
      },
      () => {
        if (connections.get(key) === pending) connections.delete(key);
      },
    );
    return pending;
  }

  /** Drops a client whose connection failed under a command, so the next command connects again. */
  function evict(client: SshClient): void {
    const key = keys.get(client);
    keys.delete(client);
    if (key !== undefined) connections.delete(key);
    client.end();
  }

  function clientFor(target: Endpoint): Promise<SshClient> {
    if (closed) return Promise.reject(new CellopsError('closed', 'the SSH shell was closed'));
    const key = `${target.user}@${target.address}:${target.port}`;
    if (!bastion) return cached(key, () => connect(target));
    const jump = bastion;
    return cached(key, async () => {
      const jumpClient = await cached(`bastion:${jump.user}@${jump.address}:${jump.port}`, () =>
        connect(jump),
      );
      const stream = await new Promise<ClientChannel>((resolve, reject) => {
        jumpClient.forwardOut('127.0.0.1', 0, target.address, target.port, (error, channel) => {
          if (error) reject(connectionError(target, error, jump));
          else resolve(channel);
        });
      });
      return connect(target, stream, jump);
    });
  }

  async function exec(host: HostRef, command: ShellCommand, options: ExecOptions = {}): Promise<ExecResult> {
    const target: Endpoint = { name: host.name, address: host.address, port: ssh.port, user: ssh.user };
    const timeoutMs = options.timeoutMs ?? ssh.commandTimeoutMs;
    if (options.signal?.aborted) throw abortError(options.signal, target);
    const client = await clientFor(target);
    const started = performance.now();
    const log = logger.child({ host: host.name, address: host.address });
    log.debug({ command, timeoutMs, stdinBytes: stdinLength(options.stdin) }, 'ssh exec');

    const result = await new Promise<ExecResult>((resolve, reject) => {
      client.exec(command, (error, channel) => {
        if (error) {
          evict(client);
          reject(
            new HostError(
              'host_unreachable',
              `could not start a command on ${where(target)}: ${error.message}. The SSH connection may have ` +
                `dropped or sshd refused a new session (MaxSessions); try again.`,
              error,
            ),
          );
          return;
        }
        const stdout = new BoundedBuffer(outputLimit);
        const stderr = new BoundedBuffer(outputLimit);
        let exitCode: number | undefined;
        let finished = false;

        const finish = (outcome: { error: Error } | undefined): void => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          if (outcome) {
            reject(outcome.error);
            return;
          }
          resolve({
            exitCode: exitCode ?? 255,
            stdout: stdout.text(),
            stderr: stderr.text(),
            truncated: stdout.truncated || stderr.truncated,
            durationMs: performance.now() - started,
          });
        };
        const kill = (error: Error): void => {
          // Ask sshd to kill the process, then drop the channel whether or not it honours the signal.
          try {
            channel.signal('KILL');
          } catch {
            // the channel may already be closing
          }
          channel.close();
          finish({ error });
        };
        const timer = setTimeout(
          () =>
            kill(
              new StepTimeoutError(
                `the command on ${where(target)} did not finish within ${timeoutMs} ms and was killed: ${command}`,
              ),
            ),
          timeoutMs,
        );
        const onAbort = (): void => kill(abortError(options.signal, target));
        if (options.signal?.aborted) {
          onAbort();
          return;
        }
        options.signal?.addEventListener('abort', onAbort, { once: true });

        channel.on('data', (chunk: Buffer) => stdout.push(chunk));
        channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        channel.on('exit', (code: number | null, signalName?: string) => {
          if (typeof code === 'number') exitCode = code;
          else if (signalName) exitCode = 128 + (SIGNAL_NUMBERS[signalName] ?? 127);
        });
        channel.on('close', () => {
          if (finished) return;
          if (exitCode !== undefined) {
            finish(undefined);
            return;
          }
          // No exit status: the connection dropped mid-command, so whether it ran to the end is unknown.
          evict(client);
          finish({
            error: new HostError(
              'host_unreachable',
              `the SSH connection to ${where(target)} closed before the command reported an exit status; ` +
                `whether it completed is unknown, check the host before retrying: ${command}`,
            ),
          });
        });
        channel.on('error', (channelError: Error) =>
          finish({ error: connectionError(target, channelError, bastion) }),
        );
        if (options.stdin === undefined) channel.end();
        else channel.end(Buffer.from(options.stdin));
      });
    });
    log.debug(
      { exitCode: result.exitCode, durationMs: Math.round(result.durationMs), truncated: result.truncated },
      'ssh exec done',
    );
    return result;
  }

  async function close(): Promise<void> {
    closed = true;
    const pending = [...connections.values()];
    connections.clear();
    const clients = await Promise.allSettled(pending);
    await Promise.all(
      clients.map((settled) =>
        settled.status === 'fulfilled'
          ? new Promise<void>((resolve) => {
              const client = settled.value;
              client.once('close', () => resolve());
              client.end();
              // A dead peer never sends the close; do not let shutdown wait on it.
              setTimeout(resolve, 1000).unref();
            })
          : Promise.resolve(),
      ),
    );
  }

  return { exec, close };
}

/** The signal's reason when it is an Error (the engine aborts with its own errors), else a plain one. */
function abortError(signal: AbortSignal | undefined, target: Endpoint): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason;
  return new CellopsError('aborted', `the command on ${where(target)} was aborted`);
}

function stdinLength(stdin: ExecOptions['stdin']): number | undefined {
  if (stdin === undefined) return undefined;
  return typeof stdin === 'string' ? Buffer.byteLength(stdin) : stdin.length;
}
