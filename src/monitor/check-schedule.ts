/**
 * The schedule of the readiness `check` runbook: the leader starts it for every CN role once per
 * `checkIntervalMs`, the first time one interval after it took the lease. A check that cannot even start
 * counts as a failed check. Its outcome comes back through the monitor's reportCheckFailure/Success.
 */
import { describeError } from '../errors.js';
import type { Logger } from '../ports/logger.js';

export interface CheckScheduleDeps {
  readonly cnRoles: readonly string[];
  /** How often each CN is checked; 0 or less: never. */
  readonly everyMs: number;
  /** Starts the check runbook for a CN; undefined: no checks. */
  readonly startCheck: ((cn: string) => Promise<void>) | undefined;
  /** Opens (or updates) the CN's check incident. */
  readonly reportFailure: (cn: string, message: string) => Promise<void>;
  readonly logger: Logger;
}

/** When each CN's next check is due, by CN; cleared when the lease is lost. */
export type CheckDue = Map<string, number>;

/** Starts the checks that are due at `now` (without waiting for them) and schedules their next run. */
export function runDueChecks(deps: CheckScheduleDeps, due: CheckDue, now: number): void {
  const { everyMs: every, startCheck, logger } = deps;
  if (!startCheck || every <= 0) return;
  for (const cn of deps.cnRoles) {
    const at = due.get(cn) ?? now + every;
    if (!due.has(cn)) due.set(cn, at);
    if (now < at) continue;
    due.set(cn, now + every);
    logger.info({ node: cn }, 'starting the scheduled readiness check');
    startCheck(cn).catch((error: unknown) =>
      deps
        .reportFailure(cn, `the readiness check could not start: ${describeError(error)}`)
        .catch((e: unknown) => logger.error({ node: cn, err: e }, 'check report failed')),
    );
  }
}
