/**
 * The post-incident report of a run (`/cell report <run>`, `cellops report <run>`), as data: what the
 * on-call team reads the morning after. Pure: it is built from the run record, its audit stream and the
 * blocks read from the chain (src/report/gather-report.ts reads them); Block Kit (src/views/report.ts)
 * and Markdown (src/report/markdown.ts) render it.
 *
 * - Timeline: the alert (kept with the run when it was requested), then every audit entry except step
 *   output lines, in the stream's order, a finished step with its duration and where it acted; and the
 *   moment Verify first saw the CN signing.
 * - Time to recover: alert opened (else the run's first destructive step, else its request) → the CN
 *   signing again (else in sync, for runs recorded before signing was noted).
 * - Missed blocks: blocks in that window whose committee holds the CN's address and whose committers do
 *   not; the number of blocks read is bounded and the report says when it did not reach the start.
 * - Left behind: keys moved aside, instances stopped, snapshots taken, from the run's output and facts.
 */
import type { StoredAuditEntry } from '../runbooks/engine/run-store.js';
import type { ApprovalRecord, RunIncident, RunRecord, StepRecord } from '../runbooks/types.js';
import type { BlockConsensusInfo } from '../ports/node-rpc.js';
import { RUN_ID_TAG } from '../ports/cloud.js';

export interface TimelineEntry {
  readonly at: number;
  /** `alert` and `signing` come from the run's record; `audit` entries from its stream, one each. */
  readonly source: 'alert' | 'audit' | 'signing';
  /** The audit entry's stream id (source `audit`). */
  readonly auditId?: string;
  /** A person (Slack user id) or `engine:…`; absent for the alert and signing entries. */
  readonly who?: string;
  /** The audit entry's `what`, or `alert-opened` / `signing-again`. */
  readonly what: string;
  readonly stepId?: string;
  /** One line for people. */
  readonly text: string;
  /** For `step-finished`: from the step's last start. */
  readonly durationMs?: number;
  /** For step entries: the hosts and API calls the step acts on. */
  readonly targets?: readonly string[];
}

export interface StepSummary {
  readonly id: string;
  readonly title: string;
  readonly status: StepRecord['status'];
  readonly startedAt?: number;
  readonly endedAt?: number;
  readonly durationMs?: number;
  readonly targets: readonly string[];
  readonly approvals: readonly ApprovalRecord[];
}

/** Where the outage is measured from and to. */
export interface OutageWindow {
  readonly startAt: number;
  readonly startLabel: string;
  /** When the CN was seen signing again (or in sync, see endLabel); absent when it was not. */
  readonly endAt?: number;
  readonly endLabel: string;
  /** The first block with the CN's seal after the failover, when recorded. */
  readonly endBlock?: number;
  /** The CN's node address, when the run learnt it. */
  readonly address?: string;
}

export interface TimeToRecover {
  readonly window: OutageWindow;
  /** endAt − startAt, when there is an end. */
  readonly ms?: number;
}

/** What the chain was asked for the window (gather-report.ts). */
export type ChainReading =
  | {
      readonly kind: 'read';
      /** The node the blocks were read from. */
      readonly source: string;
      /** Blocks read, oldest first, at most the bound. */
      readonly blocks: readonly BlockConsensusInfo[];
      /** The bound was reached before a block older than the window's start. */
      readonly truncated: boolean;
      readonly limit: number;
    }
  | { readonly kind: 'unavailable'; readonly reason: string };

export type MissedBlocks =
  | {
      readonly kind: 'counted';
      readonly source: string;
      readonly address: string;
      /** Blocks of the window examined, and the first and last of them. */
      readonly examined: number;
      readonly first?: number;
      readonly last?: number;
      /** Blocks whose committee holds the CN's address and whose committers do not. */
      readonly missed: number;
      /** The missed blocks as ranges, e.g. `1200–1235`, at most a few. */
      readonly ranges: readonly string[];
      readonly truncated: boolean;
      readonly limit: number;
      /** The window has no end yet: counted up to the newest block read. */
      readonly open: boolean;
    }
  | { readonly kind: 'unknown'; readonly reason: string };

export interface LeftBehind {
  readonly kind: 'key' | 'instance' | 'snapshot' | 'volume';
  /** Host or instance the item is on. */
  readonly where: string;
  readonly text: string;
}

