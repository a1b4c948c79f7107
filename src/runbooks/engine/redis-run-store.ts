/**
 * The run store in Redis. Every key comes from src/infra/redis-keys.ts under the configured prefix.
 *
 * - Run record: a string of JSON; recent runs: a sorted set by creation time; unfinished runs: a set.
 *   Saving, indexing and the owner check are one Lua script, so a driver that lost its owner lease
 *   cannot overwrite its successor's record.
 * - Owner lease: a string holding the owner id with a TTL, changed only by scripts that check the id.
 * - Approval round: a hash with one field per user (`u:<user>`), `_approvals` (count), `_final` (the
 *   settling decision) and `_closed`. recordDecision and closeRound are Lua scripts on that one key, so
 *   fifty concurrent clicks record exactly one settling decision and an expiry cannot race a click.
 * - Audit: XADD to the run's stream and to the cell's capped stream, with who, when and what.
 * - Notifications: PUBLISH of the run id on one channel; subscribers use their own connection.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../../infra/redis-keys.js';
import type { Logger } from '../../ports/logger.js';
import { createRedisQuarantine, recordProblems, type Quarantine } from '../../infra/redis-quarantine.js';
import type { ApprovalRecord, RunRecord } from '../types.js';
import {
  approvalRecordSchema,
  controlRequestSchema,
  roundClosureSchema,
  runRecordSchema,
} from './run-record-schema.js';
import {
  isFinished,
  sortDecisions,
  type ApprovalRound,
  type AuditEntry,
  type RecordDecisionResult,
  type RoundClosure,
  type RunStore,
  type StoredAuditEntry,
} from './run-store.js';

export interface RedisRunStoreDeps {
  /** A connection for commands. Subscribing uses a duplicate of it, closed by the unsubscribe function. */
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly logger?: Logger;
  /** Approximate cap of each run's audit stream (entries). Default 10,000. */
  readonly runAuditMaxLen?: number;
  /** Approximate cap of the cell-wide audit stream (entries). Default 100,000. */
  readonly cellAuditMaxLen?: number;
  /** How long a finished run, its approvals and its audit are kept (config runs.retention). Default 90 days. */
  readonly retentionMs?: number;
}

export const DEFAULT_RETENTION_MS = 90 * 86_400_000;

interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

