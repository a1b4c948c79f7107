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

/**
 * ssh2's default host key algorithms, in its order, to follow the ones known for a host. `ssh-rsa` (an RSA
 * key signed with SHA-1) comes last and only when `ssh.allowSha1Rsa` is set: SHA-1 signatures can be forged
 * with chosen-prefix collisions, and the same RSA host key is checked with rsa-sha2-* by any OpenSSH ≥ 7.2.
 */
const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
];
const SHA1_RSA = 'ssh-rsa';

export interface ConnectDeps {
  readonly ssh: SshSettings;
  readonly logger: Logger;
  readonly readFile: (path: string) => Promise<Buffer>;
  /** Permission bits of a file (fs.stat's mode). */
  readonly fileMode: (path: string) => Promise<number>;
  /** Where the passphrase and SSH_AUTH_SOCK are read. */
  readonly env: NodeJS.ProcessEnv;
}

/** How this process authenticates: a key file (decrypted when a passphrase is set), the agent, or both. */
interface Credentials {
  readonly privateKey?: Buffer;
  readonly passphrase?: string;
  readonly agent?: string;
}

function configError(message: string, cause?: unknown): CellopsError {
  return new CellopsError('bad_config', message, cause === undefined ? {} : { cause });
}

async function loadPrivateKey(
  deps: ConnectDeps,
  path: string,
): Promise<Pick<Credentials, 'privateKey' | 'passphrase'>> {
  const { ssh, readFile, fileMode, env } = deps;
  let privateKey: Buffer;
  let mode: number;
  try {
    mode = await fileMode(path);
    privateKey = await readFile(path);
  } catch (error) {
    throw configError(
      `cannot read the SSH private key ${path} (ssh.privateKey): ${describeError(error)}`,
      error,
    );
  }
  // What OpenSSH refuses too: a key others can read is a key others may have copied.
  if ((mode & 0o077) !== 0)
    throw configError(
      `the SSH private key ${path} (ssh.privateKey) is readable by group or others (mode ${(mode & 0o777).toString(8).padStart(3, '0')}): ` +
        `run chmod 600 ${path} so only the bot's user can read it`,
    );
  const passphraseEnv = ssh.passphraseEnv ?? 'SSH_KEY_PASSPHRASE';
  const passphrase = env[passphraseEnv] === '' ? undefined : env[passphraseEnv];
  const parsed = ssh2.utils.parseKey(privateKey, passphrase);
  if (parsed instanceof Error) {
    const encrypted = /encrypted|passphrase/i.test(parsed.message);
    throw configError(
      encrypted && passphrase === undefined
        ? `the SSH private key ${path} (ssh.privateKey) is encrypted: put its passphrase in the environment variable ${passphraseEnv} (ssh.passphraseEnv), or load it into an ssh-agent and set ssh.agent: true`
        : encrypted
          ? `the passphrase in ${passphraseEnv} (ssh.passphraseEnv) does not decrypt the SSH private key ${path}`
          : `the SSH private key ${path} (ssh.privateKey) cannot be read as an OpenSSH or PEM private key (${parsed.message})`,
    );
  }
  return { privateKey, ...(passphrase === undefined ? {} : { passphrase }) };
}

async function loadSecrets(deps: ConnectDeps): Promise<{ credentials: Credentials; knownHosts: KnownHosts }> {
  const { ssh, logger, readFile, env } = deps;
  let agent: string | undefined;
  if (ssh.agent) {
    agent = env.SSH_AUTH_SOCK;
    if (agent === undefined || agent === '')
      throw configError(
        'ssh.agent is true but SSH_AUTH_SOCK is not set: start the bot where an ssh-agent runs, or set ssh.agent: false',
      );
  }
  const key = ssh.privateKeyPath === undefined ? {} : await loadPrivateKey(deps, ssh.privateKeyPath);
  let knownHostsText: string;
  try {
    knownHostsText = (await readFile(ssh.knownHostsPath)).toString('utf8');
  } catch (error) {
    throw configError(
      `cannot read the known_hosts file ${ssh.knownHostsPath} (ssh.knownHosts): ${describeError(error)}`,
      error,
    );
  }
  const knownHosts = parseKnownHosts(knownHostsText);
  if (knownHosts.problems.length > 0)
    logger.warn(
      { knownHosts: ssh.knownHostsPath, problems: knownHosts.problems },
      'known_hosts has lines that were skipped',
    );
  return { credentials: { ...key, ...(agent === undefined ? {} : { agent }) }, knownHosts };
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
  const { credentials, knownHosts } = await loadSecrets(deps);
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
      else logger.warn({ host: endpoint.name, err: error }, 'SSH connection error');
    });
    client.once('close', () => {
      if (!settled) fail(new Error('the connection closed during the SSH handshake'));
    });
    const config: ConnectConfig = {
      host: endpoint.address,
      port: endpoint.port,
      username: endpoint.user,
      ...credentials,
      readyTimeout: ssh.connectTimeoutMs,
      keepaliveInterval: 15_000,
      algorithms: { serverHostKey: hostKeyAlgorithms(knownHosts, endpoint, ssh.allowSha1Rsa === true) },
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
 * The host-key algorithms offered: the key types pinned for the host, else those known_hosts lists for it,
 * first, so the server offers a key that can be checked, then the rest; `ssh-rsa` only when allowed.
 */
export function hostKeyAlgorithms(
  knownHosts: KnownHosts,
  endpoint: Endpoint,
  allowSha1Rsa: boolean,
): NonNullable<ConnectConfig['algorithms']>['serverHostKey'] {
  const allowed = allowSha1Rsa ? [...HOST_KEY_ALGORITHMS, SHA1_RSA] : HOST_KEY_ALGORITHMS;
  const known =
    endpoint.hostKeys === undefined
      ? knownHosts.keysFor(endpoint.address, endpoint.port)
      : endpoint.hostKeys.map((k) => ({ type: k.split(' ')[0] ?? '' }));
  const preferred = preferredHostKeyAlgorithms(known).filter((a) => allowed.includes(a));
  return [...preferred, ...allowed.filter((a) => !preferred.includes(a))] as NonNullable<
    ConnectConfig['algorithms']
  >['serverHostKey'];
}