export interface RunReport {
  readonly runId: string;
  readonly runbook: string;
  readonly summary: string;
  readonly node: string;
  readonly status: RunRecord['status'];
  readonly requester: string;
  readonly dryRun: boolean;
  readonly createdAt: number;
  readonly endedAt?: number;
  readonly error?: string;
  readonly incident?: RunIncident;
  /** The run's Slack message, where the report is posted. */
  readonly thread?: { readonly channel: string; readonly ts: string };
  readonly timeline: readonly TimelineEntry[];
  readonly steps: readonly StepSummary[];
  readonly recovery: TimeToRecover;
  readonly missed: MissedBlocks;
  readonly leftBehind: readonly LeftBehind[];
  /** What removes the cloud leftovers, when there are any. */
  readonly cleanupHint?: string;
  readonly generatedAt: number;
}

export interface ReportInput {
  readonly run: RunRecord;
  /** The run's audit stream, oldest first. */
  readonly audit: readonly StoredAuditEntry[];
  readonly chain: ChainReading;
  readonly now: number;
}

/** Audit entries that are detail, not events: the timeline leaves them out. */
const NOT_IN_TIMELINE: readonly string[] = ['step-output'];

const HOST_TARGET = /\bon ([a-z][a-z0-9-]*) \((\d{1,3}(?:\.\d{1,3}){3})\)/g;
const API_TARGET = /\bEC2 ([A-Z][A-Za-z]+)/g;

