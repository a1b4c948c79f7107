/**
 * Time as a port: domain code never calls Date.now, setTimeout or setInterval directly, so tests can
 * drive a manual clock (test/fakes/manual-clock.ts) and the real one lives in src/infra/system-clock.ts.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds. Rejects with the signal's reason when `signal` aborts first, so a
   * waiting step or approval stops as soon as its run is aborted or its lock is lost.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}