function lua(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * KEYS: run, index, active, owner, audit, abort, resume. ARGV: json, id, createdAt, finished (1|0), owner
 * ('' = unguarded), createdAt minus the retention, retention ms. A finished run's keys expire after the
 * retention; the index forgets runs created more than the retention before this one.
 */
const SAVE = lua(`
if ARGV[5] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[5] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
if ARGV[4] == '1' then
  redis.call('SREM', KEYS[3], ARGV[2])
  for i = 1, 7 do if i ~= 2 and i ~= 3 then redis.call('PEXPIRE', KEYS[i], ARGV[7]) end end
else
  redis.call('SADD', KEYS[3], ARGV[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[6])
return 1
`);

/** KEYS: owner. ARGV: owner id, ttlMs. Takes a free lease or renews our own. */
const ACQUIRE_OWNER = lua(`
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`);

/** KEYS: owner. ARGV: owner id, ttlMs. */
const RENEW_OWNER = lua(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`);

/** KEYS: owner. ARGV: owner id. */
const RELEASE_OWNER = lua(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`);

/**
 * KEYS: round hash. ARGV: user, decision JSON, decision (approve|abort), required approvals, retention ms.
 * Returns {'already', JSON, field}, {'closed', JSON} or {'recorded', '1'|'0', HGETALL}.
 */
const RECORD_DECISION = lua(`
local final = redis.call('HGET', KEYS[1], '_final')
if final then return {'already', final, '_final'} end
local closed = redis.call('HGET', KEYS[1], '_closed')
if closed then return {'closed', closed} end
local mine = redis.call('HGET', KEYS[1], 'u:' .. ARGV[1])
if mine then return {'already', mine, 'u:' .. ARGV[1]} end
redis.call('HSET', KEYS[1], 'u:' .. ARGV[1], ARGV[2])
local settled = '0'
if ARGV[3] == 'abort' then
  settled = '1'
elseif redis.call('HINCRBY', KEYS[1], '_approvals', 1) >= tonumber(ARGV[4]) then
  settled = '1'
end
if settled == '1' then redis.call('HSET', KEYS[1], '_final', ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {'recorded', settled, redis.call('HGETALL', KEYS[1])}
`);

/** KEYS: round hash. ARGV: closure JSON, retention ms. Returns {'decided', HGETALL} or {'closed'}. */
const CLOSE_ROUND = lua(`
if redis.call('HEXISTS', KEYS[1], '_final') == 1 then
  return {'decided', redis.call('HGETALL', KEYS[1])}
end
redis.call('HSETNX', KEYS[1], '_closed', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'closed'}
`);

/** KEYS: abort request. ARGV: request JSON. The first request wins; returns the stored one. */
const REQUEST_ABORT = lua(`
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`);

/** KEYS: resume request. Returns and deletes it (GETDEL needs Redis 6.2; this works on any). */
const TAKE_RESUME = lua(`
local current = redis.call('GET', KEYS[1])
if current then redis.call('DEL', KEYS[1]) end
return current
`);

/** The decision filed under `u:<user>` must be that user's. */
const decisionOf = (user: string) =>
  approvalRecordSchema.refine((d) => d.user === user, 'is filed under another user');

/**
 * A round's hash as recorded, every field checked: a malformed decision is moved aside, and a `_final`
 * that is not one of the recorded decisions (written by hand, not by RECORD_DECISION) is refused.
 */
async function parseRound(q: Quarantine, key: string, flat: unknown): Promise<ApprovalRound> {
  const fields = Array.isArray(flat) ? (flat as unknown[]).map(String) : [];
  const decisions: ApprovalRecord[] = [];
  let finalRaw: string | undefined;
  let closed: RoundClosure | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i] ?? '';
    const value = fields[i + 1] ?? '';
    if (name.startsWith('u:')) {
      const decision = await q.field(key, name, value, decisionOf(name.slice(2)));
      if (decision) decisions.push(decision);
    } else if (name === '_final') finalRaw = value;
    else if (name === '_closed') closed = await q.field(key, name, value, roundClosureSchema);
  }
  const recorded = (d: ApprovalRecord) =>
    decisions.some((r) => r.user === d.user && r.decision === d.decision && r.at === d.at);
  const final =
    finalRaw === undefined
      ? undefined
      : await q.field(
          key,
          '_final',
          finalRaw,
          approvalRecordSchema.refine(recorded, 'is not one of the decisions recorded in the round'),
        );
  return { decisions: sortDecisions(decisions), ...(final ? { final } : {}), ...(closed ? { closed } : {}) };
}

/** SAVE's keys and arguments for one record. */
function saveArgs(
  keys: RedisKeys,
  record: RunRecord,
  owner: string,
  retentionMs: number,
): { scriptKeys: string[]; args: (string | number)[] } {
  const { id } = record;
  return {
    scriptKeys: [
      keys.run(id),
      keys.runIndex(),
      keys.activeRuns(),
      keys.runOwner(id),
      keys.audit(id),
      keys.runAbort(id),
      keys.runResume(id),
    ],
    args: [
      JSON.stringify(record),
      id,
      record.createdAt,
      isFinished(record.status) ? '1' : '0',
      owner,
      // Relative to the run's own time, so the index and the records age on one time base.
      record.createdAt - retentionMs,
      retentionMs,
    ],
  };
}

/** A run record, checked; a malformed one is moved aside and dropped from the indexes. */
async function checkedRun(
  redis: Redis,
  keys: RedisKeys,
  q: Quarantine,
  runId: string,
  raw: string | null | undefined,
): Promise<RunRecord | undefined> {
  if (raw === null || raw === undefined) return undefined;
  const record = await q.value(
    keys.run(runId),
    raw,
    runRecordSchema.refine((r) => r.id === runId, 'is filed under another run id'),
  );
  if (!record) await redis.multi().zrem(keys.runIndex(), runId).srem(keys.activeRuns(), runId).exec();
  return record;
}

/**
 * RECORD_DECISION with its answer checked. A malformed field that blocks the round (a `_final`, the
 * user's own decision, `_closed`) is moved aside, then the decision is recorded on what is left.
 */
