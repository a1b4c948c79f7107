import { describe, expect, it } from 'vitest';
import { redactSecrets } from '../../../src/infra/redact.js';

const KEY = 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';

describe('redactSecrets', () => {
  it('removes nodekeys with or without 0x, and tokens', () => {
    expect(redactSecrets(`key=${KEY} done`)).toBe('key=[redacted] done');
    expect(redactSecrets(`0x${KEY}`)).toBe('[redacted]');
    expect(redactSecrets('token xoxb-123-456-abc and xapp-1-A0-99')).toBe('token [redacted] and [redacted]');
    expect(redactSecrets('-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----')).toBe(
      '[redacted]',
    );
  });

  it('keeps addresses and 128-hex node ids', () => {
    const address = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
    const nodeId = 'ab'.repeat(64);
    expect(redactSecrets(`${address} ${nodeId}`)).toBe(`${address} ${nodeId}`);
  });
});
