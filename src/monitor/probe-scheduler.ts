/**
 * One probe round: asks every target for its health through the NodeRpc port with bounded concurrency
 * and a per-probe timeout, and never lets probes pile up:
 * - a target whose previous probe is still running is skipped (it is not probed twice at once);
 * - a probe that has not found a free slot within `startWithinMs` of the round's start is skipped rather
 *   than started late, so a round lasts at most `startWithinMs + timeoutMs`. With the defaults
 *   (both half the interval) a round never outlasts the interval.
 * A skipped target is not a failure: only a probe that ran and failed or timed out counts towards `down`.
 */
import { describeError } from '../errors.js';
import type { Clock } from '../ports/clock.js';
import type { NodeEndpoint, NodeHealth, NodeRpc } from '../ports/node-rpc.js';

export type ProbeOutcome =
  | {
      readonly kind: 'ok';
      readonly target: string;
      readonly at: number;
      readonly latencyMs: number;
      readonly health: NodeHealth;
    }
  | {
      readonly kind: 'failed';
      readonly target: string;
      readonly at: number;
      readonly latencyMs: number;
      readonly error: string;
    }
  | { readonly kind: 'skipped'; readonly target: string; readonly reason: 'in-flight' | 'no-slot' };

export interface ProbeSchedulerOptions {
  readonly rpc: NodeRpc;
  readonly clock: Clock;
  /** Probes running at once. Default 32. */
  readonly concurrency?: number;
  /** A probe that takes longer fails with a timeout. Must be shorter than the interval. */
  readonly timeoutMs: number;
  /** A probe not started within this long after the round began is skipped. Default: timeoutMs. */
  readonly startWithinMs?: number;
}

export interface ProbeScheduler {
  /** Probes every target once (except those skipped) and resolves with one outcome per target. */
  round(targets: readonly NodeEndpoint[]): Promise<ProbeOutcome[]>;
  /** Names of targets whose probe is running now. */
  inFlight(): ReadonlySet<string>;
  /** Aborts every running probe (on shutdown). */
  abortAll(): void;
}

export class ProbeTimeoutError extends Error {
  constructor(target: string, timeoutMs: number) {
    super(`probe of ${target} timed out after ${timeoutMs}ms`);
    this.name = 'ProbeTimeoutError';
  }
}

/** A running probe's time limit, in the deadline queue. */
interface Deadline {
  readonly at: number;
  /** Runs when the limit passes; cleared when the probe ends first, so nothing of it stays reachable. */
  expire: (() => void) | undefined;
}

export function createProbeScheduler(options: ProbeSchedulerOptions): ProbeScheduler {
  const { rpc, clock, timeoutMs } = options;
  const concurrency = Math.max(1, options.concurrency ?? 32);
  const startWithinMs = options.startWithinMs ?? timeoutMs;
  const running = new Map<string, AbortController>();

  // Time limits of running probes, in the order they started. Every probe has the same timeout, so this
  // is also the order they expire in, and one sleep at a time (until the earliest) serves them all: a
  // sleep, an AbortController and an abort per probe cost more than the probe itself at 1,000 nodes.
  const deadlines: Deadline[] = [];
  let head = 0;
  let open = 0;
  let watching = false;
  let wake: AbortController | undefined;

  async function watchDeadlines(): Promise<void> {
    for (;;) {
      while (head < deadlines.length && deadlines[head]?.expire === undefined) head++;
      const first = deadlines[head];
      if (!first) break;
      const waitMs = first.at - clock.now();
      if (waitMs > 0) {
        if (!wake || wake.signal.aborted) wake = new AbortController();
        try {
          await clock.sleep(waitMs, wake.signal);
        } catch {
          // Woken early: every probe ended; the loop finds the queue settled.
        }
      }
      const now = clock.now();
      for (let next = deadlines[head]; next && (!next.expire || next.at <= now); next = deadlines[head]) {
        head++;
        next.expire?.();
      }
      if (head > 1_024 && head * 2 > deadlines.length) {
        deadlines.splice(0, head);
        head = 0;
      }
    }
    deadlines.length = 0;
    head = 0;
    watching = false;
  }

  /** Queues a time limit: `expire` runs when it passes, unless `settle(deadline)` came first. */
  function limit(at: number, expire: () => void): Deadline {
    const deadline: Deadline = { at, expire };
    deadlines.push(deadline);
    open++;
    if (!watching) {
      watching = true;
      void watchDeadlines();
    }
    return deadline;
  }

  function settle(deadline: Deadline): void {
    if (!deadline.expire) return;
    deadline.expire = undefined;
    // Nothing left to time: end the pending sleep so that no timer outlives the probes.
    if (--open === 0) wake?.abort();
  }

  function probeOne(target: NodeEndpoint): Promise<ProbeOutcome> {
    return new Promise<ProbeOutcome>((resolve) => {
      const controller = new AbortController();
      running.set(target.name, controller);
      const at = clock.now();
      // Latency is a measurement for /metrics, not a time the logic depends on: a monotonic timer, not Clock.
      const started = performance.now();
      const failed = (error: unknown): ProbeOutcome => ({
        kind: 'failed',
        target: target.name,
        at,
        latencyMs: performance.now() - started,
        error: describeError(error),
      });
      const end = (outcome: ProbeOutcome) => {
        if (!deadline.expire) return; // already ended by the time limit
        settle(deadline);
        running.delete(target.name);
        resolve(outcome);
      };
      const deadline = limit(at + timeoutMs, () => {
        const outcome = failed(new ProbeTimeoutError(target.name, timeoutMs));
        settle(deadline);
        // Tells an adapter still working on the probe to give up. A probe that ended by itself is not
        // aborted: an abort builds an exception and runs every listener, for nothing.
        controller.abort();
        running.delete(target.name);
        resolve(outcome);
      });
      let answer: Promise<NodeHealth>;
      try {
        answer = rpc.health(target, { timeoutMs, signal: controller.signal });
      } catch (error) {
        // An adapter that throws instead of rejecting fails its probe, not the round.
        answer = Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
      answer.then(
        (health) =>
          end({ kind: 'ok', target: target.name, at, latencyMs: performance.now() - started, health }),
        (error: unknown) => end(failed(error)),
      );
    });
  }

  return {
    async round(targets) {
      const roundStart = clock.now();
      const outcomes: ProbeOutcome[] = new Array<ProbeOutcome>(targets.length);
      const queue: number[] = [];
      targets.forEach((target, index) => {
        if (running.has(target.name)) {
          outcomes[index] = { kind: 'skipped', target: target.name, reason: 'in-flight' };
        } else queue.push(index);
      });
      let next = 0;
      const worker = async (): Promise<void> => {
        for (;;) {
          const index = queue[next++];
          if (index === undefined) return;
          const target = targets[index] as NodeEndpoint;
          if (clock.now() - roundStart > startWithinMs || running.has(target.name)) {
            outcomes[index] = { kind: 'skipped', target: target.name, reason: 'no-slot' };
            continue;
          }
          outcomes[index] = await probeOne(target);
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
      return outcomes;
    },
    inFlight: () => new Set(running.keys()),
    abortAll() {
      for (const controller of running.values()) controller.abort();
    },
  };
}
