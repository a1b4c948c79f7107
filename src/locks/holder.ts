/**
 * The holder record as the locks store it, and the checks shared by the Redis and in-memory locks.
 */
import type { LockHolder } from './types.js';

export type StoredHolder = LockHolder & { readonly fencingToken: number };

/** The holder with only the known fields, so that a caller's extra properties are never stored. */
export function holderRecord(holder: LockHolder): LockHolder {
  return {
    requester: holder.requester,
    runbook: holder.runbook,
    node: holder.node,
    runId: holder.runId,
    since: holder.since,
    ...(holder.thread ? { thread: { channel: holder.thread.channel, ts: holder.thread.ts } } : {}),
  };
}

/** Redis PX and the renewal schedule both need a positive whole number of milliseconds. */
export function validateTtl(ttlMs: number): void {
  if (!Number.isInteger(ttlMs) || ttlMs < 3) {
    throw new RangeError(`lock ttlMs must be a whole number of milliseconds, at least 3 (got ${ttlMs})`);
  }
}

/**
 * Parses a stored holder record. A record that is not what cellops writes yields undefined rather than an
 * error: the lock is still held, we just cannot say by whom.
 */
export function parseStoredHolder(raw: string): StoredHolder | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  const { requester, runbook, node, runId, since, fencingToken, thread } = record;
  if (
    typeof requester !== 'string' ||
    typeof runbook !== 'string' ||
    typeof node !== 'string' ||
    typeof runId !== 'string' ||
    typeof since !== 'number' ||
    typeof fencingToken !== 'number'
  ) {
    return undefined;
  }
  const parsedThread = parseThread(thread);
  return {
    requester,
    runbook,
    node,
    runId,
    since,
    fencingToken,
    ...(parsedThread ? { thread: parsedThread } : {}),
  };
}

function parseThread(value: unknown): { channel: string; ts: string } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { channel, ts } = value as Record<string, unknown>;
  return typeof channel === 'string' && typeof ts === 'string' ? { channel, ts } : undefined;
}
