/**
 * What cellops knows about the cell beyond the configuration file: which machine serves each CN role now
 * and which one stands by for it, with the history of every change (who, when, which run, why); the
 * recorded nodekey backups and machine images. Durable: a Redis hash and list in production
 * (src/infra/redis-cell-state.ts), process memory in unit tests and the sandbox fallback.
 *
 * Roles are data. Until a change is recorded the configuration's layout holds: the CN's own machine serves
 * it and `failover.standby` stands by (configuredRoles). Every later change goes through recordRoles.
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
  /** Its pinned SSH host keys when it was a launched replacement (see CnRoles.hostKeys). */
  readonly hostKeys?: readonly string[];
  /** The CN's node address, which must answer from nowhere but the role's new server. */
  readonly nodeAddress: string;
}

/** What a CN's roles and a change of them both say: who serves, who stands by, who decided and why. */
export interface RoleFields {
  /** The CN role as configured, e.g. `cn1`. */
  readonly cn: string;
  /** Inventory name of the machine serving the role; for a launched replacement, its instance id. */
  readonly servedBy: string;
  /** Address (IP) of the serving machine when it is not an inventory node. */
  readonly address?: string;
  readonly instanceId?: string;
  /**
   * The SSH host keys (`<type> <base64>`) pinned for the serving machine when it was launched (read from
   * its console by a snapshot failover): every later SSH command to it pins them, known_hosts or not.
   */
  readonly hostKeys?: readonly string[];
  /** Inventory name of the machine ready to take the role over; absent: the CN has no standby. */
  readonly standby?: string;
  /** The machine the last failover fenced; watched until the role is assigned again. */
  readonly fenced?: FencedMachine;
  /** The run that recorded them; `config` while the configuration's layout holds. */
  readonly runId: string;
  /** Slack user id of who asked for the change, or `cellops` for a change no person asked for. */
  readonly by: string;
  /** Why, in words: "failover", "rebuild-standby", "set by hand: …". */
  readonly reason: string;
}

/** Who does what for one CN role now. */
export interface CnRoles extends RoleFields {
  /**
   * Machines that served the role before, most recent first (never the current one): the default host
   * of `rebuild-standby` is the first.
   */
  readonly formerServers: readonly string[];
  /** Since when these roles hold (epoch ms). */
  readonly since: number;
  /** The cell's roles version when this was recorded (0: the configuration). */
  readonly version: number;
}

/** One change of a CN's roles, as a runbook records it. The store works out formerServers and version. */
export interface RoleChange extends RoleFields {
  /** When the change took effect (epoch ms, from the Clock port). */
  readonly at: number;
}

/** The older shape of a CN's serving record, kept for callers written against it (role / setRole). */
export interface RoleAssignment {
  /** The CN role as configured, e.g. `cn1`. */
  readonly role: string;
  /** Inventory name of the node now serving it, e.g. `cn1s`; for a launched replacement, its instance. */
  readonly servedBy: string;
  /** Address (IP) of the machine now serving, when it is not an inventory node. */
  readonly address?: string;
  readonly instanceId?: string;
  /** The serving machine's pinned SSH host keys (see CnRoles.hostKeys). */
  readonly hostKeys?: readonly string[];
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
  /** sha256 of the kcn binary and of kcnd.conf when the image was taken (absent in older records). */
  readonly binarySha256?: string;
  readonly confSha256?: string;
}

export interface CellState {
  /** The recorded roles of a CN; undefined while none were recorded (then configuredRoles holds). */
  roles(cn: string): Promise<CnRoles | undefined>;
  /**
   * Records a change atomically: the CN's current roles replaced, the new roles appended to its history,
   * the cell's roles version bumped. Returns what was recorded.
   */
  recordRoles(change: RoleChange): Promise<CnRoles>;
  /** The CN's recorded roles, newest first, at most `limit` (the store keeps the latest 200). */
  roleHistory(cn: string, limit: number): Promise<CnRoles[]>;
  /** Bumped by every recordRoles of any CN: lets the monitor notice a change with one cheap read. */
  rolesVersion(): Promise<number>;
  /** The recorded roles in the older shape. */
  role(role: string): Promise<RoleAssignment | undefined>;
  /** recordRoles in the older shape (by `cellops`, reason "failover"). */
  setRole(assignment: RoleAssignment): Promise<void>;
  nodekeyBackup(cn: string): Promise<NodekeyBackupRecord | undefined>;
  setNodekeyBackup(record: NodekeyBackupRecord): Promise<void>;
  image(cn: string): Promise<ImageRecord | undefined>;
  setImage(record: ImageRecord): Promise<void>;
}

