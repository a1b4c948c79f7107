/**
 * Every Redis key cellops uses, built in one place under the configured prefix (default
 * `cellops:<cell>:`), so that a cell's data can be listed, moved or deleted together and tests can use a
 * unique prefix each.
 */
export interface RedisKeys {
  readonly prefix: string;
  /** The lock itself (string: owner token). */
  lock(name: string): string;
  /** Holder metadata of a lock (string: JSON). */
  lockHolder(name: string): string;
  /** Fencing counter of a lock (integer, INCR'd on every acquisition). */
  lockFence(name: string): string;
  /** One run record (string: JSON). */
  run(runId: string): string;
  /** Sorted set of run ids by creation time. */
  runIndex(): string;
  /** Set of run ids that are not finished (running, waiting, paused). */
  activeRuns(): string;
  /** Lease of the process driving a run (string: owner id, with TTL). */
  runOwner(runId: string): string;
  /** Decisions on one approval round of one step (hash user -> JSON). */
  approval(runId: string, stepId: string, round: number): string;
  /** A person's request to abort a run (string: JSON; the first one wins). */
  runAbort(runId: string): string;
  /** A person's request to resume a paused run (string: JSON; taken once by the driver). */
  runResume(runId: string): string;
  /** Audit stream of a run (Redis stream). */
  audit(runId: string): string;
  /** Audit stream of the whole cell (Redis stream, capped). */
  auditAll(): string;
  /** Pub/sub channel announcing run changes (decisions, aborts), to wake waiting engines. */
  runEvents(): string;
  /** Monitor leader lease. */
  monitorLease(): string;
  /** The monitor leader's latest view of the cell, for `/cell status` on any replica (string: JSON). */
  monitorView(): string;
  /** Incident state of one node (string: JSON). */
  incident(node: string): string;
  /** Mute of one node (string with TTL). */
  mute(node: string): string;
  /** Cell state: recorded roles, nodekey backups, images (hash). */
  cellState(): string;
  /** History of one CN's roles (list of JSON, newest first, capped). */
  cellRoleHistory(cn: string): string;
  /** Cache of a Slack user group's members (string: JSON, short TTL). */
  usergroup(id: string): string;
  /** Dedup marker for one delivery of a Slack request (string with TTL). */
  dedup(id: string): string;
  /** Slack message refs of a run (hash: `run` and `approval:<step>:<round>` -> JSON {channel, ts}). */
  slackRefs(runId: string): string;
  /** Escalation entries: what to page, remind or resolve, and when (hash: entry key -> JSON). */
  escalation(): string;
  /** Claim on one escalation entry while a replica changes it (string: owner token, with TTL). */
  escalationClaim(entry: string): string;
  /** Where a malformed record of `key` is moved aside (same type as the original; expires). */
  quarantine(key: string): string;
  /** Dry runs a user started in the current window (integer with TTL): the rate limit. */
  dryRuns(user: string): string;
}

export function createRedisKeys(prefix: string): RedisKeys {
  const k = (...parts: (string | number)[]) => prefix + parts.join(':');
  return {
    prefix,
    lock: (name) => k('lock', name),
    lockHolder: (name) => k('lock', name, 'holder'),
    lockFence: (name) => k('lock', name, 'fence'),
    run: (runId) => k('run', runId),
    runIndex: () => k('runs'),
    activeRuns: () => k('runs', 'active'),
    runOwner: (runId) => k('run', runId, 'owner'),
    approval: (runId, stepId, round) => k('run', runId, 'approval', stepId, round),
    runAbort: (runId) => k('run', runId, 'abort'),
    runResume: (runId) => k('run', runId, 'resume'),
    audit: (runId) => k('run', runId, 'audit'),
    auditAll: () => k('audit'),
    runEvents: () => k('events', 'runs'),
    monitorLease: () => k('monitor', 'lease'),
    monitorView: () => k('monitor', 'view'),
    incident: (node) => k('incident', node),
    mute: (node) => k('mute', node),
    cellState: () => k('cell'),
    cellRoleHistory: (cn) => k('cell', 'roles', cn),
    usergroup: (id) => k('usergroup', id),
    dedup: (id) => k('dedup', id),
    slackRefs: (runId) => k('run', runId, 'slack'),
    escalation: () => k('escalation'),
    escalationClaim: (entry) => k('escalation', 'claim', entry),
    quarantine: (key) => k('quarantine', key.startsWith(prefix) ? key.slice(prefix.length) : key),
    dryRuns: (user) => k('ratelimit', 'dry-run', user),
  };
}
