/**
 * Delivers page events to every configured pager, each target on its own queue and worker, so a pager
 * that is down or slow never delays another. `dispatch` never throws and never waits: outcomes come back
 * through `onDelivered` / `onFailure` (the caller posts a note in the alert thread) and the metrics.
 *
 * Per target, events go out one at a time in the order they were dispatched, so an acknowledge never
 * overtakes its trigger. A failed attempt is retried with exponential backoff and jitter (or after the
 * pager's Retry-After), up to `attempts` tries; a rejected event (400, 401…) is not retried.
 *
 * The queue is bounded (`queueLimit` per target). When it is full the oldest queued *trigger* is dropped
 * to make room (counted as outcome "dropped" and reported through onFailure): acknowledgements and
 * resolutions are never dropped in favour of a trigger, because a page left open wakes people for
 * nothing. Only when the queue holds nothing but acknowledgements and resolutions is a new trigger refused,
 * or the oldest of them dropped for a new acknowledge or resolve.
 */
import type { Registry } from 'prom-client';
import { PagerError } from './pager-error.js';
import { CellopsError, describeError } from '../errors.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { Pager, PageEvent } from '../ports/pager.js';
import { createPageMetrics, type PageMetrics } from './page-metrics.js';

export interface RetrySettings {
  /** Tries per event, the first included. Default 6. */
  readonly attempts: number;
  /** Delay before the first retry; doubled each time. Default 1 s. */
  readonly baseMs: number;
  /** Longest backoff delay. Default 60 s. */
  readonly maxMs: number;
  /** A Retry-After longer than this is shortened to it. Default 5 min. */
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetrySettings = {
  attempts: 6,
  baseMs: 1_000,
  maxMs: 60_000,
  maxRetryAfterMs: 300_000,
};

export interface DispatcherDeps {
  readonly pagers: readonly Pager[];
  readonly clock: Clock;
  readonly logger: Logger;
  /** The prom-client registry `/metrics` serves. */
  readonly registry: Registry;
  readonly retry?: Partial<RetrySettings>;
  /** Events waiting per target, the one being sent included. Default 100, at least 2. */
  readonly queueLimit?: number;
  /** Called once per event a target finally could not take (after retries, or dropped). Never throws into us. */
  readonly onFailure?: (target: string, event: PageEvent, error: Error) => void | Promise<void>;
  /** Called once per event a target accepted (the sandbox's Pager panel shows them). */
  readonly onDelivered?: (target: string, event: PageEvent) => void | Promise<void>;
  /** Jitter source in [0, 1). Default Math.random. */
  readonly random?: () => number;
}

export interface PageDispatcher {
  /** Queues the event for every target and returns at once. Never throws. */
  dispatch(event: PageEvent): void;
  /** Events waiting for `target` (the one being sent included). */
  depth(target: string): number;
  /** Resolves when every queue is empty and nothing is being sent. */
  idle(): Promise<void>;
  /** Stops: waiting retries are abandoned, queued events dropped (and logged). Dispatches after it are ignored. */
  close(): Promise<void>;
}

/** Full jitter on the upper half: the delay is between 50 % and 100 % of the exponential step. */
export function backoffMs(retry: RetrySettings, attempt: number, random: () => number): number {
  const step = Math.min(retry.maxMs, retry.baseMs * 2 ** (attempt - 1));
  return Math.round(step * (0.5 + 0.5 * random()));
}

interface TargetQueue {
  readonly pager: Pager;
  readonly items: PageEvent[];
  /** The loop's promise while it runs. */
  running: Promise<void> | undefined;
}

/** Which queued event gives way to `incoming` on a full queue; -1: `incoming` itself is refused. */
function victimIndex(items: readonly PageEvent[], incoming: PageEvent, inFlight: boolean): number {
  // The first item is being sent while the loop runs: it cannot be taken back.
  const from = inFlight ? 1 : 0;
  const trigger = items.findIndex((e, i) => i >= from && e.action === 'trigger');
  if (trigger >= 0) return trigger;
  if (incoming.action === 'trigger') return -1;
  return items.length > from ? from : -1;
}

export function createPageDispatcher(deps: DispatcherDeps): PageDispatcher {
  const retry: RetrySettings = { ...DEFAULT_RETRY, ...deps.retry };
  // Two at least: one being sent and one waiting, so an acknowledge or resolve always finds room.
  const queueLimit = Math.max(2, deps.queueLimit ?? 100);
  const random = deps.random ?? Math.random;
  const metrics: PageMetrics = createPageMetrics(deps.registry);
  const logger = deps.logger.child({ component: 'pager' });
  const stop = new AbortController();
  const queues = new Map<string, TargetQueue>();
  for (const pager of deps.pagers) {
    queues.set(pager.name, { pager, items: [], running: undefined });
    metrics.setQueueDepth(pager.name, 0);
  }

  const logFields = (target: string, event: PageEvent) => ({ target, action: event.action, key: event.key });

  const callback = (what: string, run: () => void | Promise<void>): void => {
    try {
      Promise.resolve(run()).catch((error: unknown) =>
        logger.error({ err: describeError(error) }, `the ${what} callback failed`),
      );
    } catch (error) {
      logger.error({ err: describeError(error) }, `the ${what} callback failed`);
    }
  };

  const fail = (target: string, event: PageEvent, error: Error, outcome: 'failed' | 'dropped'): void => {
    metrics.count(target, event.action, outcome);
    logger.warn(
      { ...logFields(target, event), outcome, code: (error as Partial<CellopsError>).code },
      `page ${outcome}: ${error.message}`,
    );
    const onFailure = deps.onFailure;
    if (onFailure) callback('onFailure', () => onFailure(target, event, error));
  };

  /** Sends one event with retries; resolves whatever happens. */
  const deliver = async (queue: TargetQueue, event: PageEvent): Promise<void> => {
    const target = queue.pager.name;
    for (let attempt = 1; ; attempt++) {
      try {
        await queue.pager.send(event, stop.signal);
        metrics.count(target, event.action, 'delivered');
        logger.info({ ...logFields(target, event), attempt }, 'page delivered');
        const onDelivered = deps.onDelivered;
        if (onDelivered) callback('onDelivered', () => onDelivered(target, event));
        return;
      } catch (thrown) {
        if (stop.signal.aborted) return;
        const error = thrown instanceof Error ? thrown : new Error(describeError(thrown));
        const retryable = error instanceof CellopsError && error.retryable;
        if (!retryable || attempt >= retry.attempts) {
          fail(target, event, error, 'failed');
          return;
        }
        const asked = error instanceof PagerError ? error.retryAfterMs : undefined;
        const delayMs =
          asked === undefined ? backoffMs(retry, attempt, random) : Math.min(asked, retry.maxRetryAfterMs);
        metrics.retried(target);
        logger.info(
          { ...logFields(target, event), attempt, delayMs, err: error.message },
          'page not delivered; retrying',
        );
        try {
          await deps.clock.sleep(delayMs, stop.signal);
        } catch {
          return;
        }
      }
    }
  };

  const run = async (queue: TargetQueue): Promise<void> => {
    const target = queue.pager.name;
    for (let event = queue.items[0]; event !== undefined && !stop.signal.aborted; event = queue.items[0]) {
      await deliver(queue, event);
      queue.items.shift();
      metrics.setQueueDepth(target, queue.items.length);
    }
    queue.running = undefined;
  };

  const enqueue = (queue: TargetQueue, event: PageEvent): void => {
    const target = queue.pager.name;
    if (queue.items.length >= queueLimit) {
      const victim = victimIndex(queue.items, event, queue.running !== undefined);
      const dropped = victim < 0 ? event : queue.items.splice(victim, 1)[0];
      if (dropped) {
        const why = `${target}: the page queue is full (${queueLimit} waiting); this ${dropped.action} for ${dropped.key} was dropped`;
        fail(target, dropped, new PagerError('pager_queue_full', target, why), 'dropped');
      }
      if (victim < 0) return;
    }
    queue.items.push(event);
    metrics.setQueueDepth(target, queue.items.length);
    queue.running ??= run(queue);
  };

  return {
    dispatch(event) {
      if (stop.signal.aborted) {
        logger.warn(logFields('*', event), 'page dispatched after close; ignored');
        return;
      }
      for (const queue of queues.values()) {
        try {
          enqueue(queue, event);
        } catch (error) {
          logger.error(
            { ...logFields(queue.pager.name, event), err: describeError(error) },
            'could not queue the page',
          );
        }
      }
    },
    depth: (target) => queues.get(target)?.items.length ?? 0,
    async idle() {
      for (;;) {
        const running = [...queues.values()].map((q) => q.running).filter((p) => p !== undefined);
        if (running.length === 0) return;
        await Promise.all(running);
      }
    },
    async close() {
      stop.abort(new Error('the page dispatcher is closing'));
      await this.idle();
      for (const queue of queues.values()) {
        if (queue.items.length > 0) {
          logger.warn(
            { target: queue.pager.name, dropped: queue.items.length },
            'pages not delivered before shutdown',
          );
        }
        queue.items.length = 0;
        metrics.setQueueDepth(queue.pager.name, 0);
      }
    },
  };
}
