import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_CONSOLE_CHARS, parseConsoleHostKeys } from '../../../src/runbooks/console-host-keys.js';
import { newHostKey } from '../../../src/sandbox/sim-cloud-console.js';

function sshString(data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** A real ecdsa-sha2-nistp256 public key line, as /etc/ssh/ssh_host_ecdsa_key.pub holds it. */
function ecdsaKey(): string {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const q = Buffer.concat([
    Buffer.from([4]),
    Buffer.from(jwk.x ?? '', 'base64url'),
    Buffer.from(jwk.y ?? '', 'base64url'),
  ]);
  const blob = Buffer.concat([sshString('ecdsa-sha2-nistp256'), sshString('nistp256'), sshString(q)]);
  return `ecdsa-sha2-nistp256 ${blob.toString('base64')}`;
}

const ED = newHostKey();
const EC = ecdsaKey();

/** What Ubuntu 22.04 on EC2 prints (cloud-init 23.x): kernel lines, tagged fingerprints, plain keys. */
function ubuntuConsole(keys: readonly string[] = [EC, ED]): string {
  return [
    '[    0.000000] Linux version 6.5.0-1014-aws (buildd@lcy02-amd64-032) (x86_64-linux-gnu-gcc-12 (Ubuntu 12.3.0-1ubuntu1~22.04) 12.3.0) #14~22.04.1-Ubuntu SMP',
    '[    1.502312] EXT4-fs (nvme0n1p1): mounted filesystem with ordered data mode. Quota mode: none.',
    "[   10.933801] cloud-init[503]: Cloud-init v. 23.4.4-0ubuntu0~22.04.1 running 'init' at Tue, 02 Dec 2025 12:00:00 +0000. Up 10.90 seconds.",
    '[   11.204077] cloud-init[503]: ci-info: ++++++++++++++++++++++++++++Net device info+++++++++++++++++++++++++++++',
    '<14>Dec  2 12:00:21 cloud-init: #############################################################',
    '<14>Dec  2 12:00:21 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----',
    '<14>Dec  2 12:00:21 cloud-init: 256 SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU root@ip-10-0-2-57 (ECDSA)',
    '<14>Dec  2 12:00:21 cloud-init: 256 SHA256:aGVsbG8gd29ybGQgdGhpcyBpcyBhIGZha2UgZnA root@ip-10-0-2-57 (ED25519)',
    '<14>Dec  2 12:00:21 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----',
    '<14>Dec  2 12:00:21 cloud-init: #############################################################',
    '-----BEGIN SSH HOST KEY KEYS-----',
    ...keys.map((k) => `${k} root@ip-10-0-2-57`),
    '-----END SSH HOST KEY KEYS-----',
    '[   21.811310] cloud-init[812]: Cloud-init v. 23.4.4-0ubuntu0~22.04.1 finished at Tue, 02 Dec 2025 12:00:21 +0000. Datasource DataSourceEc2Local.  Up 21.80 seconds',
    '',
  ].join('\n');
}

describe('reading SSH host keys from an instance console', () => {
  it("finds every key of cloud-init's block among kernel and cloud-init lines, without their comments", () => {
    expect(parseConsoleHostKeys(ubuntuConsole())).toEqual({ kind: 'found', keys: [EC, ED] });
  });

  it('reads CRLF line ends and blocks whose lines carry the log tag written before BEGIN', () => {
    const tagged = [
      'ec2: -----BEGIN SSH HOST KEY KEYS-----',
      `ec2: ${ED}`,
      `ec2: ${EC} no comment`,
      'ec2: -----END SSH HOST KEY KEYS-----',
      '',
    ].join('\r\n');
    expect(parseConsoleHostKeys(tagged)).toEqual({ kind: 'found', keys: [ED, EC] });
  });

  it('skips kernel messages interleaved in the block', () => {
    const text = ubuntuConsole().replace(
      '-----BEGIN SSH HOST KEY KEYS-----\n',
      '-----BEGIN SSH HOST KEY KEYS-----\n[   21.700001] random: crng init done\n',
    );
    expect(parseConsoleHostKeys(text)).toEqual({ kind: 'found', keys: [EC, ED] });
  });

  it('says nothing is there yet before cloud-init printed the block, or while it is half written', () => {
    expect(parseConsoleHostKeys('')).toEqual({ kind: 'absent' });
    const full = ubuntuConsole();
    expect(parseConsoleHostKeys(full.slice(0, full.indexOf('-----END SSH HOST KEY KEYS')))).toEqual({
      kind: 'absent',
    });
  });

  it('takes the last complete block when the buffer holds several boots', () => {
    const second = newHostKey();
    expect(parseConsoleHostKeys(ubuntuConsole([ED]) + ubuntuConsole([second]))).toEqual({
      kind: 'found',
      keys: [second],
    });
  });

  it('refuses a block with a line that is not a host key, a key that does not decode to its type, or no key', () => {
    const garbage = ubuntuConsole().replace(`${ED} root`, 'please trust me root');
    expect(parseConsoleHostKeys(garbage)).toMatchObject({
      kind: 'invalid',
      problem: expect.stringMatching(/unsupported key type/),
    });
    const wrongType = ubuntuConsole().replace(ED, `ssh-rsa ${ED.split(' ')[1]}`);
    expect(parseConsoleHostKeys(wrongType)).toMatchObject({
      kind: 'invalid',
      problem: expect.stringMatching(/does not match its type ssh-rsa/),
    });
    const notBase64 = ubuntuConsole().replace(ED, 'ssh-ed25519 AAAA!!!!');
    expect(parseConsoleHostKeys(notBase64)).toMatchObject({
      kind: 'invalid',
      problem: expect.stringMatching(/not base64/),
    });
    expect(parseConsoleHostKeys(ubuntuConsole([]))).toMatchObject({
      kind: 'invalid',
      problem: expect.stringMatching(/lists no key/),
    });
  });

  it('reads only the last MAX_CONSOLE_CHARS of a huge buffer, and an unterminated block in it is not a result', () => {
    const flood = `-----BEGIN SSH HOST KEY KEYS-----\n${'x'.repeat(MAX_CONSOLE_CHARS)}`;
    expect(parseConsoleHostKeys(flood)).toEqual({ kind: 'absent' });
    expect(parseConsoleHostKeys('-'.repeat(3 * MAX_CONSOLE_CHARS) + '\n' + ubuntuConsole())).toEqual({
      kind: 'found',
      keys: [EC, ED],
    });
  });
});
