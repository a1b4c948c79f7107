/**
 * Drives the pure rules of policy.ts with the Clock port: one timer, set for the earliest entry that
 * needs attention, and a store so that a restart does not forget what is due (escalation-store.ts).
 *
 * Every input and every due entry is carried out under the store's claim on the entry, from the entry as
 * stored at that moment (claimed-transition.ts): what this process remembers only decides when to look.
 * Intents are handed to `emit` before the new state is saved: after a crash in between, a page may be
 * sent twice (PagerDuty and Opsgenie de-duplicate it by key) rather than not at all.
 *
 * With several replicas sharing a Redis store, every replica runs a policy and any of them may get an
 * input (alerts from the monitor's leader, approvals from whichever replica drives the run). Each one
 * re-reads the store every `resyncMs` to learn the entries the others wrote and arms its timer for them
 * too; when an entry falls due, every replica that knows it tries to claim it, one wins and carries it
 * out, and the others find it done. So each page, reminder and note goes out once, and a replica that
 * dies leaves nothing undone: the others carry out its entries when they fall due.
 */
import { describeError } from '../errors.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import { createClaimedTransitions, untilCarriedOut, type EntryInput } from './claimed-transition.js';
import { createMemoryEscalationStore, entryKey, type EscalationStore } from './escalation-store.js';
import {
  alertAcknowledged,
  alertChanged,
  alertOpened,
  alertResolved,
  approvalEnded,
  approvalRequested,
  entryDue,
  entryDueAt,
  type AlertFacts,
  type ApprovalEnding,
  type ApprovalFacts,
  type EscalationEntry,
  type EscalationIntent,
  type EscalationSettings,
} from './policy.js';

/** How often a shared store is read again for the entries other replicas wrote. */
export const DEFAULT_RESYNC_MS = 30_000;
/** How long a claim outlives a replica that died holding it: a transition's Redis round trips fit many times. */
export const DEFAULT_CLAIM_TTL_MS = 30_000;
/** An input that finds its entry claimed by another replica tries again after this. */
const INPUT_RETRY_MS = 50;
/** An input or due entry the store failed (Redis unreachable) is tried again after this. */
const FAILED_RETRY_MS = 5_000;
/** A due entry another replica holds is looked at again after this: by then it is done, or the holder is slow or gone. */
const DUE_RETRY_MS = 1_000;

export interface EscalationPolicyDeps {
  readonly settings: EscalationSettings;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Default: in memory (nothing survives a restart). */
  readonly store?: EscalationStore;
  /** Carries out an intent: dispatch a page, post a note or reminder in a thread. Errors are logged. */
  readonly emit: (intent: EscalationIntent) => void | Promise<void>;
  /** With a shared store: how often to read it again. Default DEFAULT_RESYNC_MS. */
  readonly resyncMs?: number;
  /** How long a claim on an entry outlives a holder that died. Default DEFAULT_CLAIM_TTL_MS. */
  readonly claimTtlMs?: number;
}

export interface EscalationPolicy {
  /** Loads the stored entries and arms the timer; anything overdue is carried out at once. */
  start(): Promise<void>;
  /** Disarms the timer and gives up inputs waiting for a claim. Entries stay in the store. */
  stop(): void;
  /** An alert was posted. `openedAt` (default now) is when: the page delay counts from it. */
  alertOpened(facts: AlertFacts, openedAt?: number): Promise<void>;
  /** The incident's condition, lag or thread link changed. */
  alertChanged(facts: AlertFacts): Promise<void>;
  /** Acknowledged (or muted) in Slack. */
  alertAcknowledged(id: string, by: string): Promise<void>;
  /** The node recovered (or the incident was closed). */
  alertResolved(id: string): Promise<void>;
  approvalRequested(facts: ApprovalFacts): Promise<void>;
  approvalEnded(id: string, ending: ApprovalEnding): Promise<void>;
  /** What the policy is waiting for, as this process last saw it: for the sandbox and tests. */
  entries(): readonly EscalationEntry[];
  /** Resolves once no input or due entry is being carried out (a clean stop; tests). */
  idle(): Promise<void>;
}

