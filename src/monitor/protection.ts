/**
 * How well each CN is protected against its next failure (README §After a failover: a protected cell again),
 * worked out by the leader every round from the roles, the standby's probes, the recorded backup and image,
 * and the last readiness check:
 * - standby mode: standby ready / no standby / standby lagging / standby down / not yet known;
 * - the nodekey backup: recorded / missing / stale (the last check found it differs);
 * - snapshot mode: the machine image fresh / missing / stale (older than the roles — a failover replaced
 *   the instance it was taken of — or the last check found the configuration changed since).
 * Pure functions: no I/O, no clock.
 */
import type { CnRoles, ImageRecord, NodekeyBackupRecord } from '../ports/cell-state.js';
import type { CnProtection, NodeCondition, StandbyState } from './types.js';

export { STANDBY_STATES, type CnProtection, type StandbyState } from './types.js';

/** The last readiness check of a CN as the monitor keeps it: the ids of its failed steps and their words. */
export interface CheckOutcome {
  readonly failedSteps: readonly string[];
  readonly failures: readonly string[];
}

export interface ProtectionInput {
  readonly roles: CnRoles;
  readonly mode: 'standby' | 'snapshot' | undefined;
  /** Condition of the standby's probes, when it is watched. */
  readonly standbyCondition: NodeCondition | undefined;
  readonly backup: NodekeyBackupRecord | undefined;
  readonly image: ImageRecord | undefined;
  readonly check: CheckOutcome | undefined;
}

/** The check steps about the standby (src/runbooks/check.ts): their failure means "not ready". */
export const STANDBY_CHECK_STEPS: readonly string[] = [
  'standby-own-key',
  'standby-static-nodes',
  'standby-in-sync',
];

export function protectionOf(input: ProtectionInput): CnProtection {
  const { roles, mode, check } = input;
  const failed = new Set(check?.failedSteps ?? []);
  const backup = !input.backup ? 'missing' : failed.has('backup-matches') ? 'stale' : 'recorded';
  return {
    cn: roles.cn,
    ...(mode === undefined ? {} : { mode }),
    servedBy: roles.servedBy,
    ...(roles.standby === undefined ? {} : { standby: roles.standby }),
    ...(mode === 'standby' ? { standbyState: standbyState(roles, input.standbyCondition) } : {}),
    backup,
    ...(mode === 'snapshot' ? { image: imageState(roles, input.image, failed) } : {}),
    rolesRunId: roles.runId,
    rolesSince: roles.since,
    ...(check && check.failures.length > 0 ? { checkFailures: check.failures } : {}),
  };
}

function standbyState(roles: CnRoles, condition: NodeCondition | undefined): StandbyState {
  if (roles.standby === undefined || roles.standby === roles.servedBy) return 'none';
  switch (condition) {
    case 'healthy':
      return 'ready';
    case 'lagging':
    case 'standby-lagging':
      return 'lagging';
    case 'down':
    case 'stalled':
    case 'isolated':
      return 'down';
    default:
      return 'unknown';
  }
}

function imageState(
  roles: CnRoles,
  image: ImageRecord | undefined,
  failed: ReadonlySet<string>,
): 'fresh' | 'missing' | 'stale' {
  if (!image) return 'missing';
  // An image taken before the roles last changed is of a machine that no longer serves the CN.
  if (roles.version > 0 && image.at < roles.since) return 'stale';
  return failed.has('image-fresh') ? 'stale' : 'fresh';
}

/** Whether the CN's protection calls for the "no standby" alert: a standby-mode CN with none recorded. */
export function lacksStandby(p: CnProtection): boolean {
  return p.standbyState === 'none';
}

/** One line an operator reads: "standby cn1s ready · backup recorded". */
export function describeProtection(p: CnProtection): string {
  const parts: string[] = [];
  if (p.mode === undefined) return 'not protected: no failover configured';
  if (p.mode === 'standby') {
    const s = p.standby;
    const words: Record<StandbyState, string> = {
      ready: `standby ${s ?? ''} ready`,
      none: 'no standby',
      lagging: `standby ${s ?? ''} lagging`,
      down: `standby ${s ?? ''} down`,
      unknown: `standby ${s ?? ''} not probed yet`,
    };
    parts.push(words[p.standbyState ?? 'unknown']);
  }
  parts.push(p.backup === 'recorded' ? 'backup recorded' : `backup ${p.backup}`);
  if (p.image !== undefined) parts.push(`image ${p.image}`);
  return parts.join(' · ');
}

/** Whether nothing is amiss with the CN's protection. */
export function isProtected(p: CnProtection): boolean {
  if (p.mode === undefined) return false;
  if (p.mode === 'standby' && p.standbyState !== 'ready') return false;
  if (p.mode === 'snapshot' && p.image !== 'fresh') return false;
  return p.backup === 'recorded';
}
