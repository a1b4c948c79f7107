import { setTimeout as delay } from 'node:timers/promises';
import type { Clock } from '../ports/clock.js';

/** The real clock. */
export function createSystemClock(): Clock {
  return {
    now: () => Date.now(),
    sleep: async (ms, signal) => {
      await delay(Math.max(0, ms), undefined, signal ? { signal } : undefined);
    },
  };
}
