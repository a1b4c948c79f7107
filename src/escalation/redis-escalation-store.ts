/**
 * The escalation state in Redis: one hash under the cell's prefix, field = entry key (`alert:<id>`,
 * `approval:<run>:<step>:<round>`), value = the entry as JSON. A new monitor leader or a restarted bot loads
 * it and carries on: pages still due are sent, pages sent are acknowledged and resolved.
 *
 * What is read back is validated: an entry that does not have the expected shape (written by another
 * version, or edited by hand) is logged by key, skipped and deleted, rather than letting the policy act on
 * it or fail every start.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { RedisKeys } from '../infra/redis-keys.js';
import type { Logger } from '../ports/logger.js';
import { PAGE_SEVERITIES } from '../ports/pager.js';
import { entryKey, type EscalationStore } from './escalation-store.js';
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

export function createRedisEscalationStore(deps: {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly logger: Logger;
}): EscalationStore {
  const { redis, keys } = deps;
  const hash = keys.escalation();
  return {
    async list() {
      const raw = await redis.hgetall(hash);
      const entries: EscalationEntry[] = [];
      const bad: string[] = [];
      for (const [key, text] of Object.entries(raw)) {
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          value = undefined;
        }
        const parsed = entrySchema.safeParse(value);
        if (parsed.success && entryKey(parsed.data) === key) {
          entries.push(parsed.data);
        } else {
          bad.push(key);
        }
      }
      if (bad.length > 0) {
        deps.logger.warn({ keys: bad }, 'escalation entries in Redis are not valid; dropped');
        await redis.hdel(hash, ...bad);
      }
      return entries;
    },
    put: async (entry) => {
      await redis.hset(hash, entryKey(entry), JSON.stringify(entry));
    },
    remove: async (id) => {
      await redis.hdel(hash, id);
    },
  };
}