function safeEmit(emit: EscalationPolicyDeps['emit'], logger: Logger): (intent: EscalationIntent) => void {
  return (intent) => {
    const fail = (error: unknown) =>
      logger.error({ intent: intent.type, err: describeError(error) }, 'could not carry out an escalation');
    try {
      Promise.resolve(emit(intent)).catch(fail);
    } catch (error) {
      fail(error);
    }
  };
}

type Inputs = Pick<
  EscalationPolicy,
  | 'alertOpened'
  | 'alertChanged'
  | 'alertAcknowledged'
  | 'alertResolved'
  | 'approvalRequested'
  | 'approvalEnded'
>;

/**
 * The policy's inputs as functions of the entry as stored when they are carried out (not as this process
 * last saw it: another replica may have paged or reminded meanwhile). The time is the input's arrival.
 */
function inputs(
  settings: EscalationSettings,
  clock: Clock,
  change: (key: string, name: string, input: EntryInput) => Promise<void>,
): Inputs {
  const alertKey = (id: string) => `alert:${id}`;
  const approvalKey = (id: string) => `approval:${id}`;
  const asAlert = (entry: EscalationEntry | undefined) => (entry?.kind === 'alert' ? entry : undefined);
  const asApproval = (entry: EscalationEntry | undefined) => (entry?.kind === 'approval' ? entry : undefined);

  return {
    alertOpened(facts, openedAt) {
      const now = clock.now();
      return change(alertKey(facts.id), 'alertOpened', (current) =>
        alertOpened(settings, current, facts, openedAt ?? now, now),
      );
    },
    alertChanged(facts) {
      const now = clock.now();
      return change(alertKey(facts.id), 'alertChanged', (current) => {
        const known = asAlert(current);
        // Not known (e.g. a restart with the in-memory store): start counting now rather than never page.
        return known
          ? alertChanged(settings, known, facts, now)
          : alertOpened(settings, undefined, facts, now, now);
      });
    },
    alertAcknowledged(id, by) {
      const now = clock.now();
      return change(alertKey(id), 'alertAcknowledged', (current) => {
        const known = asAlert(current);
        return known && alertAcknowledged(settings, known, by, now);
      });
    },
    alertResolved(id) {
      const now = clock.now();
      return change(alertKey(id), 'alertResolved', (current) => {
        const known = asAlert(current);
        return known && alertResolved(settings, known, now);
      });
    },
    approvalRequested: (facts) =>
      // A round already known keeps what it did: announcing the request again must not remind again.
      change(approvalKey(facts.id), 'approvalRequested', (current) =>
        asApproval(current) ? undefined : approvalRequested(facts),
      ),
    approvalEnded(id, ending) {
      const now = clock.now();
      return change(approvalKey(id), 'approvalEnded', (current) => {
        const known = asApproval(current);
        return known && approvalEnded(settings, known, ending, now);
      });
    },
  };
}