/** How many history entries a store keeps per CN. */
export const ROLE_HISTORY_LIMIT = 200;
/** How many former servers a CN's roles remember. */
const FORMER_SERVERS_LIMIT = 10;

/** What configuredRoles needs of the configuration (a structural subset of CellopsConfig). */
export interface RoleLayout {
  readonly nodes: Readonly<
    Record<string, { readonly role: string; readonly failover?: { readonly standby?: string } }>
  >;
}

/** The configuration's layout of a CN: served by its own machine, `failover.standby` standing by. */
export function configuredRoles(config: RoleLayout, cn: string): CnRoles {
  const standby = config.nodes[cn]?.failover?.standby;
  return {
    cn,
    servedBy: cn,
    ...(standby === undefined ? {} : { standby }),
    formerServers: [],
    since: 0,
    runId: 'config',
    by: 'config',
    reason: 'the configuration file',
    version: 0,
  };
}

/** The CN's roles now: the recorded ones, else the configuration's. */
export async function currentRoles(state: CellState, config: RoleLayout, cn: string): Promise<CnRoles> {
  return (await state.roles(cn)) ?? configuredRoles(config, cn);
}

/**
 * The roles a change leads to, given the CN's previous roles (undefined: none recorded). Shared by the
 * stores so that both keep former servers the same way.
 */
export function nextRoles(previous: CnRoles | undefined, change: RoleChange, version: number): CnRoles {
  const before = previous?.servedBy ?? change.cn;
  const former = [before, ...(previous?.formerServers ?? [])].filter(
    (name, i, all) => name !== change.servedBy && all.indexOf(name) === i,
  );
  return {
    cn: change.cn,
    servedBy: change.servedBy,
    ...(change.address === undefined ? {} : { address: change.address }),
    ...(change.instanceId === undefined ? {} : { instanceId: change.instanceId }),
    ...(change.hostKeys === undefined ? {} : { hostKeys: change.hostKeys }),
    ...(change.standby === undefined ? {} : { standby: change.standby }),
    formerServers: former.slice(0, FORMER_SERVERS_LIMIT),
    since: change.at,
    runId: change.runId,
    by: change.by,
    reason: change.reason,
    version,
    ...(change.fenced === undefined ? {} : { fenced: change.fenced }),
  };
}

/** The older shape of recorded roles. */
export function assignmentOf(roles: CnRoles): RoleAssignment {
  return {
    role: roles.cn,
    servedBy: roles.servedBy,
    ...(roles.address === undefined ? {} : { address: roles.address }),
    ...(roles.instanceId === undefined ? {} : { instanceId: roles.instanceId }),
    ...(roles.hostKeys === undefined ? {} : { hostKeys: roles.hostKeys }),
    ...(roles.standby === undefined ? {} : { standby: roles.standby }),
    ...(roles.formerServers[0] === undefined ? {} : { previous: roles.formerServers[0] }),
    since: roles.since,
    runId: roles.runId,
    ...(roles.fenced === undefined ? {} : { fenced: roles.fenced }),
  };
}

/**
 * The change a setRole stands for: a failover moved the role to `servedBy`, so the recorded standby stays
 * only if it is not the machine that now serves.
 */
export function changeOfAssignment(previous: CnRoles | undefined, a: RoleAssignment): RoleChange {
  const standby = a.standby ?? previous?.standby;
  return {
    cn: a.role,
    servedBy: a.servedBy,
    ...(a.address === undefined ? {} : { address: a.address }),
    ...(a.instanceId === undefined ? {} : { instanceId: a.instanceId }),
    ...(a.hostKeys === undefined ? {} : { hostKeys: a.hostKeys }),
    ...(standby === undefined || standby === a.servedBy ? {} : { standby }),
    at: a.since,
    runId: a.runId,
    by: 'cellops',
    reason: 'failover',
    ...(a.fenced === undefined ? {} : { fenced: a.fenced }),
  };
}
