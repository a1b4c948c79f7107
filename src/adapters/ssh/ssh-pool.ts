/**
 * One SSH connection per host, reused until it closes, optionally reached through a bastion (a jump host,
 * via `forwardOut`) whose own connection is shared the same way.
 */
import type { ClientChannel } from 'ssh2';
import type { Duplex } from 'node:stream';
import { CellopsError } from '../../errors.js';
import type { SshClient } from './ssh-connect.js';
import type { Endpoint } from './ssh-endpoint.js';

export interface ConnectionPool {
  /** The open connection to `target`, or a new one (through the bastion when there is one). */
  clientFor(target: Endpoint): Promise<SshClient>;
  /** Drops a client whose connection failed under a command, so the next command connects again. */
  evict(client: SshClient): void;
  /** Closes every connection; clientFor rejects from then on. */
  close(): Promise<void>;
}

export interface ConnectionPoolDeps {
  readonly bastion: Endpoint | undefined;
  readonly connect: (endpoint: Endpoint, sock?: Duplex, via?: Endpoint) => Promise<SshClient>;
  /** The error for a bastion that refused to forward to `target`. */
  readonly forwardError: (target: Endpoint, error: unknown, via: Endpoint) => Error;
}

export function createConnectionPool(deps: ConnectionPoolDeps): ConnectionPool {
  const { bastion, connect } = deps;
  const connections = new Map<string, Promise<SshClient>>();
  /** Cache key of each open client, to forget one whose connection turned out dead. */
  const keys = new Map<SshClient, string>();
  let closed = false;

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

  function clientFor(target: Endpoint): Promise<SshClient> {
    if (closed) return Promise.reject(new CellopsError('closed', 'the SSH shell was closed'));
    // A connection verified under one pin (or known_hosts) is not reused for a request under another.
    const pin = target.hostKeys === undefined ? '' : `#${[...target.hostKeys].sort().join(',')}`;
    const key = `${target.user}@${target.address}:${target.port}${pin}`;
    if (!bastion) return cached(key, () => connect(target));
    const jump = bastion;
    return cached(key, async () => {
      const jumpClient = await cached(`bastion:${jump.user}@${jump.address}:${jump.port}`, () =>
        connect(jump),
      );
      const stream = await new Promise<ClientChannel>((resolve, reject) => {
        jumpClient.forwardOut('127.0.0.1', 0, target.address, target.port, (error, channel) => {
          if (error) reject(deps.forwardError(target, error, jump));
          else resolve(channel);
        });
      });
      return connect(target, stream, jump);
    });
  }

  function evict(client: SshClient): void {
    const key = keys.get(client);
    keys.delete(client);
    if (key !== undefined) connections.delete(key);
    client.end();
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

  return { clientFor, evict, close };
}
