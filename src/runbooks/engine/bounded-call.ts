/**
 * Runs one piece of step code (run, verify, undo, when) with a timeout and an abort signal, by the Clock
 * port so tests drive time. When the timeout passes or the signal aborts, the code's own signal aborts
 * and the call rejects; the code is then given `graceMs` to settle, so that an undo never starts while
 * the interrupted `run` is still going (step code must honour its signal for this to be short).
 */
import { StepTimeoutError } from '../../errors.js';
import type { Clock } from '../../ports/clock.js';
import type { Logger } from '../../ports/logger.js';

export interface BoundedCallOptions {
  readonly clock: Clock;
  readonly timeoutMs: number;
  /** Aborts the call (run aborted, lock lost, engine closing); the call rejects with its reason. */
  readonly signal: AbortSignal;
  /** How long an interrupted call may take to settle before we move on. */
  readonly graceMs: number;
  /** Text of the StepTimeoutError, e.g. "step fence (Fence the old active) of run r1". */
  readonly what: string;
  readonly logger: Logger;
}

const ignore = (): void => undefined;
/** The reason the timer is cancelled with when the call settles first: one object, not an error per call. */
const SETTLED = Object.freeze({ settled: true });

export async function boundedCall<T>(
  options: BoundedCallOptions,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const { clock, timeoutMs, graceMs, what, logger } = options;
  const own = new AbortController();
  const signal = AbortSignal.any([options.signal, own.signal]);
  const timerStop = new AbortController();
  // The timer stops when the call settles or the signal aborts, through one controller (cheaper than
  // combining signals again on every call, which matters on the per-step hot path).
  const stopTimer = (): void => timerStop.abort(SETTLED);
  signal.addEventListener('abort', stopTimer, { once: true });

  // The executor turns a synchronous throw into a rejection.
  const work = new Promise<T>((resolve) => resolve(fn(signal)));
  const timer = clock.sleep(timeoutMs, timerStop.signal).then(() => {
    throw new StepTimeoutError(`${what} did not finish within ${formatMs(timeoutMs)}`);
  });
  const aborted = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason as Error);
    else signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
  timer.catch(ignore);
  aborted.catch(ignore);

  try {
    return await Promise.race([work, timer, aborted]);
  } catch (error) {
    own.abort(error);
    await settleWithin(work, clock, graceMs, what, logger);
    throw error;
  } finally {
    signal.removeEventListener('abort', stopTimer);
    stopTimer();
  }
}

async function settleWithin(
  work: Promise<unknown>,
  clock: Clock,
  graceMs: number,
  what: string,
  logger: Logger,
): Promise<void> {
  const stop = new AbortController();
  let settled = false;
  const done = work.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  const grace = clock.sleep(graceMs, stop.signal).catch(ignore);
  await Promise.race([done, grace]);
  stop.abort();
  if (!settled) {
    logger.warn({ graceMs }, `${what} ignored its abort signal and is still running; moving on without it`);
  }
}

export function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}
