/**
 * Where the escalation policy keeps its entries so that a restart does not forget a page to send or to
 * resolve. Entries are plain JSON with absolute times (epoch ms): after a restart the policy loads them
 * and anything that fell due meanwhile is carried out at once. The in-memory store keeps nothing across
 * restarts; a Redis store (one hash under the cell's prefix, field = entry id) satisfies the same
 * interface and is what a deployment with several replicas needs.
 */
import type { EscalationEntry } from './policy.js';

export interface EscalationStore {
  list(): Promise<EscalationEntry[]>;
  put(entry: EscalationEntry): Promise<void>;
  remove(id: string): Promise<void>;
}

/** Store key of an entry: alert and approval ids live in separate name spaces. */
export function entryKey(entry: EscalationEntry): string {
  return `${entry.kind}:${entry.facts.id}`;
}

export function createMemoryEscalationStore(): EscalationStore & { readonly size: number } {
  const entries = new Map<string, string>();
  return {
    get size() {
      return entries.size;
    },
    // Stored as JSON text, like Redis would, so a test catches an entry that does not survive serialisation.
    list: async () => [...entries.values()].map((text) => JSON.parse(text) as EscalationEntry),
    put: async (entry) => {
      entries.set(entryKey(entry), JSON.stringify(entry));
    },
    remove: async (id) => {
      entries.delete(id);
    },
  };
}
