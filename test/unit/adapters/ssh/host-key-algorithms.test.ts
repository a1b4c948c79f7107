import { describe, expect, it } from 'vitest';
import { hostKeyAlgorithms } from '../../../../src/adapters/ssh/ssh-connect.js';
import { parseKnownHosts } from '../../../../src/adapters/ssh/known-hosts.js';

const RSA_KEY = `AAAAB3NzaC1yc2EAAAADAQABAAABAQ${'C'.repeat(300)}`;
const endpoint = { name: 'cn1', address: '10.0.1.11', port: 22, user: 'ops' };

describe('host-key algorithms offered', () => {
  it('never offers SHA-1 ssh-rsa by default, even for a host known by an RSA key', () => {
    const known = parseKnownHosts(`10.0.1.11 ssh-rsa ${RSA_KEY}\n`);
    const offered = hostKeyAlgorithms(known, endpoint, false) as string[];
    expect(offered.slice(0, 2)).toEqual(['rsa-sha2-512', 'rsa-sha2-256']);
    expect(offered).toContain('ssh-ed25519');
    expect(offered).not.toContain('ssh-rsa');
  });

  it('offers ssh-rsa, after the SHA-2 forms, only when ssh.allowSha1Rsa is set', () => {
    const known = parseKnownHosts(`10.0.1.11 ssh-rsa ${RSA_KEY}\n`);
    const offered = hostKeyAlgorithms(known, endpoint, true) as string[];
    expect(offered.slice(0, 3)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    expect(hostKeyAlgorithms(parseKnownHosts(''), endpoint, true)).toContain('ssh-rsa');
    expect(hostKeyAlgorithms(parseKnownHosts(''), endpoint, false)).not.toContain('ssh-rsa');
  });
});
