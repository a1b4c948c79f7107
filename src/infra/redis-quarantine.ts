/**
 * Every record cellops reads back from Redis goes through here: parsed as JSON, checked against its
 * schema, and only then used. Anyone who can write to Redis could otherwise steer a run (an address, an
 * instance id, an approval), so a record that is not what cellops writes is never trusted and never
 * fatal for everyone: it is logged by key (never its content, which may be anything), moved aside under
 * `<prefix>quarantine:<key>` for an operator to look at, and read as absent.
 *
 * The move is a compare-and-move script: a record rewritten by cellops in the meantime is left alone.
 */
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import type { Logger } from '../ports/logger.js';
import type { RedisKeys } from './redis-keys.js';

/** Quarantined records stay this long for an operator to look at, then Redis drops them. */
export const QUARANTINE_KEEP_MS = 30 * 86_400_000;

export interface Quarantine {
  /** The value of a string key, or undefined when absent or malformed (then it is moved aside). */
  value<T>(key: string, raw: string | null | undefined, schema: z.ZodType<T>): Promise<T | undefined>;
  /** The value of one field of a hash, or undefined when absent or malformed (then it is moved aside). */
  field<T>(
    key: string,
    field: string,
    raw: string | null | undefined,
    schema: z.ZodType<T>,
  ): Promise<T | undefined>;
}

/** KEYS: key, quarantine key. ARGV: expected value, keep ms. */
const MOVE_VALUE = `
if redis.call('TYPE', KEYS[1])['ok'] ~= 'string' then return 0 end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`;

/** KEYS: hash, quarantine hash. ARGV: field, expected value, keep ms. */
const MOVE_FIELD = `
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return 0 end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`;

/**
 * What is wrong with a record, for the log: where and what kind of problem, never the value (zod's
 * messages name expected types and our own rules, not what was received).
 */
export function recordProblems<T>(
  raw: string,
  schema: z.ZodType<T>,
): { ok: true; value: T } | { ok: false; problems: string[] } {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, problems: [`not JSON (${raw.length} characters)`] };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  const problems = parsed.error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.map(String).join('.') || '(record)'}: ${issue.message}`.slice(0, 200));
  return { ok: false, problems };
}

export function createRedisQuarantine(deps: {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly logger?: Logger | undefined;
}): Quarantine {
  const { redis, keys, logger } = deps;

  const report = (key: string, field: string | undefined, problems: readonly string[], moved: boolean) => {
    logger?.warn(
      { key, ...(field === undefined ? {} : { field }), problems, quarantine: keys.quarantine(key), moved },
      'a record in Redis is not what cellops writes: ignored and moved aside (see the quarantine key)',
    );
  };

  const moveSafely = async (move: () => Promise<unknown>): Promise<boolean> => {
    try {
      return (await move()) === 1;
    } catch (error) {
      // Reading goes on without the record even when it could not be moved (Redis read-only, an ACL).
      logger?.warn({ err: error }, 'could not move a malformed Redis record aside');
      return false;
    }
  };

  return {
    async value(key, raw, schema) {
      if (raw === null || raw === undefined) return undefined;
      const checked = recordProblems(raw, schema);
      if (checked.ok) return checked.value;
      const moved = await moveSafely(() =>
        redis.eval(MOVE_VALUE, 2, key, keys.quarantine(key), raw, QUARANTINE_KEEP_MS),
      );
      report(key, undefined, checked.problems, moved);
      return undefined;
    },

    async field(key, field, raw, schema) {
      if (raw === null || raw === undefined) return undefined;
      const checked = recordProblems(raw, schema);
      if (checked.ok) return checked.value;
      const moved = await moveSafely(() =>
        redis.eval(MOVE_FIELD, 2, key, keys.quarantine(key), field, raw, QUARANTINE_KEEP_MS),
      );
      report(key, field, checked.problems, moved);
      return undefined;
    },
  };
}