/** The hosts (`cn1 (10.0.1.11)`) and API calls (`EC2 StopInstances`) a step's plan text names. */
export function stepTargets(description: string): string[] {
  const found: string[] = [];
  for (const m of description.matchAll(HOST_TARGET)) found.push(`${m[1]} (${m[2]})`);
  for (const m of description.matchAll(API_TARGET)) found.push(`EC2 ${m[1]}`);
  return [...new Set(found)];
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The outage the run answered: from the alert (or the first destructive step) to the CN signing again. */
export function outageWindow(run: RunRecord): OutageWindow {
  const firstDestructive = run.steps.find((s) => s.destructive && s.startedAt !== undefined);
  const start = run.incident
    ? { startAt: run.incident.openedAt, startLabel: `alert opened (${run.incident.kind})` }
    : firstDestructive?.startedAt !== undefined
      ? { startAt: firstDestructive.startedAt, startLabel: `${firstDestructive.title.toLowerCase()} began` }
      : { startAt: run.createdAt, startLabel: 'run requested' };
  const address = str(run.facts.failedAddress);
  const signedAt = num(run.facts.signedAt);
  const signedBlock = num(run.facts.signedBlock);
  const withAddress = address === undefined ? {} : { address };
  if (signedAt !== undefined)
    return {
      ...start,
      ...withAddress,
      endAt: signedAt,
      endLabel: 'CN signing again',
      ...(signedBlock === undefined ? {} : { endBlock: signedBlock }),
    };
  const verify = run.steps.find((s) => s.id === 'verify' && s.status === 'succeeded');
  const synced = num(run.facts.verifiedAt) ?? verify?.endedAt;
  if (synced !== undefined)
    return { ...start, ...withAddress, endAt: synced, endLabel: 'CN in sync (signing not confirmed)' };
  return { ...start, ...withAddress, endLabel: 'the CN was not seen recovering in this run' };
}

function titleOf(run: RunRecord, stepId: string | undefined): string {
  if (stepId === undefined) return '';
  return run.steps.find((s) => s.id === stepId)?.title ?? stepId;
}

function who(entry: StoredAuditEntry): string {
  return entry.who.startsWith('engine:') ? 'cellops' : entry.who;
}

/** One line for an audit entry. Person ids stay ids: each renderer turns them into mentions or text. */
function describeEntry(run: RunRecord, e: StoredAuditEntry): string {
  const step = titleOf(run, e.stepId);
  const detail = e.detail ?? '';
  switch (e.what) {
    case 'run-started':
      return `requested ${run.summary}${run.dryRun ? ' (dry run)' : ''}`;
    case 'lock-acquired':
      return `took the cell lock (${detail})`;
    case 'approval-requested':
      return `asked for approval of "${step}"`;
    case 'decision':
      return `${detail.startsWith('abort') ? 'aborted at' : 'approved'} "${step}"`;
    case 'approval-granted':
      return `"${step}" approved (${detail})`;
    case 'approval-expired':
      return `approval of "${step}" expired`;
    case 'step-started':
      return `started "${step}" (${detail})`;
    case 'step-finished':
      return `"${step}" ${detail}`;
    case 'undo-started':
      return `undoing "${step}"`;
    case 'undo-failed':
      return `undo of "${step}" failed: ${detail}`;
    case 'run-finished':
      return `run ${detail}`;
    default:
      return `${e.what.replace(/-/g, ' ')}${step ? ` "${step}"` : ''}${detail ? `: ${detail}` : ''}`;
  }
}

function auditTimeline(run: RunRecord, audit: readonly StoredAuditEntry[]): TimelineEntry[] {
  const started = new Map<string, number>();
  const targets = new Map(run.steps.map((s) => [s.id, stepTargets(s.description)]));
  const entries: TimelineEntry[] = [];
  for (const e of audit) {
    if (NOT_IN_TIMELINE.includes(e.what)) continue;
    if (e.what === 'step-started' && e.stepId !== undefined) started.set(e.stepId, e.at);
    const begun = e.stepId === undefined ? undefined : started.get(e.stepId);
    const stepTargetList = e.stepId === undefined ? undefined : targets.get(e.stepId);
    const isStep = e.what === 'step-started' || e.what === 'step-finished';
    entries.push({
      at: e.at,
      source: 'audit',
      auditId: e.id,
      who: who(e),
      what: e.what,
      ...(e.stepId === undefined ? {} : { stepId: e.stepId }),
      text: describeEntry(run, e),
      ...(e.what === 'step-finished' && begun !== undefined ? { durationMs: e.at - begun } : {}),
      ...(isStep && stepTargetList && stepTargetList.length > 0 ? { targets: stepTargetList } : {}),
    });
  }
  return entries;
}

/**
 * Inserts an entry before the first one at the same time or later: what the run's record notes (the
 * alert, the moment Verify saw the seal) happened before the audit entry written in that millisecond.
 */
function insertByTime(entries: TimelineEntry[], entry: TimelineEntry): void {
  const index = entries.findIndex((e) => e.at >= entry.at);
  if (index === -1) entries.push(entry);
  else entries.splice(index, 0, entry);
}

export function buildTimeline(run: RunRecord, audit: readonly StoredAuditEntry[]): TimelineEntry[] {
  const entries = auditTimeline(run, audit);
  if (run.incident) {
    insertByTime(entries, {
      at: run.incident.openedAt,
      source: 'alert',
      what: 'alert-opened',
      text: `${run.node} ${run.incident.kind}: the alert's condition began (alert ${run.incident.id})`,
    });
  }
  const signedAt = num(run.facts.signedAt);
  if (signedAt !== undefined) {
    const block = num(run.facts.signedBlock);
    insertByTime(entries, {
      at: signedAt,
      source: 'signing',
      what: 'signing-again',
      text: `${run.node} seen signing again${block === undefined ? '' : ` (block ${block})`}`,
    });
  }
  return entries;
}

function summarizeStep(step: StepRecord): StepSummary {
  const durationMs =
    step.startedAt !== undefined && step.endedAt !== undefined ? step.endedAt - step.startedAt : undefined;
  return {
    id: step.id,
    title: step.title,
    status: step.status,
    ...(step.startedAt === undefined ? {} : { startedAt: step.startedAt }),
    ...(step.endedAt === undefined ? {} : { endedAt: step.endedAt }),
    ...(durationMs === undefined ? {} : { durationMs }),
    targets: stepTargets(step.description),
    approvals: step.approvals,
  };
}

/** Consecutive numbers as `a–b` ranges; at most `max`, the rest summed up. */
function ranges(numbers: readonly number[], max = 5): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < numbers.length) {
    let j = i;
    while (j + 1 < numbers.length && numbers[j + 1] === (numbers[j] ?? 0) + 1) j++;
    const a = numbers[i] ?? 0;
    const b = numbers[j] ?? 0;
    out.push(a === b ? String(a) : `${a}–${b}`);
    i = j + 1;
  }
  return out.length > max ? [...out.slice(0, max), `and ${out.length - max} more ranges`] : out;
}

/** Counts the blocks of the window the CN should have sealed and did not. */
export function countMissed(window: OutageWindow, chain: ChainReading): MissedBlocks {
  if (chain.kind === 'unavailable') return { kind: 'unknown', reason: chain.reason };
  const address = window.address;
  if (address === undefined)
    return { kind: 'unknown', reason: "the run did not learn the CN's node address" };
  if (chain.blocks.length > 0 && chain.blocks.every((b) => b.timestamp === undefined))
    return {
      kind: 'unknown',
      reason: `${chain.source} gives no block times, so the window cannot be placed`,
    };
  const startSec = window.startAt / 1000;
  const inWindow = chain.blocks.filter(
    (b) =>
      b.timestamp !== undefined &&
      b.timestamp >= Math.floor(startSec) &&
      (window.endBlock === undefined || b.number < window.endBlock),
  );
  const lower = address.toLowerCase();
  const missed = inWindow
    .filter(
      (b) =>
        (b.committee.length === 0 || b.committee.includes(lower)) && !b.committers.some((c) => c === lower),
    )
    .map((b) => b.number);
  const oldest = chain.blocks[0];
  const reachedStart = oldest?.timestamp !== undefined && oldest.timestamp < startSec;
  return {
    kind: 'counted',
    source: chain.source,
    address,
    examined: inWindow.length,
    ...(inWindow[0] ? { first: inWindow[0].number } : {}),
    ...(inWindow.at(-1) ? { last: inWindow.at(-1)?.number ?? 0 } : {}),
    missed: missed.length,
    ranges: ranges(missed),
    truncated: chain.truncated && !reachedStart,
    limit: chain.limit,
    open: window.endAt === undefined,
  };
}

