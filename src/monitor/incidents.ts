/**
 * Incident state, mutes and the monitor's leader lease, kept outside the process so that after a restart,
 * or on another replica, the same alert thread continues.
 *
 * How several replicas post exactly one message per incident: the leader lease is the mechanism.
 * Only the replica holding `keys.monitorLease()` (SET NX PX, renewed by a compare-and-expire script on
 * every tick) probes the nodes and writes to alert threads; the others stay idle and answer `/cell
 * status` from the view the leader saves. A lease alone can overlap for a moment (a paused leader whose
 * lease lapsed wakes up and finishes its tick while a new leader starts one), so the one transition that
 * posts a message — opening an incident — is additionally a `SET NX` on `keys.incident(node)`: whichever
 * replica creates the record posts, every other one sees it exists. Later changes are compare-and-set on
 * the record's `version` (a Lua script), so an Acknowledge clicked on any replica is never lost to the
 * leader's concurrent update. Side effects follow a won transition (claim the notes, then post them), so
 * a lost race never posts twice; at worst a failed post loses one thread note, which is logged.
 */
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../infra/redis-keys.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import { createRedisQuarantine } from '../infra/redis-quarantine.js';
import type { CellView } from './types.js';
import { cellViewSchema, incidentRecordSchema, muteRecordSchema } from './incident-schemas.js';

export type { IncidentKind, IncidentRecord, MuteRecord } from './incident-record.js';
import type { IncidentRecord, MuteRecord } from './incident-record.js';

export interface IncidentStore {
  get(subject: string): Promise<IncidentRecord | undefined>;
  /** Several at once (one round trip); absent ones are left out. */
  getMany(subjects: readonly string[]): Promise<Map<string, IncidentRecord>>;
  /** Every open incident (on becoming leader). */
  list(): Promise<IncidentRecord[]>;
  /** Creates the record unless one exists for its subject: true for exactly one caller. */
  create(record: IncidentRecord): Promise<boolean>;
  /** Stores `next` only if the stored record still has version `next.version - 1`. */
  replace(next: IncidentRecord): Promise<boolean>;
  /** Deletes the record only if it still has `version`. */
  remove(subject: string, version: number): Promise<boolean>;

  getMutes(nodes: readonly string[]): Promise<Map<string, MuteRecord>>;
  setMute(node: string, mute: MuteRecord): Promise<void>;
  /** Removes the mute; with `expected`, only if it is still that mute (an expiry must not undo a new mute). */
  clearMute(node: string, expected?: MuteRecord): Promise<boolean>;

  /** Takes or renews the monitor lease for `owner`: true while `owner` leads. */
  acquireLease(owner: string, ttlMs: number): Promise<boolean>;
  releaseLease(owner: string): Promise<void>;

  saveView(view: CellView): Promise<void>;
  loadView(): Promise<CellView | undefined>;
}

/**
 * Read-modify-write with compare-and-set, retried when another replica changed the record in between.
 * `change` returns the new record (without bumping the version) or undefined to leave it. Resolves with
 * the stored record, or undefined when there is none or `change` declined.
 */
export async function updateIncident(
  store: IncidentStore,
  subject: string,
  change: (current: IncidentRecord) => IncidentRecord | undefined,
  attempts = 8,
): Promise<IncidentRecord | undefined> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const current = await store.get(subject);
    if (!current) return undefined;
    const next = change(current);
    if (!next) return undefined;
    const bumped = { ...next, version: current.version + 1 };
    if (await store.replace(bumped)) return bumped;
  }
  throw new Error(`incident ${subject} kept changing under us after ${attempts} attempts`);
}

/** The sandbox's and unit tests' store: the same semantics in one process, time from the Clock. */
export function createMemoryIncidentStore(deps: { readonly clock: Clock }): IncidentStore {
  const incidents = new Map<string, string>();
  const mutes = new Map<string, string>();
  let lease: { owner: string; expiresAt: number } | undefined;
  let view: string | undefined;
  const parse = (raw: string | undefined) =>
    raw === undefined ? undefined : (JSON.parse(raw) as IncidentRecord);

  return {
    get: async (subject) => parse(incidents.get(subject)),
    getMany: async (subjects) => {
      const out = new Map<string, IncidentRecord>();
      for (const subject of subjects) {
        const record = parse(incidents.get(subject));
        if (record) out.set(subject, record);
      }
      return out;
    },
    list: async () => [...incidents.values()].map((raw) => JSON.parse(raw) as IncidentRecord),
    create: async (record) => {
      if (incidents.has(record.subject)) return false;
      incidents.set(record.subject, JSON.stringify(record));
      return true;
    },
    replace: async (next) => {
      const current = parse(incidents.get(next.subject));
      if (!current || current.version !== next.version - 1) return false;
      incidents.set(next.subject, JSON.stringify(next));
      return true;
    },
    remove: async (subject, version) => {
      const current = parse(incidents.get(subject));
      if (!current || current.version !== version) return false;
      incidents.delete(subject);
      return true;
    },
    getMutes: async (nodes) => {
      const out = new Map<string, MuteRecord>();
      for (const node of nodes) {
        const raw = mutes.get(node);
        if (raw !== undefined) out.set(node, JSON.parse(raw) as MuteRecord);
      }
      return out;
    },
    setMute: async (node, mute) => {
      mutes.set(node, JSON.stringify(mute));
    },
    clearMute: async (node, expected) => {
      const raw = mutes.get(node);
      if (raw === undefined) return false;
      if (expected && raw !== JSON.stringify(expected)) return false;
      mutes.delete(node);
      return true;
    },
    acquireLease: async (owner, ttlMs) => {
      const now = deps.clock.now();
      if (!lease || lease.owner === owner || lease.expiresAt <= now) {
        lease = { owner, expiresAt: now + ttlMs };
        return true;
      }
      return false;
    },
    releaseLease: async (owner) => {
      if (lease?.owner === owner) lease = undefined;
    },
    saveView: async (next) => {
      view = JSON.stringify(next);
    },
    loadView: async () => (view === undefined ? undefined : (JSON.parse(view) as CellView)),
  };
}

