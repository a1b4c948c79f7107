/**
 * Nodekey checks. A nodekey file holds a secp256k1 private key as exactly 64 hex characters, no `0x`
 * (kcnd silently generates a fresh key from anything else, so a malformed backup must be refused before
 * it is installed). The node address is derived the Ethereum way: keccak-256 of the uncompressed public
 * key without its 0x04 prefix, last 20 bytes.
 *
 * Keys are handled as strings in memory only; nothing here logs or returns them.
 */
import { getPublicKey } from '@noble/secp256k1';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';

const NODEKEY = /^[0-9a-fA-F]{64}$/;
const BLS_KEY = /^(0x)?[0-9a-fA-F]{64}$/;
/** secp256k1 group order: a valid private key is in [1, n-1]. */
const CURVE_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

export type NodekeyProblem = 'empty' | 'has-0x-prefix' | 'wrong-length' | 'not-hex' | 'out-of-range';

/** The content of a nodekey file without one trailing newline, which kcnd tolerates. */
function stripNewline(content: string): string {
  return content.replace(/\r?\n$/, '');
}

/** Why the file content is not a nodekey kcnd would load, or undefined when it is one. */
export function nodekeyProblem(content: string): NodekeyProblem | undefined {
  const key = stripNewline(content);
  if (key.length === 0) return 'empty';
  if (/^0x/i.test(key)) return 'has-0x-prefix';
  if (!/^[0-9a-fA-F]*$/.test(key)) return 'not-hex';
  if (!NODEKEY.test(key)) return 'wrong-length';
  const value = BigInt(`0x${key}`);
  if (value === 0n || value >= CURVE_ORDER) return 'out-of-range';
  return undefined;
}

export function describeNodekeyProblem(problem: NodekeyProblem): string {
  switch (problem) {
    case 'empty':
      return 'the file is empty';
    case 'has-0x-prefix':
      return 'it starts with 0x (kcnd expects 64 hex characters without a prefix)';
    case 'wrong-length':
      return 'it is not exactly 64 hex characters';
    case 'not-hex':
      return 'it contains characters that are not hexadecimal';
    case 'out-of-range':
      return 'it is not a valid secp256k1 private key';
  }
}

/** The node address (0x + 40 lower-case hex) of a valid nodekey. Throws on an invalid one. */
export function nodeAddressFromKey(content: string): string {
  const problem = nodekeyProblem(content);
  if (problem) throw new Error(`not a valid nodekey: ${describeNodekeyProblem(problem)}`);
  const publicKey = getPublicKey(hexToBytes(stripNewline(content).toLowerCase()), false);
  return `0x${bytesToHex(keccak_256(publicKey.subarray(1)).subarray(12))}`;
}

/** The 128-hex node ID (uncompressed public key without 0x04), as admin.nodeInfo reports it. */
export function nodeIdFromKey(content: string): string {
  const problem = nodekeyProblem(content);
  if (problem) throw new Error(`not a valid nodekey: ${describeNodekeyProblem(problem)}`);
  return bytesToHex(getPublicKey(hexToBytes(stripNewline(content).toLowerCase()), false).subarray(1));
}

/** sha256 of the file content as stored, for comparing copies without revealing them. */
export function nodekeyChecksum(content: string | Uint8Array): string {
  const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
  return bytesToHex(sha256(bytes));
}

/** Compares addresses case-insensitively (kcnd reports checksummed addresses). */
export function sameAddress(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Whether a bls-nodekey file's content is one kcnd loads: 64 hex characters, trimmed, an optional 0x. */
export function isBlsKey(content: string): boolean {
  return BLS_KEY.test(content.trim());
}
