import { describe, expect, it } from 'vitest';
import { storedRolesSchema } from '../../../src/infra/cell-state-schemas.js';
import { newHostKey } from '../../../src/sandbox/sim-cloud-console.js';

const ROLE = {
  cn: 'cn2',
  servedBy: 'i-0123456789abcdef0',
  address: '10.0.2.77',
  instanceId: 'i-0123456789abcdef0',
  since: 1,
  runId: 'run-7',
};

describe('stored roles: pinned host keys', () => {
  it('keeps host keys of the form "<type> <base64>", on the role and on its fenced machine', () => {
    const key = newHostKey();
    const fenced = {
      name: 'cn2',
      address: '10.0.2.11',
      hostKeys: [key],
      nodeAddress: `0x${'ab'.repeat(20)}`,
    };
    const parsed = storedRolesSchema.parse({ ...ROLE, hostKeys: [key], fenced });
    expect(parsed.hostKeys).toEqual([key]);
    expect(parsed.fenced?.hostKeys).toEqual([key]);
  });

  it('refuses anything else: a comment, a key that does not decode to its type, an option line, none', () => {
    const key = newHostKey();
    const [type, base64] = key.split(' ');
    for (const bad of [
      [`${key} root@host`],
      [`ssh-rsa ${base64}`],
      [`@cert-authority * ${key}`],
      [`${type} not-base64!`],
      [],
    ])
      expect(storedRolesSchema.safeParse({ ...ROLE, hostKeys: bad }).success).toBe(false);
  });
});
