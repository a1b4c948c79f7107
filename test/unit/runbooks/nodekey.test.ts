import { describe, expect, it } from 'vitest';
import {
  nodeAddressFromKey,
  nodeIdFromKey,
  nodekeyProblem,
  sameAddress,
} from '../../../src/runbooks/nodekey.js';

// Well-known test vector: private key 1 is the generator point G.
const KEY_ONE = '0000000000000000000000000000000000000000000000000000000000000001';
// Hardhat's first default account: a published test key, not a secret.
const HARDHAT_0 = 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';

describe('nodekey', () => {
  it('derives the Ethereum address of a key', () => {
    expect(nodeAddressFromKey(KEY_ONE)).toBe('0x7e5f4552091a69125d5dfcb7b8c2659029395bdf');
    expect(nodeAddressFromKey(`${HARDHAT_0}\n`)).toBe('0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266');
    expect(sameAddress(nodeAddressFromKey(HARDHAT_0), '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266')).toBe(
      true,
    );
  });

  it('derives the 128-hex node id', () => {
    expect(nodeIdFromKey(KEY_ONE)).toBe(
      '79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8',
    );
  });

  it('refuses what kcnd would silently replace with a fresh key', () => {
    expect(nodekeyProblem('')).toBe('empty');
    expect(nodekeyProblem(`0x${HARDHAT_0}`)).toBe('has-0x-prefix');
    expect(nodekeyProblem(HARDHAT_0.slice(2))).toBe('wrong-length');
    expect(nodekeyProblem(`${HARDHAT_0.slice(1)}g`)).toBe('not-hex');
    expect(nodekeyProblem('0'.repeat(64))).toBe('out-of-range');
    expect(nodekeyProblem(`${HARDHAT_0}\n`)).toBeUndefined();
    expect(() => nodeAddressFromKey('0x1')).toThrow(/not a valid nodekey/);
  });
});