export function createEscalationPolicy(deps: EscalationPolicyDeps): EscalationPolicy {
  const { settings, clock } = deps;
  const logger = deps.logger.child({ component: 'escalation' });
  const store = deps.store ?? createMemoryEscalationStore();
  const resyncMs = deps.resyncMs ?? DEFAULT_RESYNC_MS;
  const claimTtlMs = deps.claimTtlMs ?? DEFAULT_CLAIM_TTL_MS;
  /** The entries as this process last saw them. They decide when to look, never what to do. */
  const entries = new Map<string, EscalationEntry>();
  /** Due entries not to look at before this time: another replica held them, or the store failed. */
  const notBefore = new Map<string, number>();
  const inFlight = new Set<Promise<unknown>>();
  let timer: AbortController | undefined;
  let stopped = false;
  /** Aborted by stop(): inputs waiting for a claim give up. */
  let life = new AbortController();

  const transitions = createClaimedTransitions({
    store,
    logger,
    claimTtlMs,
    emit: safeEmit(deps.emit, logger),
  });

  const track = <T>(work: Promise<T>): Promise<T> => {
    inFlight.add(work);
    const done = () => inFlight.delete(work);
    work.then(done, done);
    return work;
  };

  const remember = (key: string, entry: EscalationEntry | undefined) => {
    if (entry) entries.set(key, entry);
    else entries.delete(key);
    notBefore.delete(key);
  };

  const dueAt = (key: string, entry: EscalationEntry): number | undefined => {
    const due = entryDueAt(settings, entry);
    return due === undefined ? undefined : Math.max(due, notBefore.get(key) ?? due);
  };

  /** Takes in what the store holds now: entries other replicas added, changed or ended. */
  const reload = async (): Promise<void> => {
    try {
      const stored = await store.list();
      const keys = new Set(stored.map(entryKey));
      for (const key of [...entries.keys()]) if (!keys.has(key)) remember(key, undefined);
      for (const entry of stored) entries.set(entryKey(entry), entry);
    } catch (error) {
      logger.error(
        { err: describeError(error) },
        'could not read the escalation state; going by what this process knows',
      );
    }
  };

  const tick = async (): Promise<void> => {
    // The time the timer was set for: read before anything waits on the store.
    const now = clock.now();
    if (store.shared) await reload();
    for (const [key, entry] of [...entries]) {
      const due = dueAt(key, entry);
      if (due === undefined || due > now) continue;
      const outcome = await transitions.run(key, (current) => current && entryDue(settings, current, now));
      if (outcome.kind === 'done') remember(key, outcome.entry);
      else notBefore.set(key, now + (outcome.kind === 'busy' ? DUE_RETRY_MS : FAILED_RETRY_MS));
    }
    reschedule();
  };

  function reschedule(): void {
    timer?.abort();
    timer = undefined;
    if (stopped) return;
    const now = clock.now();
    // A shared store is read again now and then even when nothing here is due: that is how this
    // replica learns the entries of the others, and takes them over if their replica is gone.
    let next = store.shared ? now + resyncMs : undefined;
    for (const [key, entry] of entries) {
      const due = dueAt(key, entry);
      if (due !== undefined && (next === undefined || due < next)) next = due;
    }
    if (next === undefined) return;
    const armed = new AbortController();
    timer = armed;
    clock.sleep(Math.max(0, next - now), armed.signal).then(
      () => {
        if (timer !== armed) return;
        timer = undefined;
        track(tick()).catch((error: unknown) =>
          logger.error({ err: describeError(error) }, 'escalation timer failed'),
        );
      },
      // Aborted: a newer timer replaced this one.
      () => undefined,
    );
  }

  const change = async (key: string, name: string, input: EntryInput): Promise<void> => {
    const outcome = await track(
      untilCarriedOut(transitions, key, input, {
        clock,
        signal: life.signal,
        warnAfterMs: claimTtlMs + DUE_RETRY_MS,
        retryMs: { busy: INPUT_RETRY_MS, failed: FAILED_RETRY_MS },
        onWaiting: () =>
          logger.warn(
            { key, input: name },
            'an escalation input is still waiting: the store fails or the entry stays claimed; trying until it works',
          ),
      }),
    );
    if (outcome.kind === 'done') remember(key, outcome.entry);
    else
      logger.error({ key, input: name }, 'an escalation input was not carried out before the policy stopped');
    reschedule();
  };

  return {
    async start() {
      stopped = false;
      if (life.signal.aborted) life = new AbortController();
      // A shared store is read by every tick; one nobody else writes only here.
      if (!store.shared) await track(reload());
      await track(tick());
    },
    stop() {
      stopped = true;
      life.abort();
      reschedule();
    },
    ...inputs(settings, clock, change),
    entries: () => [...entries.values()],
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
