/**
 * The escalation state in Redis: one hash under the cell's prefix, field = entry key (`alert:<id>`,
 * `approval:<run>:<step>:<round>`), value = the entry as JSON. A new monitor leader or a restarted bot loads
 * it and carries on: pages still due are sent, pages sent are acknowledged and resolved.
 *
 * Replicas share the hash, and each change of an entry happens under a claim: a key of its own next to
 * the hash (`<prefix>escalation:claim:<entry key>`, a random owner token, SET NX PX). Taking the claim
 * reads the entry in the same script, and saving the next state checks the token and drops the claim in
 * one script, so a replica never acts on a state another has already moved on from, and a holder whose
 * claim lapsed (it stalled longer than the claim's time) cannot overwrite what the next holder saved.
 *
 * What is read back is validated: an entry that does not have the expected shape (written by another
 * version, or edited by hand) is logged by key, skipped and deleted, rather than letting the policy act on
 * it or fail every start.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { RedisKeys } from '../infra/redis-keys.js';
import type { Logger } from '../ports/logger.js';
import { PAGE_SEVERITIES } from '../ports/pager.js';
import { entryKey, type EntryClaim, type EscalationStore } from './escalation-store.js';
import { APPROVAL_STAGES, type EscalationEntry } from './policy.js';

const thread = z.object({ channel: z.string(), ts: z.string() });
const epoch = z.number().finite();

const alertEntry = z.object({
  kind: z.literal('alert'),
  facts: z.object({
    id: z.string().min(1),
    node: z.string().min(1),
    role: z.enum(['cn', 'standby', 'pn']),
    condition: z.string().min(1),
    since: epoch,
    lag: z.number().optional(),
    threadUrl: z.string().optional(),
    servedBy: z.string().optional(),
    detail: z.string().optional(),
    thread: thread.optional(),
  }),
  openedAt: epoch,
  state: z.enum(['waiting', 'paged', 'acknowledged']),
  paged: z.boolean(),
  pagedSeverity: z.enum(PAGE_SEVERITIES).optional(),
});

const approvalEntry = z.object({
  kind: z.literal('approval'),
  facts: z.object({
    id: z.string().min(1),
    runId: z.string().min(1),
    runbook: z.string(),
    stepId: z.string(),
    stepTitle: z.string(),
    node: z.string(),
    requestedAt: epoch,
    expiresAt: epoch,
    thread: thread.optional(),
    threadUrl: z.string().optional(),
    approverGroups: z.array(z.string()),
    approverUsers: z.array(z.string()),
  }),
  done: z.array(z.enum(APPROVAL_STAGES)),
  paged: z.boolean(),
});

const entrySchema = z.discriminatedUnion('kind', [alertEntry, approvalEntry]);

/**
 * KEYS: claim, hash. ARGV: token, ttlMs, field. The entry's JSON ('' when there is none) when claimed,
 * nil when another holder has the claim.
 */
const CLAIM = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('HGET', KEYS[2], ARGV[3]) or ''
end
return false
`;

/**
 * KEYS: claim, hash. ARGV: token, field, JSON ('' to delete). 1 when saved and released, 0 when the
 * claim is no longer this holder's.
 */
const COMMIT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[2], ARGV[2])
else
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
end
redis.call('DEL', KEYS[1])
return 1
`;

/** KEYS: claim. ARGV: token. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`;

/** The entry stored under `key`, or undefined when the text is not one (not JSON, wrong shape or key). */
function parseEntry(key: string, text: string): EscalationEntry | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = entrySchema.safeParse(value);
  return parsed.success && entryKey(parsed.data) === key ? parsed.data : undefined;
}

export function createRedisEscalationStore(deps: {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly logger: Logger;
}): EscalationStore {
  const { redis, keys } = deps;
  const hash = keys.escalation();
  return {
    shared: true,
    async list() {
      const raw = await redis.hgetall(hash);
      const entries: EscalationEntry[] = [];
      const bad: string[] = [];
      for (const [key, text] of Object.entries(raw)) {
        const entry = parseEntry(key, text);
        if (entry) entries.push(entry);
        else bad.push(key);
      }
      if (bad.length > 0) {
        deps.logger.warn({ keys: bad }, 'escalation entries in Redis are not valid; dropped');
        await redis.hdel(hash, ...bad);
      }
      return entries;
    },
    async claim(key, ttlMs): Promise<EntryClaim | undefined> {
      const token = randomBytes(12).toString('hex');
      const claimKey = keys.escalationClaim(key);
      const ttl = Math.max(1, Math.round(ttlMs));
      const text: unknown = await redis.eval(CLAIM, 2, claimKey, hash, token, ttl, key);
      if (typeof text !== 'string') return undefined;
      const entry = text === '' ? undefined : parseEntry(key, text);
      // Not valid: the transition starts from nothing, and saving its result replaces or deletes it.
      if (text !== '' && !entry) deps.logger.warn({ key }, 'escalation entry in Redis is not valid; ignored');
      return {
        entry,
        commit: async (next) =>
          (await redis.eval(COMMIT, 2, claimKey, hash, token, key, next ? JSON.stringify(next) : '')) === 1,
        release: async () => {
          await redis.eval(RELEASE, 1, claimKey, token);
        },
      };
    },
    put: async (entry) => {
      await redis.hset(hash, entryKey(entry), JSON.stringify(entry));
    },
    remove: async (id) => {
      await redis.hdel(hash, id);
    },
  };
}
