/**
 * What cellops knows about the cell beyond the configuration file: which machine serves each CN role
 * now, the recorded nodekey backups and machine images. Durable (Redis hash in production,
 * src/runbooks/... in-memory in tests and the sandbox fallback).
 */

/**
 * The machine that served a CN's role before a failover, fenced by it. The monitor keeps watching it
 * (src/monitor/fenced-watch.ts): its instance started again, kcnd running there again, or the CN's node
 * address answering from it are alerts.
 */
export interface FencedMachine {
  /** Inventory name, or `<cn>-replacement` for a machine an earlier failover launched. */
  readonly name: string;
  /** Where SSH and the node's metrics/RPC reach it. */
  readonly address: string;
  readonly instanceId?: string;
  /** The CN's node address, which must answer from nowhere but the role's new server. */
  readonly nodeAddress: string;
}

/** The standby (or replacement) that now serves a CN's role after a failover. */
export interface RoleAssignment {
  /** The CN role as configured, e.g. `cn1`. */
  readonly role: string;
  /** Inventory name of the node now serving it, e.g. `cn1s`; for a launched replacement, its instance. */
  readonly servedBy: string;
  /** Address (IP) of the machine now serving, when it is not an inventory node. */
  readonly address?: string;
  readonly instanceId?: string;
  readonly since: number;
  readonly runId: string;
  /** The machine the failover fenced; watched until the role is assigned again. */
  readonly fenced?: FencedMachine;
}

export interface NodekeyBackupRecord {
  readonly cn: string;
  readonly host: string;
  readonly path: string;
  /** sha256 of the file content; never the key. */
  readonly checksum: string;
  readonly nodeAddress: string;
  readonly nodeId: string;
  readonly at: number;
  readonly runId: string;
}

export interface ImageRecord {
  readonly cn: string;
  readonly imageId: string;
  readonly at: number;
  readonly runId: string;
}

export interface CellState {
  role(role: string): Promise<RoleAssignment | undefined>;
  setRole(assignment: RoleAssignment): Promise<void>;
  nodekeyBackup(cn: string): Promise<NodekeyBackupRecord | undefined>;
  setNodekeyBackup(record: NodekeyBackupRecord): Promise<void>;
  image(cn: string): Promise<ImageRecord | undefined>;
  setImage(record: ImageRecord): Promise<void>;
}
