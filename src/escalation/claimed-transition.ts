/**
 * One transition of one escalation entry, carried out under the store's claim on it (escalation-store.ts):
 * claim the entry (which reads it as it is now, whatever another replica made of it), work out the
 * transition from that, hand its intents to `emit`, save the next state and let go.
 *
 * Why this makes each page, reminder and note go out once with several replicas: a replica acts only on
 * the state it read under the claim, and the next holder can claim only after the state was saved (or the
 * claim lapsed), so it finds the transition already done and does nothing.
 *
 * Why intents go out before the save: a holder that dies in between leaves its claim to lapse after the
 * claim's time, and the next holder finds the old state and carries the transition out again. A crash can
 * cost a duplicate (PagerDuty and Opsgenie de-duplicate it by key), never a lost page.
 *
 * Within one process the inputs for one entry run one after the other, so a process never finds its own
 * claim in the way.
 */
import { describeError } from '../errors.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { EntryClaim, EscalationStore } from './escalation-store.js';
import type { EscalationEntry, EscalationIntent, Transition } from './policy.js';

/** Works out the transition from the entry as stored now; undefined: nothing to do. */
export type EntryInput = (current: EscalationEntry | undefined) => Transition | undefined;

export type TransitionOutcome =
  /** Carried out (or nothing to do); `entry` is the entry's state now. */
  | { readonly kind: 'done'; readonly entry: EscalationEntry | undefined }
  /** Another replica holds the claim: try again shortly. */
  | { readonly kind: 'busy' }
  /** The store failed (logged): try again later. */
  | { readonly kind: 'failed' };

export interface ClaimedTransitionDeps {
  readonly store: EscalationStore;
  readonly logger: Logger;
  /** How long a claim outlives a holder that died holding it. */
  readonly claimTtlMs: number;
  /** Carries out an intent; must not throw. */
  readonly emit: (intent: EscalationIntent) => void;
}

export interface ClaimedTransitions {
  /** One attempt at `input` on entry `key`, after the inputs for `key` this process already started. */
  run(key: string, input: EntryInput): Promise<TransitionOutcome>;
}

const BUSY: TransitionOutcome = { kind: 'busy' };
const FAILED: TransitionOutcome = { kind: 'failed' };

const same = (a: EscalationEntry | undefined, b: EscalationEntry | undefined) =>
  JSON.stringify(a) === JSON.stringify(b);

export function createClaimedTransitions(deps: ClaimedTransitionDeps): ClaimedTransitions {
  const { store, logger } = deps;
  const queues = new Map<string, Promise<unknown>>();

  const letGo = async (key: string, claim: EntryClaim) => {
    try {
      await claim.release();
    } catch (error) {
      // The claim lapses by itself; until then other replicas wait a little longer.
      logger.warn({ key, err: describeError(error) }, 'could not release an escalation claim');
    }
  };

  const attempt = async (key: string, input: EntryInput): Promise<TransitionOutcome> => {
    let claim: EntryClaim | undefined;
    try {
      claim = await store.claim(key, deps.claimTtlMs);
    } catch (error) {
      logger.error({ key, err: describeError(error) }, 'could not claim the escalation entry');
      return FAILED;
    }
    if (!claim) return BUSY;
    const current = claim.entry;
    let transition: Transition | undefined;
    try {
      transition = input(current);
    } catch (error) {
      await letGo(key, claim);
      throw error;
    }
    if (!transition || (transition.intents.length === 0 && same(current, transition.entry))) {
      await letGo(key, claim);
      return { kind: 'done', entry: current };
    }
    for (const intent of transition.intents) deps.emit(intent);
    try {
      if (!(await claim.commit(transition.entry))) {
        logger.warn(
          { key },
          'an escalation claim lapsed before the new state was saved; another replica may repeat the transition',
        );
      }
    } catch (error) {
      // Sent but not saved: whoever claims the entry next repeats it (a duplicate, not a lost page).
      logger.error({ key, err: describeError(error) }, 'could not save the escalation state');
    }
    return { kind: 'done', entry: transition.entry };
  };

  return {
    run(key, input) {
      const previous = queues.get(key) ?? Promise.resolve();
      const next = previous.then(() => attempt(key, input));
      const tail = next.then(
        () => undefined,
        () => undefined,
      );
      queues.set(key, tail);
      void tail.then(() => {
        if (queues.get(key) === tail) queues.delete(key);
      });
      return next;
    },
  };
}

export interface UntilCarriedOutOptions {
  readonly clock: Pick<Clock, 'now' | 'sleep'>;
  /** Aborted when the policy stops: the input gives up. */
  readonly signal: AbortSignal;
  /** After this long, `onWaiting` is called once (the input keeps trying). */
  readonly warnAfterMs: number;
  /** Pause before the next attempt: after another replica's claim, and after a store failure. */
  readonly retryMs: { readonly busy: number; readonly failed: number };
  readonly onWaiting: () => void;
}

/**
 * Runs `input` on entry `key` until it is carried out, or until `signal` aborts (then the last outcome,
 * never 'done'). An input is never dropped on a timer: a lost recovery or acknowledgement would page
 * someone for what is already over.
 */
export async function untilCarriedOut(
  transitions: ClaimedTransitions,
  key: string,
  input: EntryInput,
  options: UntilCarriedOutOptions,
): Promise<TransitionOutcome> {
  const { clock, signal } = options;
  const warnAt = clock.now() + options.warnAfterMs;
  let warned = false;
  for (;;) {
    const outcome = await transitions.run(key, input);
    if (outcome.kind === 'done' || signal.aborted) return outcome;
    if (!warned && clock.now() >= warnAt) {
      warned = true;
      options.onWaiting();
    }
    try {
      await clock.sleep(outcome.kind === 'busy' ? options.retryMs.busy : options.retryMs.failed, signal);
    } catch {
      return outcome;
    }
  }
}
