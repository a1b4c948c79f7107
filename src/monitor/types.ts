/**
 * The monitor's public face, used by src/commands (`/cell status`, mute, unmute) and the alert buttons
 * (whose action ids are in src/views/action-ids.ts).
 * Implementation: src/monitor/monitor.ts.
 */

export const NODE_CONDITIONS = [
  'healthy',
  'lagging',
  'stalled',
  'down',
  'isolated',
  'standby-lagging',
  'unknown',
] as const;
export type NodeCondition = (typeof NODE_CONDITIONS)[number];

export const STANDBY_STATES = ['ready', 'none', 'lagging', 'down', 'unknown'] as const;
export type StandbyState = (typeof STANDBY_STATES)[number];

export interface CnProtection {
  readonly cn: string;
  /** The configured failover mode; absent: the CN has no failover section, nothing protects it. */
  readonly mode?: 'standby' | 'snapshot';
  readonly servedBy: string;
  readonly standby?: string;
  /** Standby mode only. */
  readonly standbyState?: StandbyState;
  readonly backup: 'recorded' | 'missing' | 'stale';
  /** Snapshot mode only. */
  readonly image?: 'fresh' | 'missing' | 'stale';
  /** The run that recorded the roles (`config` while the configuration's layout holds) and since when. */
  readonly rolesRunId: string;
  readonly rolesSince: number;
  /** The failed conditions of the last readiness check, in its words. */
  readonly checkFailures?: readonly string[];
}

export interface NodeView {
  readonly node: string;
  readonly role: 'cn' | 'standby' | 'pn';
  /** Who serves this CN role now, when a failover moved it (e.g. cn1 served by cn1s). */
  readonly servedBy?: string;
  /** For a standby: the CN role it stands by for. */
  readonly standbyOf?: string;
  readonly height?: number;
  /** Reference height minus this node's height. */
  readonly lag?: number;
  readonly cnPeers?: number;
  readonly condition: NodeCondition;
  /** Epoch ms since the current condition holds. */
  readonly since?: number;
  readonly lastProbeAt?: number;
  readonly lastError?: string;
  /** Epoch ms until which alerts for this node are muted. */
  readonly mutedUntil?: number;
}

export interface CellView {
  readonly referenceHeight?: number;
  readonly nodes: readonly NodeView[];
  /** Each CN's protection against its next failure, in configuration order. */
  readonly protection?: readonly CnProtection[];
  /** The cell state's roles version the view was worked out from. */
  readonly rolesVersion?: number;
  /** When the view was computed (epoch ms). */
  readonly at: number;
}

export interface MonitorControl {
  status(): Promise<CellView>;
  mute(node: string, durationMs: number, user: string): Promise<{ until: number }>;
  unmute(node: string, user: string): Promise<void>;
  acknowledge(node: string, user: string): Promise<void>;
}
