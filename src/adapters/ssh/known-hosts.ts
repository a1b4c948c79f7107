/**
 * OpenSSH known_hosts files, read the way `ssh` reads them (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"):
 *
 *   10.0.1.11,cn1 ssh-ed25519 AAAA…              plain names, comma lists, `*`/`?` wildcards, `!` negation
 *   [10.0.1.11]:2222 ssh-ed25519 AAAA…           a non-default port is part of the name
 *   |1|<salt>|<hash> ecdsa-sha2-nistp256 AAAA…   hashed names: base64 HMAC-SHA1(salt, name)
 *   @revoked * ssh-rsa AAAA…                     a key that must be refused wherever it is offered
 *   @cert-authority *.example ssh-ed25519 AAAA…  CA keys: we do not accept host certificates, so ignored
 *
 * Only host names are matched here; the key itself is compared as the SSH wire-format blob the server
 * offers, so there is no key parsing that could disagree with ssh2.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { BASE64, HOST_KEY_TYPE as KEY_TYPE, blobKeyType } from '../../ports/host-key.js';

export interface KnownHostKey {
  /** Key type as written, e.g. ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa. */
  readonly type: string;
  /** The public key blob (SSH wire format), decoded from the base64 field. */
  readonly blob: Buffer;
  /** 1-based line in the file, for messages that tell the operator which entry to fix. */
  readonly line: number;
}

interface Entry extends KnownHostKey {
  readonly marker?: 'revoked';
  readonly matches: (name: string) => boolean;
}

export interface KnownHosts {
  /** Keys listed for the host at `address` and `port` (revoked keys excluded). */
  keysFor(address: string, port: number): readonly KnownHostKey[];
  /** Whether the offered blob is marked @revoked (for any host). */
  isRevoked(blob: Buffer): boolean;
  /** Lines that could not be read, with why; reported to the operator, never fatal on their own. */
  readonly problems: readonly string[];
}

export type HostKeyVerdict =
  | { readonly kind: 'trusted'; readonly key: KnownHostKey }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'changed'; readonly known: readonly KnownHostKey[] }
  | { readonly kind: 'revoked' };

/** The name a host is filed under: `host` on port 22, `[host]:port` otherwise (as ssh writes it). */
export function knownHostsName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

export { blobKeyType, fingerprintSha256 } from '../../ports/host-key.js';

function wildcardToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/** A matcher for one hostnames field: a hashed name, or a comma list of patterns with negations. */
function hostMatcher(field: string): ((name: string) => boolean) | string {
  if (field.startsWith('|1|')) {
    const [, , saltText, hashText] = field.split('|');
    if (saltText === undefined || hashText === undefined || !BASE64.test(saltText) || !BASE64.test(hashText))
      return 'malformed hashed host name';
    const salt = Buffer.from(saltText, 'base64');
    const hash = Buffer.from(hashText, 'base64');
    if (hash.length !== 20) return 'malformed hashed host name';
    return (name) => {
      const candidate = createHmac('sha1', salt).update(name).digest();
      return timingSafeEqual(candidate, hash);
    };
  }
  const positive: RegExp[] = [];
  const negative: RegExp[] = [];
  for (const pattern of field.split(',')) {
    if (pattern.length === 0) continue;
    if (pattern.startsWith('!')) negative.push(wildcardToRegExp(pattern.slice(1)));
    else positive.push(wildcardToRegExp(pattern));
  }
  if (positive.length === 0) return 'no host name';
  return (name) => !negative.some((re) => re.test(name)) && positive.some((re) => re.test(name));
}

export function parseKnownHosts(text: string): KnownHosts {
  const entries: Entry[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((rawLine, index) => {
    const line = index + 1;
    const trimmed = rawLine.trim();
    if (trimmed.length === 0 || trimmed.startsWith('#')) return;
    const fields = trimmed.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]?.startsWith('@')) marker = fields.shift();
    if (marker === '@cert-authority') return;
    if (marker !== undefined && marker !== '@revoked') {
      problems.push(`line ${line}: unknown marker ${marker}`);
      return;
    }
    const [hosts, type, keyText] = fields;
    if (hosts === undefined || type === undefined || keyText === undefined) {
      problems.push(`line ${line}: expected "<hosts> <key type> <base64 key>"`);
      return;
    }
    if (!KEY_TYPE.test(type)) {
      problems.push(`line ${line}: unsupported key type ${type}`);
      return;
    }
    if (!BASE64.test(keyText)) {
      problems.push(`line ${line}: the key is not base64`);
      return;
    }
    const blob = Buffer.from(keyText, 'base64');
    if (blobKeyType(blob) !== type) {
      problems.push(`line ${line}: the key does not match its type ${type}`);
      return;
    }
    const matches = hostMatcher(hosts);
    if (typeof matches === 'string') {
      problems.push(`line ${line}: ${matches}`);
      return;
    }
    entries.push({ type, blob, line, matches, ...(marker === '@revoked' ? { marker: 'revoked' } : {}) });
  });

  return {
    problems,
    keysFor(address, port) {
      const names = [knownHostsName(address, port)];
      // ssh files port-22 hosts as bare names, but `[host]:22` written by hand means the same host.
      if (port === 22) names.push(`[${address}]:22`);
      return entries.filter((e) => e.marker === undefined && names.some((n) => e.matches(n)));
    },
    isRevoked(blob) {
      return entries.some((e) => e.marker === 'revoked' && e.blob.equals(blob));
    },
  };
}

/**
 * The verdict on a key a server offered: trusted when a listed key equals it; revoked when it is marked
 * @revoked; changed when the host is listed with other keys only; unknown when the host is not listed.
 */
export function verifyHostKey(
  knownHosts: KnownHosts,
  address: string,
  port: number,
  offered: Buffer,
): HostKeyVerdict {
  if (knownHosts.isRevoked(offered)) return { kind: 'revoked' };
  const known = knownHosts.keysFor(address, port);
  const same = known.find((k) => k.blob.equals(offered));
  if (same) return { kind: 'trusted', key: same };
  if (known.length > 0) return { kind: 'changed', known };
  return { kind: 'unknown' };
}

/**
 * ssh2 host-key algorithm names for the key types known for a host, so the server is asked for a key we
 * can check (as OpenSSH orders HostKeyAlgorithms): an RSA-only entry must not be met by an ed25519 key
 * and reported as "changed".
 */
export function preferredHostKeyAlgorithms(known: ReadonlyArray<Pick<KnownHostKey, 'type'>>): string[] {
  const out: string[] = [];
  for (const { type } of known) {
    const algorithms = type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type];
    for (const a of algorithms) if (!out.includes(a)) out.push(a);
  }
  return out;
}
