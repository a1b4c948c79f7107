/**
 * The behaviour every RunStore must show, run against the in-memory store (manual clock) and the Redis
 * store (real Redis, real time). Time passes only through `wait`, so the same cases fit both.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunStore } from '../../src/runbooks/engine/run-store.js';
import type { ApprovalRecord, RunRecord, RunStatus } from '../../src/runbooks/types.js';

export interface RunStoreHarness {
  readonly store: RunStore;
  /** A second view of the same data, as another bot replica would have; may be `store` itself. */
  readonly other: RunStore;
  /** Lets `ms` milliseconds pass (a manual clock advances; a real one sleeps). */
  wait(ms: number): Promise<void>;
  close(): Promise<void>;
}

let counter = 0;

export function buildRun(overrides: Partial<RunRecord> = {}): RunRecord {
  counter += 1;
  return {
    id: `run-${counter}`,
    runbook: 'counting',
    runbookVersion: 1,
    params: { node: 'cn1' },
    node: 'cn1',
    summary: 'counting on cn1',
    requester: 'U0REQ',
    dryRun: false,
    createdAt: 1_764_126_000_000 + counter,
    status: 'running',
    steps: [
      {
        id: 'one',
        title: 'Step one',
        description: 'does one thing',
        destructive: true,
        kind: 'auto',
        status: 'pending',
        attempts: 0,
        output: [],
        approvals: [],
        approvalRound: 0,
      },
    ],
    facts: {},
    lockKey: 'failover',
    ...overrides,
  };
}

const approve = (user: string, at = 1000): ApprovalRecord => ({ user, decision: 'approve', at });
const abortBy = (user: string, at = 1000): ApprovalRecord => ({ user, decision: 'abort', at });

