/**
 * CellState in one Redis hash (keys.cellState()): fields `role:<cn>`, `backup:<cn>`, `image:<cn>`, each
 * JSON. A hash keeps a cell's recorded truth together and readable with one HGETALL. Every field read is
 * checked against its schema (cell-state-schemas.ts); a malformed one is moved aside and reads as absent.
 */
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import type { CellState } from '../ports/cell-state.js';
import type { Logger } from '../ports/logger.js';
import { imageRecordSchema, nodekeyBackupSchema, roleAssignmentSchema } from './cell-state-schemas.js';
import type { RedisKeys } from './redis-keys.js';
import { createRedisQuarantine } from './redis-quarantine.js';

export function createRedisCellState(deps: { redis: Redis; keys: RedisKeys; logger?: Logger }): CellState {
  const key = deps.keys.cellState();
  const quarantine = createRedisQuarantine(deps);
  const read = async <T>(field: string, schema: z.ZodType<T>): Promise<T | undefined> =>
    quarantine.field(key, field, await deps.redis.hget(key, field), schema);
  const write = async (field: string, value: unknown): Promise<void> => {
    await deps.redis.hset(key, field, JSON.stringify(value));
  };
  return {
    role: (role) => read(`role:${role}`, roleAssignmentSchema),
    setRole: (assignment) => write(`role:${assignment.role}`, assignment),
    nodekeyBackup: (cn) => read(`backup:${cn}`, nodekeyBackupSchema),
    setNodekeyBackup: (record) => write(`backup:${record.cn}`, record),
    image: (cn) => read(`image:${cn}`, imageRecordSchema),
    setImage: (record) => write(`image:${record.cn}`, record),
  };
}
