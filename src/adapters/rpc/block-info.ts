/** Consensus info of a block as JSON-RPC and the console print it, checked and normalised. */
import type { BlockConsensusInfo } from '../../ports/node-rpc.js';
import { toQuantity } from './json-rpc.js';

/** kcnd refuses ranges longer than this. */
export const MAX_RANGE = 50;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** A 0x address in lower case, or undefined for anything else. */
export function normalizeAddress(value: unknown): string | undefined {
  return typeof value === 'string' && ADDRESS.test(value) ? value.toLowerCase() : undefined;
}

function addressList(value: unknown): string[] {
  return Array.isArray(value) ? value.flatMap((v) => normalizeAddress(v) ?? []) : [];
}

export function toBlockInfo(raw: unknown): BlockConsensusInfo | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const b = raw as Record<string, unknown>;
  const number = toQuantity(b.number);
  if (number === undefined) return undefined;
  const proposer = normalizeAddress(b.proposer);
  const timestamp = toQuantity(b.timestamp);
  return {
    number,
    ...(proposer !== undefined ? { proposer } : {}),
    committers: addressList(b.committers),
    committee: addressList(b.committee),
    ...(timestamp !== undefined ? { timestamp } : {}),
  };
}
