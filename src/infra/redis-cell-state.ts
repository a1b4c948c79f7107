/**
 * CellState in Redis. One hash (keys.cellState()) keeps the cell's recorded truth together and readable
 * with one HGETALL: fields `role:<cn>`, `backup:<cn>`, `image:<cn>` (each JSON) and `roles-version` (an
 * integer). Each CN's role history is a capped list beside it (keys.cellRoleHistory(cn)), newest first.
 *
 * A role change is a compare-and-set on `roles-version`: the new roles are worked out from the ones read
 * (former servers), and a script writes them, appends the history entry and bumps the version only if no
 * other change came in between; otherwise the change is worked out again. So two replicas recording at
 * once never lose a former server or a history entry.
 */
import type { Redis } from 'ioredis';
import {
  assignmentOf,
  changeOfAssignment,
  nextRoles,
  ROLE_HISTORY_LIMIT,
  type CellState,
  type CnRoles,
  type ImageRecord,
  type NodekeyBackupRecord,
} from '../ports/cell-state.js';
import type { RedisKeys } from './redis-keys.js';

const VERSION_FIELD = 'roles-version';

/**
 * Roles as stored. Records written before roles had a history (`{role, servedBy, since, runId, …}`) are
 * read as the roles a failover recorded, with no former servers known.
 */
function parseRoles(raw: string | null | undefined, cn: string): CnRoles | undefined {
  if (raw === null || raw === undefined) return undefined;
  const stored = JSON.parse(raw) as Partial<CnRoles> & {
    readonly servedBy: string;
    readonly since: number;
    readonly runId: string;
  };
  return {
    ...stored,
    cn,
    formerServers: Array.isArray(stored.formerServers) ? stored.formerServers : [],
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

export function createRedisCellState(deps: { redis: Redis; keys: RedisKeys }): CellState {
  const { redis, keys } = deps;
  const key = keys.cellState();
  const read = async <T>(field: string): Promise<T | undefined> => {
    const text = await redis.hget(key, field);
    return text === null ? undefined : (JSON.parse(text) as T);
  };
  const write = async (field: string, value: unknown): Promise<void> => {
    await redis.hset(key, field, JSON.stringify(value));
  };
  const state: CellState = {
    roles: async (cn) => parseRoles(await redis.hget(key, `role:${cn}`), cn),
    async recordRoles(change) {
      const field = `role:${change.cn}`;
      for (let attempt = 0; attempt < 16; attempt++) {
        const [version, raw] = await redis.hmget(key, VERSION_FIELD, field);
        const previous = parseRoles(raw, change.cn);
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
      return raws.map((raw) => JSON.parse(raw) as CnRoles);
    },
    async rolesVersion() {
      return Number((await redis.hget(key, VERSION_FIELD)) ?? 0);
    },
    async role(role) {
      const current = await state.roles(role);
      return current === undefined ? undefined : assignmentOf(current);
    },
    async setRole(assignment) {
      await state.recordRoles(changeOfAssignment(await state.roles(assignment.role), assignment));
    },
    nodekeyBackup: (cn) => read<NodekeyBackupRecord>(`backup:${cn}`),
    setNodekeyBackup: (record) => write(`backup:${record.cn}`, record),
    image: (cn) => read<ImageRecord>(`image:${cn}`),
    setImage: (record) => write(`image:${record.cn}`, record),
  };
  return state;
}