/** KEYS: incident. ARGV: expected version, new JSON. 1 when replaced. */
const REPLACE = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, current = pcall(cjson.decode, raw)
if not ok or type(current) ~= 'table' or tonumber(current['version']) ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`;

/** KEYS: incident. ARGV: expected version. 1 when deleted. */
const REMOVE = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, current = pcall(cjson.decode, raw)
if not ok or type(current) ~= 'table' or tonumber(current['version']) ~= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;

/** KEYS: key. ARGV: expected value. 1 when deleted. */
const DELETE_IF = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

/** KEYS: lease. ARGV: owner, ttlMs. 1 while the owner holds it. */
const LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
`;

/** Mutes and closed records are garbage-collected by Redis a day after they stop mattering. */
const KEEP_MS = 86_400_000;

export function createRedisIncidentStore(deps: {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly clock: Clock;
  readonly logger?: Logger;
}): IncidentStore {
  const { redis, keys, clock } = deps;
  const quarantine = createRedisQuarantine(deps);
  /** Read back checked: a malformed record is moved aside and reads as absent. */
  const parse = (key: string, raw: string | null | undefined) =>
    quarantine.value(
      key,
      raw,
      incidentRecordSchema.refine((r) => keys.incident(r.subject) === key, 'is filed under another subject'),
    );

  return {
    get: async (subject) => parse(keys.incident(subject), await redis.get(keys.incident(subject))),
    getMany: async (subjects) => {
      const out = new Map<string, IncidentRecord>();
      if (subjects.length === 0) return out;
      const raws = await redis.mget(...subjects.map((s) => keys.incident(s)));
      for (const [i, subject] of subjects.entries()) {
        const record = await parse(keys.incident(subject), raws[i]);
        if (record) out.set(subject, record);
      }
      return out;
    },
    list: async () => {
      const found: string[] = [];
      let cursor = '0';
      do {
        const [nextCursor, batch] = await redis.scan(cursor, 'MATCH', keys.incident('*'), 'COUNT', 200);
        cursor = nextCursor;
        found.push(...batch);
      } while (cursor !== '0');
      if (found.length === 0) return [];
      const raws = await redis.mget(...found);
      const records = await Promise.all(found.map((key, i) => parse(key, raws[i])));
      return records.filter((r): r is IncidentRecord => r !== undefined);
    },
    create: async (record) =>
      (await redis.set(keys.incident(record.subject), JSON.stringify(record), 'NX')) === 'OK',
    replace: async (next) =>
      (await redis.eval(REPLACE, 1, keys.incident(next.subject), next.version - 1, JSON.stringify(next))) ===
      1,
    remove: async (subject, version) => (await redis.eval(REMOVE, 1, keys.incident(subject), version)) === 1,
    getMutes: async (nodes) => {
      const out = new Map<string, MuteRecord>();
      if (nodes.length === 0) return out;
      const raws = await redis.mget(...nodes.map((n) => keys.mute(n)));
      for (const [i, node] of nodes.entries()) {
        const mute = await quarantine.value(keys.mute(node), raws[i], muteRecordSchema);
        if (mute) out.set(node, mute);
      }
      return out;
    },
    setMute: async (node, mute) => {
      // The monitor, not Redis, notices the end of a mute (to say so in the thread); the TTL only
      // collects mutes nobody looked at.
      const ttl = Math.max(1, mute.until - clock.now()) + KEEP_MS;
      await redis.set(keys.mute(node), JSON.stringify(mute), 'PX', ttl);
    },
    clearMute: async (node, expected) => {
      if (!expected) return (await redis.del(keys.mute(node))) > 0;
      return (await redis.eval(DELETE_IF, 1, keys.mute(node), JSON.stringify(expected))) === 1;
    },
    acquireLease: async (owner, ttlMs) =>
      (await redis.eval(LEASE, 1, keys.monitorLease(), owner, Math.max(1, Math.round(ttlMs)))) === 1,
    releaseLease: async (owner) => {
      await redis.eval(DELETE_IF, 1, keys.monitorLease(), owner);
    },
    saveView: async (view) => {
      await redis.set(keys.monitorView(), JSON.stringify(view), 'PX', KEEP_MS);
    },
    loadView: async () => {
      return quarantine.value(keys.monitorView(), await redis.get(keys.monitorView()), cellViewSchema);
    },
  };
}
