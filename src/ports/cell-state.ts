/**
 * What cellops knows about the cell beyond the configuration file: which machine serves each CN role
 * now, the recorded nodekey backups and machine images. Durable (Redis hash in production,
 * src/runbooks/... in-memory in tests and the sandbox fallback).
 */

/** The standby (or replacement) that now serves a CN's role after a failover. */
export interface RoleAssignment {
  /** The CN role as configured, e.g. `cn1`. */
  readonly role: string;
  /** Inventory name of the node now serving it, e.g. `cn1s`; for a launched replacement, its instance. */
  readonly servedBy: string;
  /** Address (IP) of the machine now serving, when it is not an inventory node. */
  readonly address?: string;
  readonly instanceId?: string;
  /**
   * Inventory name of the machine ready to take the role over (recorded by rebuild-standby). Absent: no
   * standby is ready — right after a failover, until one is rebuilt. A role never recorded has the
   * configuration's layout instead (the CN on its own machine, its configured standby).
   */
  readonly standby?: string;
  /** Inventory name of the machine that served the role before this assignment's failover, if any. */
  readonly previous?: string;
  readonly since: number;
  readonly runId: string;
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
