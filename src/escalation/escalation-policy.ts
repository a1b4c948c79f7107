/**
 * Drives the pure rules of policy.ts with the Clock port: one timer, set for the earliest entry that
 * needs attention, and a store so that a restart does not forget what is due (escalation-store.ts).
 *
 * Intents are handed to `emit` before the new state is saved: after a crash in between, a page may be
 * sent twice (PagerDuty and Opsgenie de-duplicate it by key) rather than not at all.
 *
 * With several replicas, run one policy where the incidents are handled (the monitor's leader) and feed
 * it approval events from the engine's observer; the store is what lets a new leader carry on.
 */
import { describeError } from '../errors.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
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
  type Transition,
} from './policy.js';

export interface EscalationPolicyDeps {
  readonly settings: EscalationSettings;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Default: in memory (nothing survives a restart). */
  readonly store?: EscalationStore;
  /** Carries out an intent: dispatch a page, post a note or reminder in a thread. Errors are logged. */
  readonly emit: (intent: EscalationIntent) => void | Promise<void>;
}

export interface EscalationPolicy {
  /** Loads the stored entries and arms the timer; anything overdue is carried out at once. */
  start(): Promise<void>;
  /** Disarms the timer. Entries stay in the store. */
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
  /** What the policy is waiting for, for the sandbox and tests. */
  entries(): readonly EscalationEntry[];
}

export function createEscalationPolicy(deps: EscalationPolicyDeps): EscalationPolicy {
  const { settings, clock } = deps;
  const logger = deps.logger.child({ component: 'escalation' });
  const store = deps.store ?? createMemoryEscalationStore();
  const entries = new Map<string, EscalationEntry>();
  let timer: AbortController | undefined;
  let stopped = false;

  const emit = (intent: EscalationIntent): void => {
    const fail = (error: unknown) =>
      logger.error({ intent: intent.type, err: describeError(error) }, 'could not carry out an escalation');
    try {
      Promise.resolve(deps.emit(intent)).catch(fail);
    } catch (error) {
      fail(error);
    }
  };

  const apply = async (key: string, transition: Transition): Promise<void> => {
    const { entry } = transition;
    if (entry) entries.set(key, entry);
    else entries.delete(key);
    for (const intent of transition.intents) emit(intent);
    try {
      if (entry) await store.put(entry);
      else await store.remove(key);
    } catch (error) {
      logger.error({ key, err: describeError(error) }, 'could not save the escalation state');
    }
  };

  const tick = async (): Promise<void> => {
    const now = clock.now();
    for (const [key, entry] of [...entries]) {
      const due = entryDueAt(settings, entry);
      if (due !== undefined && due <= now) await apply(key, entryDue(settings, entry, now));
    }
    reschedule();
  };

  function reschedule(): void {
    timer?.abort();
    timer = undefined;
    if (stopped) return;
    let next: number | undefined;
    for (const entry of entries.values()) {
      const due = entryDueAt(settings, entry);
      if (due !== undefined && (next === undefined || due < next)) next = due;
    }
    if (next === undefined) return;
    const armed = new AbortController();
    timer = armed;
    clock.sleep(Math.max(0, next - clock.now()), armed.signal).then(
      () => {
        if (timer !== armed) return;
        timer = undefined;
        tick().catch((error: unknown) =>
          logger.error({ err: describeError(error) }, 'escalation timer failed'),
        );
      },
      // Aborted: a newer timer replaced this one.
      () => undefined,
    );
  }

  const alertKey = (id: string) => `alert:${id}`;
  const approvalKey = (id: string) => `approval:${id}`;

  const change = async (key: string, transition: Transition | undefined): Promise<void> => {
    if (transition === undefined) return;
    await apply(key, transition);
    reschedule();
  };

  const alert = (id: string) => {
    const entry = entries.get(alertKey(id));
    return entry?.kind === 'alert' ? entry : undefined;
  };
  const approval = (id: string) => {
    const entry = entries.get(approvalKey(id));
    return entry?.kind === 'approval' ? entry : undefined;
  };

  return {
    async start() {
      stopped = false;
      try {
        for (const entry of await store.list()) entries.set(entryKey(entry), entry);
      } catch (error) {
        logger.error({ err: describeError(error) }, 'could not load the escalation state; starting empty');
      }
      await tick();
    },
    stop() {
      stopped = true;
      reschedule();
    },
    alertOpened: (facts, openedAt) =>
      change(
        alertKey(facts.id),
        alertOpened(settings, entries.get(alertKey(facts.id)), facts, openedAt ?? clock.now(), clock.now()),
      ),
    async alertChanged(facts) {
      const current = alert(facts.id);
      // Not known (e.g. a restart with the in-memory store): start counting now rather than never page.
      const transition = current
        ? alertChanged(settings, current, facts, clock.now())
        : alertOpened(settings, undefined, facts, clock.now(), clock.now());
      await change(alertKey(facts.id), transition);
    },
    async alertAcknowledged(id, by) {
      const current = alert(id);
      await change(alertKey(id), current && alertAcknowledged(settings, current, by, clock.now()));
    },
    async alertResolved(id) {
      const current = alert(id);
      await change(alertKey(id), current && alertResolved(settings, current, clock.now()));
    },
    approvalRequested: (facts) => change(approvalKey(facts.id), approvalRequested(facts)),
    async approvalEnded(id, ending) {
      const current = approval(id);
      await change(approvalKey(id), current && approvalEnded(settings, current, ending, clock.now()));
    },
    entries: () => [...entries.values()],
  };
}