async function recordChecked(
  io: {
    readonly q: Quarantine;
    readonly record: (key: string, args: readonly (string | number)[]) => Promise<unknown>;
  },
  key: string,
  decision: ApprovalRecord,
  required: number,
): Promise<RecordDecisionResult> {
  const { q } = io;
  for (let attempt = 0; attempt < 2; attempt++) {
    const [kind, value, third] = (await io.record(key, [
      decision.user,
      JSON.stringify(decision),
      decision.decision,
      required,
    ])) as [string, string, unknown?];
    if (kind === 'recorded') return { kind, final: value === '1', round: await parseRound(q, key, third) };
    if (kind === 'already') {
      const field = String(third);
      const schema = field === '_final' ? approvalRecordSchema : decisionOf(decision.user);
      const by = await q.field(key, field, value, schema);
      if (by) return { kind: 'already-decided', by };
    } else {
      const closed = await q.field(key, '_closed', value, roundClosureSchema);
      if (closed) return { kind: 'closed', closed };
    }
  }
  throw new Error(`the approval round ${key} keeps holding malformed records`);
}

export function createRedisRunStore(deps: RedisRunStoreDeps): RunStore {
  const { redis, keys } = deps;
  const runAuditMaxLen = deps.runAuditMaxLen ?? 10_000;
  const cellAuditMaxLen = deps.cellAuditMaxLen ?? 100_000;
  const retentionMs = Math.max(1, Math.round(deps.retentionMs ?? DEFAULT_RETENTION_MS));
  const q = createRedisQuarantine({ redis, keys, logger: deps.logger });

  const runOf = (runId: string, raw: string | null | undefined) => checkedRun(redis, keys, q, runId, raw);
  const control = (key: string, raw: unknown) =>
    q.value(key, typeof raw === 'string' ? raw : undefined, controlRequestSchema);

  const run = (script: LuaScript, scriptKeys: readonly string[], args: readonly (string | number)[]) =>
    evalScript(redis, script, scriptKeys, args);

  return {
    async saveRun(record, guard) {
      const { scriptKeys, args } = saveArgs(keys, record, guard?.owner ?? '', retentionMs);
      return (await run(SAVE, scriptKeys, args)) === 1;
    },

    async loadRun(runId) {
      return runOf(runId, await redis.get(keys.run(runId)));
    },

    async listRecent(limit) {
      if (limit <= 0) return [];
      const ids = await redis.zrevrange(keys.runIndex(), 0, limit - 1);
      if (ids.length === 0) return [];
      const raws = await redis.mget(...ids.map((id) => keys.run(id)));
      // Finished runs expire after the retention; the index forgets them as it meets them.
      const gone = ids.filter((_, i) => raws[i] === null);
      if (gone.length > 0) await redis.zrem(keys.runIndex(), ...gone);
      const runs = await Promise.all(ids.map((id, i) => runOf(id, raws[i])));
      return runs.filter((r): r is RunRecord => r !== undefined);
    },

    async activeRunIds() {
      return redis.smembers(keys.activeRuns());
    },

    async acquireOwner(runId, owner, ttlMs) {
      return (await run(ACQUIRE_OWNER, [keys.runOwner(runId)], [owner, Math.ceil(ttlMs)])) === 1;
    },

    async renewOwner(runId, owner, ttlMs) {
      return (await run(RENEW_OWNER, [keys.runOwner(runId)], [owner, Math.ceil(ttlMs)])) === 1;
    },

    async releaseOwner(runId, owner) {
      await run(RELEASE_OWNER, [keys.runOwner(runId)], [owner]);
    },

    async ownerOf(runId) {
      return (await redis.get(keys.runOwner(runId))) ?? undefined;
    },

    recordDecision: (runId, stepId, round, decision, required) =>
      recordChecked(
        { q, record: (key, args) => run(RECORD_DECISION, [key], [...args, retentionMs]) },
        keys.approval(runId, stepId, round),
        decision,
        required,
      ),

    async closeRound(runId, stepId, round, closure) {
      const key = keys.approval(runId, stepId, round);
      const reply = (await run(CLOSE_ROUND, [key], [JSON.stringify(closure), retentionMs])) as [
        string,
        unknown?,
      ];
      return reply[0] === 'decided'
        ? { kind: 'decided', round: await parseRound(q, key, reply[1]) }
        : { kind: 'closed' };
    },

    async readRound(runId, stepId, round) {
      const key = keys.approval(runId, stepId, round);
      const hash = await redis.hgetall(key);
      return parseRound(q, key, Object.entries(hash).flat());
    },

    async requestAbort(runId, request) {
      // A malformed stored request is moved aside; this one then stands.
      for (let attempt = 0; attempt < 2; attempt++) {
        const stored = await run(REQUEST_ABORT, [keys.runAbort(runId)], [JSON.stringify(request)]);
        const valid = await control(keys.runAbort(runId), stored);
        if (valid) return valid;
      }
      throw new Error(`the abort request of run ${runId} keeps being malformed in Redis`);
    },

    async abortRequest(runId) {
      return control(keys.runAbort(runId), await redis.get(keys.runAbort(runId)));
    },

    async requestResume(runId, request) {
      await redis.set(keys.runResume(runId), JSON.stringify(request));
    },

    async takeResume(runId) {
      // Taken already (deleted), so there is nothing left to move aside: a malformed one is just dropped.
      const json = await run(TAKE_RESUME, [keys.runResume(runId)], []);
      if (typeof json !== 'string') return undefined;
      const checked = recordProblems(json, controlRequestSchema);
      if (checked.ok) return checked.value;
      deps.logger?.warn(
        { key: keys.runResume(runId), problems: checked.problems },
        'a malformed resume request in Redis was ignored',
      );
      return undefined;
    },

    async appendAudit(runId, entry) {
      const fields = auditFields(entry);
      await redis
        .multi()
        .xadd(keys.audit(runId), 'MAXLEN', '~', runAuditMaxLen, '*', ...fields)
        .xadd(keys.auditAll(), 'MAXLEN', '~', cellAuditMaxLen, '*', 'run', runId, ...fields)
        .exec();
    },

    async readAudit(runId, limit) {
      const entries =
        limit === undefined
          ? await redis.xrange(keys.audit(runId), '-', '+')
          : await redis.xrange(keys.audit(runId), '-', '+', 'COUNT', limit);
      return entries.map(([id, flat]) => parseAudit(runId, id, flat));
    },

    async publish(runId) {
      await redis.publish(keys.runEvents(), runId);
    },

    async subscribe(listener) {
      return subscribeToRuns(deps, listener);
    },
  };
}