/** Resolves when `predicate` holds, polling (notifications arrive asynchronously). */
async function eventually(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function runStoreContract(name: string, create: () => Promise<RunStoreHarness>): void {
  describe(`RunStore contract: ${name}`, () => {
    let h: RunStoreHarness;

    beforeEach(async () => {
      h = await create();
    });
    afterEach(async () => {
      await h.close();
    });

    it('loads what was saved, as another replica sees it', async () => {
      const run = buildRun({ facts: { standby: 'cn1s', blocks: [1, 2] } });
      expect(await h.store.saveRun(run)).toBe(true);
      expect(await h.other.loadRun(run.id)).toEqual(run);
      expect(await h.other.loadRun('no-such-run')).toBeUndefined();
    });

    it('lists recent runs newest first, bounded by the limit', async () => {
      const first = buildRun({ createdAt: 1000 });
      const second = buildRun({ createdAt: 2000 });
      const third = buildRun({ createdAt: 3000 });
      for (const run of [second, third, first]) await h.store.saveRun(run);
      expect((await h.other.listRecent(2)).map((r) => r.id)).toEqual([third.id, second.id]);
      expect((await h.other.listRecent(10)).map((r) => r.id)).toEqual([third.id, second.id, first.id]);
    });

    it('keeps unfinished runs in the active set and drops them when they finish', async () => {
      const run = buildRun();
      await h.store.saveRun(run);
      expect(await h.other.activeRunIds()).toContain(run.id);
      for (const status of ['waiting-approval', 'paused'] as RunStatus[]) {
        await h.store.saveRun({ ...run, status });
        expect(await h.other.activeRunIds()).toContain(run.id);
      }
      await h.store.saveRun({ ...run, status: 'succeeded' });
      expect(await h.other.activeRunIds()).not.toContain(run.id);
    });

    it('saves with an owner guard only while that owner holds the lease', async () => {
      const run = buildRun();
      expect(await h.store.saveRun(run, { owner: 'bot-a' })).toBe(false);
      expect(await h.store.loadRun(run.id)).toBeUndefined();
      expect(await h.store.acquireOwner(run.id, 'bot-a', 60_000)).toBe(true);
      expect(await h.store.saveRun(run, { owner: 'bot-a' })).toBe(true);
      expect(await h.other.saveRun({ ...run, status: 'failed' }, { owner: 'bot-b' })).toBe(false);
      expect((await h.store.loadRun(run.id))?.status).toBe('running');
    });

    it('gives the owner lease to one process until it lapses or is released', async () => {
      const run = buildRun();
      expect(await h.store.acquireOwner(run.id, 'bot-a', 200)).toBe(true);
      expect(await h.other.acquireOwner(run.id, 'bot-b', 200)).toBe(false);
      expect(await h.store.acquireOwner(run.id, 'bot-a', 200)).toBe(true);
      expect(await h.other.ownerOf(run.id)).toBe('bot-a');
      expect(await h.other.renewOwner(run.id, 'bot-b', 200)).toBe(false);
      await h.other.releaseOwner(run.id, 'bot-b');
      expect(await h.other.ownerOf(run.id)).toBe('bot-a');

      await h.wait(400);
      expect(await h.other.ownerOf(run.id)).toBeUndefined();
      expect(await h.store.renewOwner(run.id, 'bot-a', 200)).toBe(false);
      expect(await h.other.acquireOwner(run.id, 'bot-b', 60_000)).toBe(true);
      await h.other.releaseOwner(run.id, 'bot-b');
      expect(await h.store.ownerOf(run.id)).toBeUndefined();
    });

    it('keeps a renewed owner lease across several TTLs', async () => {
      const run = buildRun();
      await h.store.acquireOwner(run.id, 'bot-a', 300);
      for (let i = 0; i < 8; i++) {
        await h.wait(100);
        expect(await h.store.renewOwner(run.id, 'bot-a', 300)).toBe(true);
      }
      expect(await h.other.ownerOf(run.id)).toBe('bot-a');
    });

    it('records one settling decision; later and repeated decisions answer who decided', async () => {
      const first = await h.store.recordDecision('r1', 'fence', 1, approve('U0A'), 1);
      expect(first).toEqual({
        kind: 'recorded',
        final: true,
        round: { decisions: [approve('U0A')], final: approve('U0A') },
      });
      expect(await h.other.recordDecision('r1', 'fence', 1, approve('U0B'), 1)).toEqual({
        kind: 'already-decided',
        by: approve('U0A'),
      });
      expect(await h.other.recordDecision('r1', 'fence', 1, abortBy('U0A'), 1)).toEqual({
        kind: 'already-decided',
        by: approve('U0A'),
      });
      expect(await h.other.readRound('r1', 'fence', 1)).toEqual({
        decisions: [approve('U0A')],
        final: approve('U0A'),
      });
    });

    it('counts distinct approvers until the required number settles the round', async () => {
      const one = await h.store.recordDecision('r2', 'fence', 1, approve('U0A', 1), 2);
      expect(one).toMatchObject({ kind: 'recorded', final: false });
      expect(await h.other.recordDecision('r2', 'fence', 1, approve('U0A', 2), 2)).toEqual({
        kind: 'already-decided',
        by: approve('U0A', 1),
      });
      const two = await h.other.recordDecision('r2', 'fence', 1, approve('U0B', 3), 2);
      expect(two).toEqual({
        kind: 'recorded',
        final: true,
        round: { decisions: [approve('U0A', 1), approve('U0B', 3)], final: approve('U0B', 3) },
      });
    });

    it('settles a round with the first abort even before enough approvals', async () => {
      await h.store.recordDecision('r3', 'fence', 1, approve('U0A', 1), 2);
      const aborted = await h.other.recordDecision('r3', 'fence', 1, abortBy('U0C', 2), 2);
      expect(aborted).toMatchObject({ kind: 'recorded', final: true, round: { final: abortBy('U0C', 2) } });
      expect(await h.store.recordDecision('r3', 'fence', 1, approve('U0B', 3), 2)).toEqual({
        kind: 'already-decided',
        by: abortBy('U0C', 2),
      });
    });

    it('keeps rounds apart: a new round starts empty', async () => {
      await h.store.recordDecision('r4', 'fence', 1, approve('U0A'), 1);
      expect(await h.other.readRound('r4', 'fence', 2)).toEqual({ decisions: [] });
      expect(await h.other.recordDecision('r4', 'fence', 2, approve('U0A'), 1)).toMatchObject({
        kind: 'recorded',
        final: true,
      });
    });

    it('closes a round so that later decisions change nothing, unless a decision settled it first', async () => {
      const closure = { reason: 'expired', at: 5000 };
      expect(await h.store.closeRound('r5', 'fence', 1, closure)).toEqual({ kind: 'closed' });
      expect(await h.other.recordDecision('r5', 'fence', 1, approve('U0A'), 1)).toEqual({
        kind: 'closed',
        closed: closure,
      });

      await h.store.recordDecision('r5', 'fence', 2, approve('U0A'), 1);
      expect(await h.other.closeRound('r5', 'fence', 2, closure)).toEqual({
        kind: 'decided',
        round: { decisions: [approve('U0A')], final: approve('U0A') },
      });
    });

    it('records exactly one settling decision out of fifty concurrent ones', async () => {
      const users = Array.from({ length: 50 }, (_, i) => `U0USER${i}`);
      const results = await Promise.all(
        users.map((user, i) =>
          (i % 2 === 0 ? h.store : h.other).recordDecision('r6', 'fence', 1, approve(user, 1000 + i), 1),
        ),
      );
      const recorded = results.filter((r) => r.kind === 'recorded');
      expect(recorded).toHaveLength(1);
      const winner = recorded[0]?.kind === 'recorded' ? recorded[0].round.final : undefined;
      for (const result of results) {
        if (result.kind === 'already-decided') expect(result.by).toEqual(winner);
      }
      expect((await h.store.readRound('r6', 'fence', 1)).decisions).toHaveLength(1);
    });

    it('keeps the first abort request and hands out each resume request once', async () => {
      const first = { user: 'U0A', at: 1 };
      expect(await h.store.abortRequest('r7')).toBeUndefined();
      expect(await h.store.requestAbort('r7', first)).toEqual(first);
      expect(await h.other.requestAbort('r7', { user: 'U0B', at: 2 })).toEqual(first);
      expect(await h.other.abortRequest('r7')).toEqual(first);

      await h.store.requestResume('r7', { user: 'U0A', at: 3 });
      await h.store.requestResume('r7', { user: 'U0B', at: 4 });
      expect(await h.other.takeResume('r7')).toEqual({ user: 'U0B', at: 4 });
      expect(await h.store.takeResume('r7')).toBeUndefined();
    });

    it('appends audit entries with who, when and what, and reads them in order', async () => {
      await h.store.appendAudit('r8', { at: 10, who: 'U0REQ', what: 'run-started' });
      await h.store.appendAudit('r8', {
        at: 11,
        who: 'engine:bot-a',
        what: 'step-output',
        stepId: 'one',
        detail: 'ok',
      });
      await h.other.appendAudit('r8', {
        at: 12,
        who: 'U0A',
        what: 'decision',
        stepId: 'one',
        detail: 'approve',
      });
      const entries = await h.other.readAudit('r8');
      expect(entries.map(({ id: _id, ...rest }) => rest)).toEqual([
        { runId: 'r8', at: 10, who: 'U0REQ', what: 'run-started' },
        { runId: 'r8', at: 11, who: 'engine:bot-a', what: 'step-output', stepId: 'one', detail: 'ok' },
        { runId: 'r8', at: 12, who: 'U0A', what: 'decision', stepId: 'one', detail: 'approve' },
      ]);
      expect(new Set(entries.map((e) => e.id)).size).toBe(3);
      expect(await h.store.readAudit('r8', 2)).toHaveLength(2);
      expect(await h.store.readAudit('no-such-run')).toEqual([]);
    });

    it('notifies subscribers in other replicas that a run changed, until they unsubscribe', async () => {
      const seen: string[] = [];
      const unsubscribe = await h.other.subscribe((runId) => seen.push(runId));
      await h.store.publish('r9');
      await eventually(() => seen.includes('r9'), 'the notification');
      await unsubscribe();
      await h.store.publish('r10');
      await h.store.publish('r9');
      // A marker published to a fresh subscriber proves the earlier messages had time to arrive.
      const marker: string[] = [];
      const stop = await h.other.subscribe((runId) => marker.push(runId));
      await h.store.publish('marker');
      await eventually(() => marker.includes('marker'), 'the marker');
      await stop();
      expect(seen).toEqual(['r9']);
    });
  });
}
