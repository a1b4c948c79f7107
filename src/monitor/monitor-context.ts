/**
 * What the monitor's parts share: the context createMonitor works out once from its deps, and the state
 * the leader keeps between ticks. Its own file so that the tick (monitor.ts) and the control API
 * (monitor-control.ts) both use it without importing each other.
 */
import type { CellopsConfig } from '../config/config.js';
import type { CellState, CnRoles } from '../ports/cell-state.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { NodeEndpoint } from '../ports/node-rpc.js';
import type { ReconcileDeps } from './alert-reconcile.js';
import type { CheckDue, CheckScheduleDeps } from './check-schedule.js';
import type { ConditionSettings } from './conditions.js';
import type { IncidentStore, MuteRecord } from './incidents.js';
import type { MonitorMetrics } from './metrics.js';
import type { Tracks } from './probe-round.js';
import type { ProbeScheduler } from './probe-scheduler.js';
import type { CheckOutcome, CnProtection } from './protection.js';
import type { Subject } from './subjects.js';
import type { ExpectedDisturbances } from './monitor-hooks.js';
import type { ExpectedState } from './run-expected.js';

/** What createMonitor works out once from its deps; passed to every step of a tick and of the control API. */
export interface MonitorContext {
  readonly config: Pick<CellopsConfig, 'slack' | 'monitor' | 'nodes'>;
  readonly nodeNames: readonly string[];
  readonly cnRoles: readonly string[];
  /** Store keys of the CNs' check incidents, read with the node incidents every tick. */
  readonly checkNames: readonly string[];
  /** Store keys of the CNs' "no standby" incidents, likewise. */
  readonly protectionNames: readonly string[];
  readonly referenceTargets: readonly NodeEndpoint[];
  readonly cellState: CellState;
  readonly store: IncidentStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: MonitorMetrics | undefined;
  readonly settings: ConditionSettings;
  readonly scheduler: ProbeScheduler;
  readonly alerts: ReconcileDeps;
  readonly checks: CheckScheduleDeps;
  readonly replicaId: string;
  readonly leaseTtlMs: number;
  readonly viewSaveIntervalMs: number;
  readonly watchers: readonly { tick(): Promise<void> }[];
  readonly expected: ExpectedDisturbances | undefined;
}

/** What the leader keeps between ticks (the lease holder's memory; dropped when the lease is lost). */
export interface MonitorState {
  leader: boolean;
  subjects: Subject[];
  /** The CN roles and the roles version the subjects were worked out from. */
  roles: ReadonlyMap<string, CnRoles>;
  rolesVersion: number | undefined;
  protection: CnProtection[];
  /** The last readiness check of each CN (checks run on the leader). */
  readonly checkOutcomes: Map<string, CheckOutcome>;
  readonly tracks: Tracks;
  readonly checkDue: CheckDue;
  reference: number | undefined;
  /** When the view was last saved, and the mutes it showed; undefined: save at the next tick. */
  viewSavedAt: number | undefined;
  viewMutes: ReadonlyMap<string, MuteRecord>;
  readonly expected: ExpectedState;
}