async function evalScript(
  redis: Redis,
  script: LuaScript,
  scriptKeys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await redis.evalsha(script.sha, scriptKeys.length, ...scriptKeys, ...args);
  } catch (error) {
    // Scripts live in Redis's script cache, which a restart or SCRIPT FLUSH empties.
    if (error instanceof Error && error.message.includes('NOSCRIPT')) {
      return redis.eval(script.source, scriptKeys.length, ...scriptKeys, ...args);
    }
    throw error;
  }
}

/** Listens on a duplicate connection (a subscribed one can do nothing else); resolves to its unsubscribe. */
async function subscribeToRuns(
  { redis, keys, logger }: RedisRunStoreDeps,
  listener: (runId: string) => void,
): Promise<() => Promise<void>> {
  const subscriber = redis.duplicate();
  subscriber.on('error', (error: Error) => {
    logger?.warn({ err: error }, 'run notifications: Redis subscriber error (the engine polls meanwhile)');
  });
  subscriber.on('message', (channel: string, message: string) => {
    if (channel === keys.runEvents()) listener(message);
  });
  try {
    await subscriber.subscribe(keys.runEvents());
  } catch (error) {
    subscriber.disconnect();
    throw error;
  }
  return async () => {
    try {
      await subscriber.quit();
    } catch {
      subscriber.disconnect();
    }
  };
}

function auditFields(entry: AuditEntry): string[] {
  const fields = ['at', String(entry.at), 'who', entry.who, 'what', entry.what];
  if (entry.stepId !== undefined) fields.push('step', entry.stepId);
  if (entry.detail !== undefined) fields.push('detail', entry.detail);
  return fields;
}

function parseAudit(runId: string, id: string, flat: readonly string[]): StoredAuditEntry {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(flat[i] ?? '', flat[i + 1] ?? '');
  const stepId = map.get('step');
  const detail = map.get('detail');
  return {
    id,
    runId,
    at: Number(map.get('at') ?? 0),
    who: map.get('who') ?? '',
    what: map.get('what') ?? '',
    ...(stepId === undefined ? {} : { stepId }),
    ...(detail === undefined ? {} : { detail }),
  };
}
