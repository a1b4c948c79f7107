/**
 * A per-subject rate limit (e.g. dry runs per user per minute). Redis in production so that every
 * replica counts together (src/infra/redis-rate-limiter.ts); in memory for the sandbox and unit tests.
 */
export type RateVerdict =
  | { readonly allowed: true }
  /** Over the limit: nothing is counted; `retryAfterMs` until the window ends. */
  | { readonly allowed: false; readonly limit: number; readonly retryAfterMs: number };

export interface RateLimiter {
  /** Counts one use by `subject` when it is within the limit. */
  take(subject: string): Promise<RateVerdict>;
}
