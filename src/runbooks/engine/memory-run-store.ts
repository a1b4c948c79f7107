/**
 * The run store in process memory, with the Redis store's semantics (records are copied through JSON as
 * Redis would, leases lapse by the Clock, notifications arrive asynchronously). For the sandbox when no
 * Redis exists and for unit tests driven by a manual clock. It serves one process only.
 */
import type { Clock } from '../../ports/clock.js';
import type { ApprovalRecord, RunRecord } from '../types.js';
import {
  isFinished,
  sortDecisions,
  type ApprovalRound,
  type ControlRequest,
  type RecordDecisionResult,
  type RoundClosure,
  type RunStore,
  type StoredAuditEntry,
} from './run-store.js';

interface Round {
  decisions: Map<string, ApprovalRecord>;
  final?: ApprovalRecord;
  closed?: RoundClosure;
}

export interface MemoryRunStoreDeps {
  readonly clock: Clock;
}

export function createMemoryRunStore(deps: MemoryRunStoreDeps): RunStore {
  const { clock } = deps;
  const runs = new Map<string, string>();
  const created = new Map<string, number>();
  const active = new Set<string>();
  const owners = new Map<string, { owner: string; expiresAt: number }>();
  const rounds = new Map<string, Round>();
  const aborts = new Map<string, ControlRequest>();
  const resumes = new Map<string, ControlRequest>();
  const audits = new Map<string, StoredAuditEntry[]>();
  const listeners = new Set<(runId: string) => void>();
  let auditSeq = 0;

  const roundOf = (runId: string, stepId: string, round: number): Round =>
    roundIn(rounds, roundKey(runId, stepId, round));
  const liveOwner = (runId: string): string | undefined => liveOwnerIn(owners, clock, runId);

  return {
    async saveRun(run, guard) {
      if (guard && liveOwner(run.id) !== guard.owner) return false;
      runs.set(run.id, JSON.stringify(run));
      created.set(run.id, run.createdAt);
      if (isFinished(run.status)) active.delete(run.id);
      else active.add(run.id);
      return true;
    },

    async loadRun(runId) {
      const json = runs.get(runId);
      return json === undefined ? undefined : (JSON.parse(json) as RunRecord);
    },

    async listRecent(limit) {
      return [...created.entries()]
        .sort((a, b) => b[1] - a[1] || b[0].localeCompare(a[0]))
        .slice(0, Math.max(0, limit))
        .map(([id]) => JSON.parse(runs.get(id) ?? 'null') as RunRecord | null)
        .filter((run): run is RunRecord => run !== null);
    },

    async activeRunIds() {
      return [...active];
    },

    async acquireOwner(runId, owner, ttlMs) {
      const current = liveOwner(runId);
      if (current !== undefined && current !== owner) return false;
      owners.set(runId, { owner, expiresAt: clock.now() + ttlMs });
      return true;
    },

    async renewOwner(runId, owner, ttlMs) {
      if (liveOwner(runId) !== owner) return false;
      owners.set(runId, { owner, expiresAt: clock.now() + ttlMs });
      return true;
    },

    async releaseOwner(runId, owner) {
      if (liveOwner(runId) === owner) owners.delete(runId);
    },

    async ownerOf(runId) {
      return liveOwner(runId);
    },

    async recordDecision(runId, stepId, roundNumber, decision, required) {
      return recordIn(roundOf(runId, stepId, roundNumber), decision, required);
    },

    async closeRound(runId, stepId, roundNumber, closure) {
      const round = roundOf(runId, stepId, roundNumber);
      if (round.final) return { kind: 'decided', round: view(round) };
      round.closed ??= copy(closure);
      return { kind: 'closed' };
    },

    async readRound(runId, stepId, roundNumber) {
      return view(rounds.get(roundKey(runId, stepId, roundNumber)) ?? { decisions: new Map() });
    },

    async requestAbort(runId, request) {
      const existing = aborts.get(runId);
      if (existing) return copy(existing);
      aborts.set(runId, copy(request));
      return copy(request);
    },

    async abortRequest(runId) {
      const existing = aborts.get(runId);
      return existing ? copy(existing) : undefined;
    },

    async requestResume(runId, request) {
      resumes.set(runId, copy(request));
    },

    async takeResume(runId) {
      const existing = resumes.get(runId);
      resumes.delete(runId);
      return existing;
    },

    async appendAudit(runId, entry) {
      const list = audits.get(runId) ?? [];
      auditSeq += 1;
      list.push({ ...copy(entry), runId, id: `${entry.at}-${auditSeq}` });
      audits.set(runId, list);
    },

    async readAudit(runId, limit) {
      const list = audits.get(runId) ?? [];
      return (limit === undefined ? list : list.slice(0, limit)).map(copy);
    },

    async publish(runId) {
      // Asynchronous, as a Redis message would be: a publisher never re-enters its own listener.
      for (const listener of [...listeners]) setImmediate(() => listener(runId));
    },

    async subscribe(listener) {
      listeners.add(listener);
      return async () => {
        listeners.delete(listener);
      };
    },
  };
}

const copy = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

const roundKey = (runId: string, stepId: string, round: number): string =>
  `${runId}\u0000${stepId}\u0000${round}`;

/** The round at `key`, created empty on first use. */
function roundIn(rounds: Map<string, Round>, key: string): Round {
  let entry = rounds.get(key);
  if (!entry) {
    entry = { decisions: new Map() };
    rounds.set(key, entry);
  }
  return entry;
}

function view(round: Round): ApprovalRound {
  return {
    decisions: sortDecisions([...round.decisions.values()].map(copy)),
    ...(round.final ? { final: copy(round.final) } : {}),
    ...(round.closed ? { closed: copy(round.closed) } : {}),
  };
}

/** The owner of the run's lease, dropping a lease that has lapsed by the clock. */
function liveOwnerIn(
  owners: Map<string, { owner: string; expiresAt: number }>,
  clock: Clock,
  runId: string,
): string | undefined {
  const lease = owners.get(runId);
  if (lease && lease.expiresAt <= clock.now()) {
    owners.delete(runId);
    return undefined;
  }
  return lease?.owner;
}

/** RunStore.recordDecision on one round, with the Redis script's rules. */
function recordIn(round: Round, decision: ApprovalRecord, required: number): RecordDecisionResult {
  if (round.final) return { kind: 'already-decided', by: copy(round.final) };
  if (round.closed) return { kind: 'closed', closed: copy(round.closed) };
  const mine = round.decisions.get(decision.user);
  if (mine) return { kind: 'already-decided', by: copy(mine) };
  round.decisions.set(decision.user, copy(decision));
  const approvals = [...round.decisions.values()].filter((d) => d.decision === 'approve').length;
  const final = decision.decision === 'abort' || approvals >= required;
  if (final) round.final = copy(decision);
  return { kind: 'recorded', final, round: view(round) };
}