const MOVED_ASIDE = /^moved (\S+) aside to (\S+) on (\S+)$/;
const KEPT_ASIDE = /^kept (\S+)'s own (\S+) aside as (\S+)$/;
const INSTANCE_STOPPED = /^EC2 instance (\S+) is stopped$/;

/** What the run left on machines and in the cloud: from its output lines and facts. Undone steps left nothing. */
export function leftBehind(run: RunRecord, audit: readonly StoredAuditEntry[]): LeftBehind[] {
  const undone = new Set(run.steps.filter((s) => s.status === 'undone').map((s) => s.id));
  const items: LeftBehind[] = [];
  const seen = new Set<string>();
  const add = (item: LeftBehind) => {
    const key = `${item.kind}|${item.where}|${item.text}`;
    if (!seen.has(key)) {
      seen.add(key);
      items.push(item);
    }
  };
  for (const e of audit) {
    if (e.what !== 'step-output' || e.detail === undefined) continue;
    if (e.stepId !== undefined && undone.has(e.stepId)) continue;
    const line = e.detail.trim();
    let m: RegExpMatchArray | null;
    if ((m = MOVED_ASIDE.exec(line)))
      add({ kind: 'key', where: m[3] ?? '', text: `${m[1]} moved aside to ${m[2]} (the fence)` });
    else if ((m = KEPT_ASIDE.exec(line)))
      add({ kind: 'key', where: m[1] ?? '', text: `its own ${m[2]} kept aside as ${m[3]}` });
    else if ((m = INSTANCE_STOPPED.exec(line)))
      add({ kind: 'instance', where: m[1] ?? '', text: 'stopped (the fence); it keeps its volumes' });
  }
  const facts = run.facts;
  const failedInstance = str(facts.failedInstanceId);
  const fenced = run.steps.some((s) => s.id === 'fence-and-move-ip' && s.status === 'succeeded');
  if (failedInstance !== undefined && fenced)
    add({ kind: 'instance', where: failedInstance, text: 'stopped (the fence); it keeps its volumes' });
  const snapshot = str(facts.snapshotId);
  if (snapshot !== undefined)
    add({
      kind: 'snapshot',
      where: snapshot,
      text: `of ${str(facts.pn) ?? 'the PN'}'s data volume ${str(facts.pnVolumeId) ?? ''}`.trimEnd(),
    });
  const volume = str(facts.volumeId);
  const recorded = run.steps.some((s) => s.id === 'record' && s.status === 'succeeded');
  if (volume !== undefined && !recorded)
    add({ kind: 'volume', where: volume, text: 'made from the snapshot; the run did not finish with it' });
  return items;
}

export function buildReport(input: ReportInput): RunReport {
  const { run, audit, chain, now } = input;
  const window = outageWindow(run);
  const left = leftBehind(run, audit);
  const cloud = left.some((i) => i.kind !== 'key');
  return {
    runId: run.id,
    runbook: run.runbook,
    summary: run.summary,
    node: run.node,
    status: run.status,
    requester: run.requester,
    dryRun: run.dryRun,
    createdAt: run.createdAt,
    ...(run.endedAt === undefined ? {} : { endedAt: run.endedAt }),
    ...(run.error === undefined ? {} : { error: run.error }),
    ...(run.incident === undefined ? {} : { incident: run.incident }),
    ...(run.thread === undefined ? {} : { thread: { channel: run.thread.channel, ts: run.thread.ts } }),
    timeline: buildTimeline(run, audit),
    steps: run.steps.map(summarizeStep),
    recovery: {
      window,
      ...(window.endAt === undefined ? {} : { ms: window.endAt - window.startAt }),
    },
    missed: countMissed(window, chain),
    leftBehind: left,
    ...(cloud
      ? {
          cleanupHint: `/cell cleanup ${run.id} terminates the stopped old instance and deletes the volumes and snapshots tagged ${RUN_ID_TAG}=${run.id}.`,
        }
      : {}),
    generatedAt: now,
  };
}
