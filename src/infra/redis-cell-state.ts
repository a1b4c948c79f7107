/**
 * CellState in one Redis hash (keys.cellState()): fields `role:<cn>`, `backup:<cn>`, `image:<cn>`, each
 * JSON. A hash keeps a cell's recorded truth together and readable with one HGETALL.
 */
import type { Redis } from 'ioredis';
import type { CellState, ImageRecord, NodekeyBackupRecord, RoleAssignment } from '../ports/cell-state.js';
import type { RedisKeys } from './redis-keys.js';

export function createRedisCellState(deps: { redis: Redis; keys: RedisKeys }): CellState {
  const key = deps.keys.cellState();
  const read = async <T>(field: string): Promise<T | undefined> => {
    const text = await deps.redis.hget(key, field);
    return text === null ? undefined : (JSON.parse(text) as T);
  };
  const write = async (field: string, value: unknown): Promise<void> => {
    await deps.redis.hset(key, field, JSON.stringify(value));
  };
  return {
    role: (role) => read<RoleAssignment>(`role:${role}`),
    setRole: (assignment) => write(`role:${assignment.role}`, assignment),
    nodekeyBackup: (cn) => read<NodekeyBackupRecord>(`backup:${cn}`),
    setNodekeyBackup: (record) => write(`backup:${record.cn}`, record),
    image: (cn) => read<ImageRecord>(`image:${cn}`),
    setImage: (record) => write(`image:${record.cn}`, record),
  };
}
