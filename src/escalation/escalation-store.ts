/**
 * Where the escalation policy keeps its entries so that a restart does not forget a page to send or to
 * resolve. Entries are plain JSON with absolute times (epoch ms): after a restart the policy loads them
 * and anything that fell due meanwhile is carried out at once. The in-memory store keeps nothing across
 * restarts; a Redis store (one hash under the cell's prefix, field = entry id) satisfies the same
 * interface and is what a deployment with several replicas needs.
 *
 * Every change goes through a claim on the entry: while one process holds it, no other can claim the
 * same entry. That is what lets several replicas share a store and still carry out each transition
 * once: the holder reads the entry as it is now (whatever another replica made of it), carries out the
 * transition and saves the result before anyone else may look.
 */
import type { EscalationEntry } from './policy.js';

/** One process's hold on one entry, taken by `EscalationStore.claim`. */
export interface EntryClaim {
  /** The entry as stored when the claim was taken (undefined: there is none). */
  readonly entry: EscalationEntry | undefined;
  /**
   * Saves the next state (undefined: forget the entry) and releases the claim. False when the claim had
   * lapsed (its holder was slower than the claim's time): nothing was saved, another process may act.
   */
  commit(next: EscalationEntry | undefined): Promise<boolean>;
  /** Releases the claim without a change. */
  release(): Promise<void>;
}

export interface EscalationStore {
  /**
   * Other processes use it too (replicas sharing Redis): the policy re-reads it now and then to learn
   * their entries, so that it carries them out when the replica that wrote them is gone.
   */
  readonly shared: boolean;
  list(): Promise<EscalationEntry[]>;
  /**
   * Claims the entry `key` (which need not exist yet) for one transition. Undefined when another holder
   * has it. A claim whose holder dies lapses after `ttlMs`, so an entry is never stuck.
   */
  claim(key: string, ttlMs: number): Promise<EntryClaim | undefined>;
  /** Writes without a claim: for seeding and tests, never while replicas run. */
  put(entry: EscalationEntry): Promise<void>;
  remove(key: string): Promise<void>;
}

/** Store key of an entry: alert and approval ids live in separate name spaces. */
export function entryKey(entry: EscalationEntry): string {
  return `${entry.kind}:${entry.facts.id}`;
}

export interface MemoryEscalationStoreOptions {
  /**
   * Pretend other processes share it (default false): tests run several policies on one memory store
   * as if they were replicas on one Redis.
   */
  readonly shared?: boolean;
}

export function createMemoryEscalationStore(
  options: MemoryEscalationStoreOptions = {},
): EscalationStore & { readonly size: number } {
  const entries = new Map<string, string>();
  const claimed = new Set<string>();
  // Stored as JSON text, like Redis would, so a test catches an entry that does not survive serialisation.
  const read = (key: string): EscalationEntry | undefined => {
    const text = entries.get(key);
    return text === undefined ? undefined : (JSON.parse(text) as EscalationEntry);
  };
  const write = (key: string, entry: EscalationEntry | undefined) => {
    if (entry) entries.set(key, JSON.stringify(entry));
    else entries.delete(key);
  };
  return {
    shared: options.shared ?? false,
    get size() {
      return entries.size;
    },
    list: async () => [...entries.keys()].flatMap((key) => read(key) ?? []),
    // Claims in one process are always released (the holder's `finally`): nothing to expire.
    claim: async (key) => {
      if (claimed.has(key)) return undefined;
      claimed.add(key);
      let held = true;
      const release = () => {
        if (held) claimed.delete(key);
        held = false;
      };
      return {
        entry: read(key),
        commit: async (next) => {
          if (!held) return false;
          write(key, next);
          release();
          return true;
        },
        release: async () => release(),
      };
    },
    put: async (entry) => write(entryKey(entry), entry),
    remove: async (key) => write(key, undefined),
  };
}
