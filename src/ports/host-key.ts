/**
 * SSH host public keys as the Shell port carries them (`HostRef.hostKeys`): one line `<type> <base64>` as
 * in a `.pub` file, the base64 being the SSH wire-format blob. Pure helpers shared by the runbooks, which
 * learn keys from a console, and the SSH adapter, which compares them with what a server presents.
 */
import { createHash } from 'node:crypto';

/** Key types OpenSSH servers present; `sk-…` only appear in known_hosts, never as a host's own key. */
export const HOST_KEY_TYPE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|ssh-dss|sk-[a-z0-9@.-]+)$/;
export const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** No host key blob is bigger (RSA 16384 bits is about 2 KiB); longer fields are not keys. */
export const MAX_KEY_BLOB_BYTES = 4096;

/** `SHA256:<base64 without padding>` of a key blob, the format of `ssh-keygen -lf`. */
export function fingerprintSha256(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type embedded at the start of a wire-format blob (a uint32 length, then the name). */
export function blobKeyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || blob.length < 4 + length) return undefined;
  return blob.subarray(4, 4 + length).toString('latin1');
}

export interface HostPublicKey {
  readonly type: string;
  readonly blob: Buffer;
  /** `<type> <base64>`, without a comment: the form pins are recorded and compared in. */
  readonly line: string;
}

/**
 * Reads `<type> <base64> [comment]`; a string naming what is wrong when it is not a host public key (an
 * unknown type, base64 that does not decode to a blob of that type, an implausible size).
 */
export function parseHostPublicKey(text: string): HostPublicKey | string {
  const fields = text.trim().split(/\s+/);
  const [type, base64] = fields;
  if (type === undefined || base64 === undefined) return 'expected "<key type> <base64 key>"';
  if (!HOST_KEY_TYPE.test(type)) return `unsupported key type ${JSON.stringify(type.slice(0, 40))}`;
  if (base64.length > (MAX_KEY_BLOB_BYTES * 4) / 3 + 4) return `the ${type} key is implausibly long`;
  if (!BASE64.test(base64) || base64.length % 4 !== 0) return `the ${type} key is not base64`;
  const blob = Buffer.from(base64, 'base64');
  if (blobKeyType(blob) !== type) return `the key does not match its type ${type}`;
  return { type, blob, line: `${type} ${base64}` };
}

/** `ssh-ed25519 SHA256:…` for messages: what an operator compares with `ssh-keygen -lf` on the host. */
export function describeHostKey(key: Pick<HostPublicKey, 'type' | 'blob'>): string {
  return `${key.type} ${fingerprintSha256(key.blob)}`;
}
