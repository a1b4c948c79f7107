/**
 * The errors the SSH adapter reports, worded for the operator: which host, what was (not) run, and what
 * to check or type to fix it.
 */
import { CellopsError, HostError, describeError } from '../../errors.js';
import {
  blobKeyType,
  fingerprintSha256,
  knownHostsName,
  verifyHostKey,
  type KnownHosts,
} from './known-hosts.js';
import { describeHostKey, parseHostPublicKey } from '../../ports/host-key.js';
import { where, type Endpoint, type SshSettings } from './ssh-endpoint.js';

/** Why the host key `offered` by `endpoint` is refused, or undefined when known_hosts trusts it. */
export function hostKeyError(
  ssh: SshSettings,
  endpoint: Endpoint,
  offered: Buffer,
  knownHosts: KnownHosts,
): HostError | undefined {
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

/**
 * Why the host key `offered` by `endpoint` is refused under its pin (HostRef.hostKeys), or undefined when it
 * is one of the pinned keys. A key marked @revoked in known_hosts is refused even when pinned.
 */
export function pinnedHostKeyError(
  ssh: SshSettings,
  endpoint: Endpoint,
  offered: Buffer,
  knownHosts: KnownHosts,
): HostError | undefined {
  const pins = (endpoint.hostKeys ?? []).map(parseHostPublicKey);
  const presented = `${blobKeyType(offered) ?? 'unknown-type'} ${fingerprintSha256(offered)}`;
  if (knownHosts.isRevoked(offered))
    return new HostError(
      'host_key_mismatch',
      `${where(endpoint)} presented the host key ${presented}, which ${ssh.knownHostsPath} marks @revoked. Nothing was run.`,
    );
  if (pins.some((p) => typeof p !== 'string' && p.blob.equals(offered))) return undefined;
  const expected = pins.map((p) => (typeof p === 'string' ? `(unreadable pin: ${p})` : describeHostKey(p)));
  return new HostError(
    'host_key_mismatch',
    `${where(endpoint)} presented the host key ${presented}, but the keys pinned for it are ` +
      `${expected.join(', ') || '(none)'}. Nothing was run. A host that presents another key than the one ` +
      `its instance printed on its console is not the instance cellops launched, or its keys were replaced: ` +
      `compare with ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the instance (EC2 serial console).`,
  );
}

/** A failure to connect to (or keep a channel open on) `endpoint`, reached through `via` if given. */
export function connectionError(
  ssh: SshSettings,
  endpoint: Endpoint,
  error: unknown,
  via?: Endpoint,
): CellopsError {
  if (error instanceof CellopsError) return error;
  const detail = describeError(error);
  const level = (error as { level?: unknown } | undefined)?.level;
  const code = (error as { code?: unknown } | undefined)?.code;
  const route = via ? ` through the bastion ${where(via)}` : '';
  if (level === 'client-authentication')
    return new HostError(
      'auth_failed',
      `SSH authentication as ${endpoint.user} on ${where(endpoint)} failed with ${credentialsText(ssh)}. ` +
        `Check that its public key is in ~${endpoint.user}/.ssh/authorized_keys ` +
        `on the host and that ssh.user is right.`,
      error,
    );
  if (/encrypted|passphrase|parse|unsupported key/i.test(detail) && level === undefined && code === undefined)
    return new CellopsError(
      'bad_config',
      `cannot use the SSH private key ${ssh.privateKeyPath ?? '(none)'} (ssh.privateKey): ${detail}. ` +
        `cellops reads OpenSSH or PEM keys; an encrypted one needs its passphrase in ${ssh.passphraseEnv ?? 'SSH_KEY_PASSPHRASE'}.`,
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

/** The signal's reason when it is an Error (the engine aborts with its own errors), else a plain one. */
export function abortError(signal: AbortSignal | undefined, target: Endpoint): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason;
  return new CellopsError('aborted', `the command on ${where(target)} was aborted`);
}

/** The credentials tried, for an authentication failure. */
function credentialsText(ssh: SshSettings): string {
  const key = ssh.privateKeyPath === undefined ? undefined : `the key ${ssh.privateKeyPath}`;
  const agent = ssh.agent ? 'the keys of the ssh-agent (SSH_AUTH_SOCK)' : undefined;
  return [agent, key].filter(Boolean).join(' and ');
}
