/** The fixed-window rate limit of redis-rate-limiter.ts in one process, time from the Clock. */
import type { Clock } from '../ports/clock.js';
import type { RateLimiter } from '../ports/rate-limiter.js';

export function createMemoryRateLimiter(deps: {
  readonly clock: Clock;
  readonly limit: number;
  readonly windowMs: number;
}): RateLimiter {
  const { clock, limit, windowMs } = deps;
  const windows = new Map<string, { count: number; endsAt: number }>();
  return {
    async take(subject) {
      const now = clock.now();
      for (const [key, window] of windows) if (window.endsAt <= now) windows.delete(key);
      const window = windows.get(subject) ?? { count: 0, endsAt: now + windowMs };
      if (window.count >= limit) return { allowed: false, limit, retryAfterMs: window.endsAt - now };
      windows.set(subject, { count: window.count + 1, endsAt: window.endsAt });
      return { allowed: true };
    },
  };
}
