/**
 * CellState in Redis. One hash (keys.cellState()) keeps the cell's recorded truth together and readable
 * with one HGETALL: fields `role:<cn>`, `backup:<cn>`, `image:<cn>` (each JSON) and `roles-version` (an
 * integer). Each CN's role history is a capped list beside it (keys.cellRoleHistory(cn)), newest first.
 *
 * A role change is a compare-and-set on `roles-version`: the new roles are worked out from the ones read
 * (former servers), and a script writes them, appends the history entry and bumps the version only if no
 * other change came in between; otherwise the change is worked out again. So two replicas recording at
 * once never lose a former server or a history entry.
 *
 * Every record read is checked against its schema (cell-state-schemas.ts): a malformed field is moved
 * aside and reads as absent, a malformed history entry is skipped, so a hostile write to Redis cannot
 * steer which machine the next failover fences or starts.
 */
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import {
  assignmentOf,
  changeOfAssignment,
  nextRoles,
  ROLE_HISTORY_LIMIT,
  type CellState,
  type CnRoles,
} from '../ports/cell-state.js';
import type { Logger } from '../ports/logger.js';
import {
  imageRecordSchema,
  nodekeyBackupSchema,
  storedRolesSchema,
  type StoredRoles,
} from './cell-state-schemas.js';
import type { RedisKeys } from './redis-keys.js';
import { createRedisQuarantine, recordProblems } from './redis-quarantine.js';

const VERSION_FIELD = 'roles-version';

/**
 * Roles as stored, normalised. Records written before roles had a history (`{role, servedBy, since, runId,
 * …}`) are read as the roles a failover recorded, with no former servers known.
 */
function normalise(stored: StoredRoles, cn: string): CnRoles {
  const { role: _legacyRole, ...rest } = stored;
  return {
    ...rest,
    cn,
    formerServers: stored.formerServers ?? [],
    by: stored.by ?? 'cellops',
    reason: stored.reason ?? 'failover',
    version: stored.version ?? 0,
  };
}

/** KEYS: hash, history list. ARGV: expected version ('' for none), new version, field, JSON, cap. */
const RECORD_ROLES = `
local current = redis.call('HGET', KEYS[1], '${VERSION_FIELD}')
if (current or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], '${VERSION_FIELD}', ARGV[2], ARGV[3], ARGV[4])
redis.call('LPUSH', KEYS[2], ARGV[4])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[5]) - 1)
return 1
`;

export function createRedisCellState(deps: { redis: Redis; keys: RedisKeys; logger?: Logger }): CellState {
  const { redis, keys, logger } = deps;
  const key = keys.cellState();
  const quarantine = createRedisQuarantine(deps);
  const read = async <T>(field: string, schema: z.ZodType<T>): Promise<T | undefined> =>
    quarantine.field(key, field, await redis.hget(key, field), schema);
  const write = async (field: string, value: unknown): Promise<void> => {
    await redis.hset(key, field, JSON.stringify(value));
  };
  const rolesFrom = async (raw: string | null | undefined, cn: string): Promise<CnRoles | undefined> => {
    const stored = await quarantine.field(key, `role:${cn}`, raw, storedRolesSchema);
    return stored === undefined ? undefined : normalise(stored, cn);
  };
  const state: CellState = {
    roles: async (cn) => rolesFrom(await redis.hget(key, `role:${cn}`), cn),
    async recordRoles(change) {
      const field = `role:${change.cn}`;
      for (let attempt = 0; attempt < 16; attempt++) {
        const [version, raw] = await redis.hmget(key, VERSION_FIELD, field);
        const previous = await rolesFrom(raw, change.cn);
        const next = nextRoles(previous, change, Number(version ?? 0) + 1);
        const text = JSON.stringify(next);
        const args = [version ?? '', String(next.version), field, text, String(ROLE_HISTORY_LIMIT)];
        if ((await redis.eval(RECORD_ROLES, 2, key, keys.cellRoleHistory(change.cn), ...args)) === 1)
          return next;
      }
      throw new Error(`the roles of ${change.cn} kept changing under us; nothing was recorded`);
    },
    async roleHistory(cn, limit) {
      if (limit <= 0) return [];
      const raws = await redis.lrange(keys.cellRoleHistory(cn), 0, limit - 1);
      const history: CnRoles[] = [];
      for (const raw of raws) {
        const checked = recordProblems(raw, storedRolesSchema);
        if (checked.ok) history.push(normalise(checked.value, cn));
        else
          logger?.warn(
            { key: keys.cellRoleHistory(cn), problems: checked.problems },
            'a role history entry in Redis is not what cellops writes: skipped',
          );
      }
      return history;
    },
    async rolesVersion() {
      const raw = await redis.hget(key, VERSION_FIELD);
      const version = Number(raw ?? 0);
      return Number.isSafeInteger(version) && version >= 0 ? version : 0;
    },
    async role(role) {
      const current = await state.roles(role);
      return current === undefined ? undefined : assignmentOf(current);
    },
    async setRole(assignment) {
      await state.recordRoles(changeOfAssignment(await state.roles(assignment.role), assignment));
    },
    nodekeyBackup: (cn) => read(`backup:${cn}`, nodekeyBackupSchema),
    setNodekeyBackup: (record) => write(`backup:${record.cn}`, record),
    image: (cn) => read(`image:${cn}`, imageRecordSchema),
    setImage: (record) => write(`image:${record.cn}`, record),
  };
  return state;
}
