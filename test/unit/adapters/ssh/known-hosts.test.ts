import { createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  fingerprintSha256,
  knownHostsName,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  verifyHostKey,
} from '../../../../src/adapters/ssh/known-hosts.js';

/** A wire-format public key blob: the type name, then key material (random: only equality matters). */
function blob(type: string): Buffer {
  const name = Buffer.from(type);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(name.length);
  return Buffer.concat([length, name, Buffer.from([0, 0, 0, 32]), randomBytes(32)]);
}

const line = (hosts: string, key: Buffer, type = 'ssh-ed25519'): string =>
  `${hosts} ${type} ${key.toString('base64')}`;

describe('known_hosts', () => {
  const a = blob('ssh-ed25519');
  const b = blob('ssh-ed25519');

  it('trusts the listed key of a plain entry and of a name in a comma list', () => {
    const known = parseKnownHosts(`${line('cn1,10.0.1.11', a)}\n`);
    expect(verifyHostKey(known, '10.0.1.11', 22, a).kind).toBe('trusted');
    expect(verifyHostKey(known, 'cn1', 22, a).kind).toBe('trusted');
  });

  it('reports another key for a listed host as changed, and an unlisted host as unknown', () => {
    const known = parseKnownHosts(line('10.0.1.11', a));
    const changed = verifyHostKey(known, '10.0.1.11', 22, b);
    expect(changed.kind).toBe('changed');
    expect(changed.kind === 'changed' && changed.known[0]?.line).toBe(1);
    expect(verifyHostKey(known, '10.0.1.12', 22, a).kind).toBe('unknown');
  });

  it('files non-default ports as [host]:port, as ssh does', () => {
    const known = parseKnownHosts(line('[10.0.1.11]:2222', a));
    expect(knownHostsName('10.0.1.11', 2222)).toBe('[10.0.1.11]:2222');
    expect(verifyHostKey(known, '10.0.1.11', 2222, a).kind).toBe('trusted');
    expect(verifyHostKey(known, '10.0.1.11', 22, a).kind).toBe('unknown');
  });

  it('matches hashed entries (HMAC-SHA1 of the name with the salt)', () => {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('[10.0.1.11]:2222').digest('base64');
    const known = parseKnownHosts(line(`|1|${salt.toString('base64')}|${hash}`, a));
    expect(verifyHostKey(known, '10.0.1.11', 2222, a).kind).toBe('trusted');
    expect(verifyHostKey(known, '10.0.1.12', 2222, a).kind).toBe('unknown');
  });

  it('honours wildcards and negated patterns', () => {
    const known = parseKnownHosts(line('10.0.1.*,!10.0.1.13', a));
    expect(verifyHostKey(known, '10.0.1.12', 22, a).kind).toBe('trusted');
    expect(verifyHostKey(known, '10.0.1.13', 22, a).kind).toBe('unknown');
  });

  it('refuses a @revoked key and ignores @cert-authority lines', () => {
    const known = parseKnownHosts(
      [
        line('10.0.1.11', a),
        `@revoked * ssh-ed25519 ${a.toString('base64')}`,
        `@cert-authority * ${line('', b).trim()}`,
      ].join('\n'),
    );
    expect(verifyHostKey(known, '10.0.1.11', 22, a).kind).toBe('revoked');
    expect(verifyHostKey(known, '10.0.1.11', 22, b).kind).toBe('changed');
    expect(known.problems).toEqual([]);
  });

  it('skips malformed lines with a reason and keeps the rest', () => {
    const known = parseKnownHosts(
      ['# comment', '', 'only-a-host', line('10.0.1.11', a, 'ssh-rsa'), line('10.0.1.12', a)].join('\n'),
    );
    expect(known.problems).toHaveLength(2);
    expect(known.problems[1]).toMatch(/line 4: the key does not match its type ssh-rsa/);
    expect(verifyHostKey(known, '10.0.1.12', 22, a).kind).toBe('trusted');
  });

  it('prints fingerprints like ssh-keygen -lf', () => {
    const expected = createHash('sha256').update(a).digest('base64').replace(/=+$/, '');
    expect(fingerprintSha256(a)).toBe(`SHA256:${expected}`);
  });

  it('asks for the host key types it can check first', () => {
    const known = parseKnownHosts([line('h', blob('ssh-rsa'), 'ssh-rsa'), line('h', a)].join('\n'));
    expect(preferredHostKeyAlgorithms(known.keysFor('h', 22))).toEqual([
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa',
      'ssh-ed25519',
    ]);
  });
});
