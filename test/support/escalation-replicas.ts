/**
 * Several escalation policies on one store, as the bot's replicas run them on one Redis: each with its
 * own logger and its own list of what it carried out, all on one manual clock.
 */
import { createEscalationPolicy, type EscalationPolicy } from '../../src/escalation/escalation-policy.js';
import type { EscalationStore } from '../../src/escalation/escalation-store.js';
import type {
  AlertFacts,
  ApprovalFacts,
  EscalationIntent,
  EscalationSettings,
} from '../../src/escalation/policy.js';
import type { ManualClock } from '../fakes/manual-clock.js';
import { RecordingLogger } from '../fakes/recording-logger.js';

export const MIN = 60_000;

export const replicaSettings: EscalationSettings = {
  cell: 'my-core-cell',
  pageAfterMs: 5 * MIN,
  approvalReminderMs: 5 * MIN,
  approvalPageMs: 10 * MIN,
  paging: true,
};

export interface Replica {
  readonly name: string;
  readonly policy: EscalationPolicy;
  /** What this replica carried out, in order. */
  readonly intents: EscalationIntent[];
  readonly logger: RecordingLogger;
}

export function escalationReplica(
  name: string,
  store: EscalationStore,
  clock: ManualClock,
  options: { readonly resyncMs?: number; readonly claimTtlMs?: number } = {},
): Replica {
  const logger = new RecordingLogger();
  const intents: EscalationIntent[] = [];
  const policy = createEscalationPolicy({
    settings: replicaSettings,
    clock,
    logger,
    store,
    ...options,
    emit: (intent) => {
      intents.push(intent);
    },
  });
  return { name, policy, intents, logger };
}

/** One line per intent: `page <action> <key>`, or the intent's type. */
export function summary(intents: readonly EscalationIntent[]): string[] {
  return intents.map((i) => (i.type === 'page' ? `page ${i.event.action} ${i.event.key}` : i.type));
}

/** What all replicas carried out, sorted (which replica did what is up to the race). */
export function together(replicas: readonly Replica[]): string[] {
  return replicas.flatMap((r) => summary(r.intents)).sort();
}

/** Until no replica is carrying anything out (a round trip to Redis outlasts the manual clock's flush). */
export async function settle(replicas: readonly Replica[]): Promise<void> {
  for (let i = 0; i < 3; i++) await Promise.all(replicas.map((r) => r.policy.idle()));
}

/** Moves the clock in steps, letting every replica finish what each step woke before the next. */
export async function advance(
  clock: ManualClock,
  replicas: readonly Replica[],
  ms: number,
  stepMs = 10_000,
): Promise<void> {
  for (let left = ms; left > 0; left -= stepMs) {
    await clock.advance(Math.min(stepMs, left));
    await settle(replicas);
  }
}

export function alertFacts(clock: ManualClock, overrides: Partial<AlertFacts> = {}): AlertFacts {
  return {
    id: 'cn1-abc',
    node: 'cn1',
    role: 'cn',
    condition: 'down',
    since: clock.now(),
    thread: { channel: 'C0123ALERTS', ts: '1.1' },
    ...overrides,
  };
}

export function approvalFacts(clock: ManualClock, overrides: Partial<ApprovalFacts> = {}): ApprovalFacts {
  return {
    id: 'run-1:swap-key:1',
    runId: 'run-1',
    runbook: 'failover',
    stepId: 'swap-key',
    stepTitle: 'Move the nodekey to cn1s',
    node: 'cn1',
    requestedAt: clock.now(),
    expiresAt: clock.now() + 15 * MIN,
    thread: { channel: 'C0123ALERTS', ts: '1.2' },
    approverGroups: ['S0ONCALL'],
    approverUsers: [],
    ...overrides,
  };
}

/**
 * Once armed, holds each caller of `claim` until `count` callers have arrived (or `timeoutMs` of real time
 * passed, so that code which never claims fails its assertions instead of hanging), then lets them all go
 * at once. Before it is armed, and after it opened, claims go straight through.
 */
export function claimBarrier(count: number, timeoutMs = 2_000) {
  let armed = false;
  let arrived = 0;
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  let timeout: ReturnType<typeof setTimeout> | undefined;
  return {
    arm() {
      armed = true;
      timeout = setTimeout(open, timeoutMs);
    },
    /** How many claims it held: `count` when the race took place as planned. */
    get held() {
      return arrived;
    },
    wrap(store: EscalationStore): EscalationStore {
      return {
        shared: store.shared,
        list: () => store.list(),
        put: (entry) => store.put(entry),
        remove: (key) => store.remove(key),
        claim: async (key, ttlMs) => {
          if (armed && arrived < count) {
            arrived += 1;
            if (arrived === count) {
              clearTimeout(timeout);
              open();
            }
            await opened;
          }
          return store.claim(key, ttlMs);
        },
      };
    },
  };
}
