/**
 * One NodeRpc call's time limit. HTTP requests get the time left and the caller's signal (no AbortSignal is
 * made for them: a health probe of every node every interval should not cost two signals each); the shell,
 * which takes a signal, gets one made on first use.
 */
import type { ProbeOptions } from '../../ports/node-rpc.js';

export class Deadline {
  private readonly endsAt: number;
  private combined: AbortSignal | undefined;

  constructor(
    readonly timeoutMs: number,
    readonly caller: AbortSignal | undefined,
  ) {
    this.endsAt = performance.now() + timeoutMs;
  }

  remainingMs(): number {
    return Math.max(0, this.endsAt - performance.now());
  }

  expired(): boolean {
    return performance.now() >= this.endsAt || (this.combined?.aborted === true && !this.caller?.aborted);
  }

  /** Limits for one HTTP request: the time left and the caller's signal. */
  http(): { timeoutMs: number; signal?: AbortSignal } {
    return { timeoutMs: this.remainingMs(), ...(this.caller ? { signal: this.caller } : {}) };
  }

  signal(): AbortSignal {
    if (!this.combined) {
      const timeout = AbortSignal.timeout(Math.ceil(this.remainingMs()));
      this.combined = this.caller ? AbortSignal.any([timeout, this.caller]) : timeout;
    }
    return this.combined;
  }
}

export function deadline(options: ProbeOptions): Deadline {
  return new Deadline(options.timeoutMs, options.signal);
}
