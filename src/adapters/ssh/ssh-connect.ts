/**
 * Opening one SSH connection: key authentication, and the host key checked against the known_hosts file
 * before anything is sent. The key and known_hosts files are read for each new connection.
 */
import ssh2 from 'ssh2';
import type { ConnectConfig } from 'ssh2';
import type { Duplex } from 'node:stream';
import { CellopsError, type HostError, describeError } from '../../errors.js';
import type { Logger } from '../../ports/logger.js';
import { parseKnownHosts, preferredHostKeyAlgorithms, type KnownHosts } from './known-hosts.js';
import type { Endpoint, SshSettings } from './ssh-endpoint.js';
import { connectionError, hostKeyError, pinnedHostKeyError } from './ssh-errors.js';

const { Client } = ssh2;
export type SshClient = InstanceType<typeof Client>;

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

export interface ConnectDeps {
  readonly ssh: SshSettings;
  readonly logger: Logger;
  readonly readFile: (path: string) => Promise<Buffer>;
}

async function loadSecrets(deps: ConnectDeps): Promise<{ privateKey: Buffer; knownHosts: KnownHosts }> {
  const { ssh, logger, readFile } = deps;
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

/** `<type> <base64>` of every key known_hosts lists for `address` on the configured port. */
export async function knownHostKeys(deps: ConnectDeps, address: string): Promise<readonly string[]> {
  const { knownHosts } = await loadSecrets(deps);
  return knownHosts.keysFor(address, deps.ssh.port).map((k) => `${k.type} ${k.blob.toString('base64')}`);
}

/**
 * Connects to `endpoint`, directly or over `sock` (a channel forwarded by the bastion `via`). Resolves
 * once authenticated; rejects with the host-key refusal if there was one, else a connection error.
 */
export async function connect(
  deps: ConnectDeps,
  endpoint: Endpoint,
  sock?: Duplex,
  via?: Endpoint,
): Promise<SshClient> {
  const { ssh, logger } = deps;
  const { privateKey, knownHosts } = await loadSecrets(deps);
  return new Promise<SshClient>((resolve, reject) => {
    const client = new Client();
    let hostKeyFailure: HostError | undefined;
    let settled = false;
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      client.end();
      reject(hostKeyFailure ?? connectionError(ssh, endpoint, error, via));
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
    const config: ConnectConfig = {
      host: endpoint.address,
      port: endpoint.port,
      username: endpoint.user,
      privateKey,
      readyTimeout: ssh.connectTimeoutMs,
      keepaliveInterval: 15_000,
      algorithms: { serverHostKey: hostKeyAlgorithms(knownHosts, endpoint) },
      hostVerifier: (key: Buffer) => {
        hostKeyFailure =
          endpoint.hostKeys === undefined
            ? hostKeyError(ssh, endpoint, key, knownHosts)
            : pinnedHostKeyError(ssh, endpoint, key, knownHosts);
        if (hostKeyFailure)
          logger.warn(
            {
              host: endpoint.name,
              address: endpoint.address,
              code: hostKeyFailure.code,
              pinned: endpoint.hostKeys !== undefined,
            },
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
  });
}

/**
 * The key types pinned for the host, else those known_hosts lists for it, first, so the server offers a
 * key that can be checked.
 */
function hostKeyAlgorithms(
  knownHosts: KnownHosts,
  endpoint: Endpoint,
): NonNullable<ConnectConfig['algorithms']>['serverHostKey'] {
  const known =
    endpoint.hostKeys === undefined
      ? knownHosts.keysFor(endpoint.address, endpoint.port)
      : endpoint.hostKeys.map((k) => ({ type: k.split(' ')[0] ?? '' }));
  const preferred = preferredHostKeyAlgorithms(known).filter((a) => DEFAULT_HOST_KEY_ALGORITHMS.includes(a));
  return [...preferred, ...DEFAULT_HOST_KEY_ALGORITHMS.filter((a) => !preferred.includes(a))] as NonNullable<
    ConnectConfig['algorithms']
  >['serverHostKey'];
}
