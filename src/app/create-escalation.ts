/**
 * Escalation wired together: the page dispatcher over the pagers, the clock-driven policy, and what the
 * policy's intents do in Slack (a note in the alert thread, a reminder in the run's thread). The monitor
 * reports its alerts through `alerts`, the engine its approvals through `runs`.
 *
 * The caller chooses the pagers: the real ones (src/adapters/pager, secrets from the environment) in
 * production, a recording one in the sandbox. A pager that fails never stops anything: the alert's (or
 * run's) thread gets a note saying so, and the dispatcher counts it.
 */
import type { Registry } from 'prom-client';
import type { CellopsConfig, EscalationConfig } from '../config/config.js';
import type { Chat, MessageRef } from '../ports/chat.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { Pager, PageEvent } from '../ports/pager.js';
import type { RunObserver } from '../runbooks/types.js';
import type { AlertEscalation } from '../monitor/monitor-hooks.js';
import { createPageDispatcher, type PageDispatcher, type RetrySettings } from '../escalation/dispatcher.js';
import { createEscalationPolicy, type EscalationPolicy } from '../escalation/escalation-policy.js';
import type { EscalationStore } from '../escalation/escalation-store.js';
import type { EscalationIntent, EscalationSettings } from '../escalation/policy.js';
import { createMonitorEscalation } from '../escalation/monitor-escalation.js';
import { createRunEscalation } from '../escalation/run-escalation.js';
import { renderNotice } from '../views/cell.js';

/** What the caller of createCellops gives to turn escalation on. */
export interface EscalationSetup {
  readonly settings: EscalationConfig;
  readonly pagers: readonly Pager[];
  /** Default: in memory. */
  readonly store?: EscalationStore;
  readonly retry?: Partial<RetrySettings>;
  /** Every event a pager accepted (the sandbox's Pager panel). */
  readonly onDelivered?: (target: string, event: PageEvent) => void;
}

export interface Escalation {
  readonly settings: EscalationSettings;
  readonly policy: EscalationPolicy;
  readonly dispatcher: PageDispatcher;
  /** Given to the monitor. */
  readonly alerts: AlertEscalation;
  /** Given to the engine, next to the presenter. */
  readonly runs: RunObserver;
  /** Loads the stored state and arms the policy's timer. */
  start(): Promise<void>;
  /** Disarms the timer and stops delivery (queued events are logged and dropped). */
  stop(): Promise<void>;
}

export interface EscalationDeps {
  readonly setup: EscalationSetup;
  readonly config: Pick<CellopsConfig, 'cell' | 'nodes' | 'slack'>;
  readonly chat: Chat;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The registry `/metrics` serves. */
  readonly registry: Registry;
}

/** Threads remembered for pager failure notes; the oldest are forgotten beyond this. */
const THREADS_KEPT = 1_000;

export function createEscalation(deps: EscalationDeps): Escalation {
  const { setup, config, chat, clock } = deps;
  const logger = deps.logger.child({ component: 'escalation' });
  // Where to say that a page failed: the thread of the alert or run the page is about, by page key.
  const threads = new Map<string, MessageRef>();
  const remember = (key: string, thread: MessageRef | undefined) => {
    if (!thread) return;
    threads.delete(key);
    threads.set(key, thread);
    if (threads.size > THREADS_KEPT) threads.delete(threads.keys().next().value ?? key);
  };
  const say = async (thread: MessageRef | undefined, mrkdwn: string) => {
    if (!thread) return;
    await chat.post({ channel: thread.channel, threadTs: thread.ts, ...renderNotice(mrkdwn) });
  };

  const dispatcher = createPageDispatcher({
    pagers: setup.pagers,
    clock,
    logger,
    registry: deps.registry,
    ...(setup.retry === undefined ? {} : { retry: setup.retry }),
    // Pager errors never carry the secret (src/adapters/pager): the message is safe to show.
    onFailure: (target, event, error) =>
      say(
        threads.get(event.key),
        `:warning: Could not page via ${target} (${event.action}): ${error.message}`,
      ),
    ...(setup.onDelivered === undefined ? {} : { onDelivered: setup.onDelivered }),
  });

  const emit = async (intent: EscalationIntent): Promise<void> => {
    switch (intent.type) {
      case 'page':
        remember(intent.event.key, intent.thread);
        dispatcher.dispatch(intent.event);
        return;
      case 'alert-note':
        await say(intent.thread, intent.text);
        return;
      case 'approval-reminder':
      case 'approval-expiry-notice':
        await say(intent.approval.thread, intent.text);
        return;
    }
  };

  const settings: EscalationSettings = {
    cell: config.cell,
    pageAfterMs: setup.settings.pageAfterMs,
    approvalReminderMs: setup.settings.approvalReminderMs,
    approvalPageMs: setup.settings.approvalPageMs,
    paging: setup.pagers.length > 0,
  };
  const policy = createEscalationPolicy({
    settings,
    clock,
    logger,
    ...(setup.store === undefined ? {} : { store: setup.store }),
    emit,
  });

  return {
    settings,
    policy,
    dispatcher,
    alerts: createMonitorEscalation({
      policy,
      chat,
      roleOf: (node) => config.nodes[node]?.role,
    }),
    runs: createRunEscalation({
      policy,
      approvers: config.slack.approvers,
      chat,
      approvalTimeoutMs: config.slack.approvalTimeoutMs,
    }),
    start: () => policy.start(),
    async stop() {
      policy.stop();
      // What the policy is carrying out still reaches the dispatcher (and its state the store).
      await policy.idle();
      await dispatcher.close();
    },
  };
}
