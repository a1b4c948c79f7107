import { describe, expect, it } from 'vitest';
import { createMemoryMessageRefStore, createRunPresenter } from '../../../src/bot/run-presenter.js';
import type { RunEvent, RunRecord } from '../../../src/runbooks/types.js';
import { FakeChat } from '../../fakes/fake-chat.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { APPROVER_A, CHANNEL, runRecord, stepRecord, testConfig } from '../../support/bot-fixtures.js';

const config = testConfig();

function setup(refs = createMemoryMessageRefStore()) {
  const chat = new FakeChat();
  const clock = new ManualClock();
  const logger = new RecordingLogger();
  const threads: [string, string][] = [];
  const presenter = createRunPresenter({
    chat,
    refs,
    config,
    clock,
    logger,
    // The manual clock never moves on its own: do not wait for refs another replica might be writing.
    refWaitMs: 0,
    recordThread: async (runId, ref) => {
      threads.push([runId, ref.ts]);
    },
  });
  return { chat, clock, logger, presenter, threads, refs };
}

function twoStepRun(): RunRecord {
  return runRecord({
    steps: [
      stepRecord({ id: 'a', title: 'Step A' }),
      stepRecord({ id: 'fence', title: 'Fence', destructive: true, description: 'stop kcnd on cn1' }),
    ],
  });
}

function text(call: { message: { blocks?: readonly unknown[] } }): string {
  return JSON.stringify(call.message.blocks);
}

describe('run presenter', { timeout: 5_000 }, () => {
  it('replaces the buttons of a request closed by a pause with when it closed and how to go on', async () => {
    const { chat, presenter } = setup();
    const run = twoStepRun();
    await presenter.onRunEvent(run, { type: 'run-started' });
    run.status = 'waiting-approval';
    Object.assign(run.steps[1]!, { status: 'waiting-approval', approvalRound: 1 });
    await presenter.onRunEvent(run, {
      type: 'approval-requested',
      stepId: 'fence',
      expiresAt: Date.UTC(2026, 10, 26, 3, 15),
    });
    await presenter.idle();
    const request = chat.posts().find((p) => text(p).includes('run:approve'))!;

    run.status = 'paused';
    run.steps[1]!.status = 'pending';
    await presenter.onRunEvent(run, {
      type: 'approval-closed',
      stepId: 'fence',
      round: 1,
      reason: 'lock lost',
    });
    await presenter.idle();
    const edits = chat.updates().filter((u) => u.ref.ts === request.ref.ts);
    expect(edits).toHaveLength(1);
    const edited = JSON.stringify(edits[0]!.message.blocks);
    expect(edited).not.toContain('run:approve');
    expect(edited).not.toContain('run:abort');
    expect(edited).toContain('Closed at 03:00:00 UTC with no decision');
    expect(edited).toContain(`/cell resume ${run.id}`);
  });

  it('posts the run message, then the plan, steps, approval and result in its thread', async () => {
    const { chat, presenter, threads } = setup();
    const run = twoStepRun();
    const emit = async (event: RunEvent) => presenter.onRunEvent(run, event);
    await emit({ type: 'run-started' });
    await presenter.idle();
    run.thread = chat.posts()[0]!.ref; // the engine recorded it
    run.steps[0]!.status = 'running';
    await emit({ type: 'step-started', stepId: 'a' });
    await presenter.idle();
    run.steps[0]!.status = 'succeeded';
    await emit({ type: 'step-finished', stepId: 'a', status: 'succeeded' });
    run.status = 'waiting-approval';
    run.steps[1]!.status = 'waiting-approval';
    await emit({ type: 'approval-requested', stepId: 'fence', expiresAt: Date.UTC(2026, 10, 26, 3, 15) });
    await presenter.idle();

    const posts = chat.posts();
    const parent = posts[0]!;
    expect(parent.message.channel).toBe(CHANNEL);
    expect(parent.message.threadTs).toBeUndefined();
    expect(threads).toEqual([[run.id, parent.ref.ts]]);
    expect(posts.slice(1).every((p) => p.message.threadTs === parent.ref.ts)).toBe(true);
    expect(text(posts[1]!)).toContain('*Plan:*');
    expect(text(posts[2]!)).toContain('*Step A* started');
    expect(text(posts[3]!)).toContain('succeeded');
    expect(text(posts[4]!)).toContain('Approval needed');
    expect(text(posts[4]!)).toContain('run:approve');

    run.status = 'running';
    run.steps[1]!.status = 'approved';
    const approval = { user: APPROVER_A, decision: 'approve' as const, at: Date.UTC(2026, 10, 26, 3, 1, 2) };
    run.steps[1]!.approvals.push(approval);
    await emit({ type: 'approval-decided', stepId: 'fence', approval, final: true });
    await presenter.idle();
    const approvalUpdates = chat.updates().filter((u) => u.ref.ts === posts[4]!.ref.ts);
    expect(approvalUpdates).toHaveLength(1);
    expect(text(approvalUpdates[0]!)).toContain(`Approved by <@${APPROVER_A}> at 03:01:02 UTC`);
    expect(text(approvalUpdates[0]!)).not.toContain('run:approve');

    run.status = 'succeeded';
    run.endedAt = run.createdAt + 60_000;
    await emit({ type: 'run-finished', status: 'succeeded' });
    await presenter.idle();
    expect(text(chat.posts().at(-1)!)).toContain('succeeded* in 1m0s');
    const runUpdates = chat.updates().filter((u) => u.ref.ts === parent.ref.ts);
    expect(text(runUpdates.at(-1)!)).toContain('succeeded');
  });

  it('records the thread again when the engine record still lacks it after the run started', async () => {
    const { presenter, threads } = setup();
    const run = twoStepRun();
    await presenter.onRunEvent(run, { type: 'run-started' });
    await presenter.idle();
    await presenter.onRunEvent(run, { type: 'step-started', stepId: 'a' });
    await presenter.onRunEvent(run, { type: 'step-finished', stepId: 'a', status: 'succeeded' });
    await presenter.idle();
    expect(threads).toHaveLength(2);
    expect(threads[1]).toEqual(threads[0]);
  });

  it('returns to the engine at once while Slack is slow', async () => {
    const { chat, presenter } = setup();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    chat.gate = () => held;
    const run = twoStepRun();
    await presenter.onRunEvent(run, { type: 'run-started' });
    await presenter.onRunEvent(run, { type: 'step-started', stepId: 'a' });
    expect(chat.calls).toHaveLength(0);
    release();
    await presenter.idle();
    expect(chat.posts().length).toBeGreaterThan(0);
  });

  it('coalesces a burst: one edit of the run message and no start posts for steps already finished', async () => {
    const { chat, presenter } = setup();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    chat.gate = () => held;
    const run = twoStepRun();
    await presenter.onRunEvent(run, { type: 'run-started' });
    for (const id of ['a', 'fence']) {
      await presenter.onRunEvent(run, { type: 'step-started', stepId: id });
      await presenter.onRunEvent(run, { type: 'step-output', stepId: id, line: 'working' });
      await presenter.onRunEvent(run, { type: 'step-finished', stepId: id, status: 'succeeded' });
    }
    run.status = 'succeeded';
    await presenter.onRunEvent(run, { type: 'run-finished', status: 'succeeded' });
    release();
    await presenter.idle();
    const posts = chat.posts().map((p) => text(p));
    expect(posts).toHaveLength(5); // run message, plan, two finished steps, result
    expect(posts.some((p) => p.includes('started ('))).toBe(false);
    expect(chat.updates()).toHaveLength(1);
    expect(text(chat.updates()[0]!)).toContain('succeeded');
  });

  it('lets another replica edit the approval message this one posted, exactly once', async () => {
    const refs = createMemoryMessageRefStore();
    const a = setup(refs);
    const b = setup(refs);
    const run = twoStepRun();
    run.steps[1]!.status = 'waiting-approval';
    await a.presenter.onRunEvent(run, { type: 'run-started' });
    await a.presenter.onRunEvent(run, { type: 'approval-requested', stepId: 'fence', expiresAt: 0 });
    await a.presenter.idle();
    const request = a.chat.posts().at(-1)!;

    const approval = { user: APPROVER_A, decision: 'approve' as const, at: 0 };
    run.steps[1]!.approvals.push(approval);
    await b.presenter.onRunEvent(run, { type: 'approval-decided', stepId: 'fence', approval, final: true });
    await b.presenter.idle();
    const edits = b.chat.updates().filter((u) => u.ref.ts === request.ref.ts);
    expect(edits).toHaveLength(1);
    expect(text(edits[0]!)).toContain('Approved by');
    expect(b.chat.posts()).toHaveLength(0);
  });

  it('keeps the buttons and lists approvers while more approvals are needed', async () => {
    const { chat, presenter } = setup();
    const run = twoStepRun();
    await presenter.onRunEvent(run, { type: 'approval-requested', stepId: 'fence', expiresAt: 0 });
    await presenter.idle();
    const approval = { user: APPROVER_A, decision: 'approve' as const, at: 0 };
    run.steps[1]!.approvals.push(approval);
    await presenter.onRunEvent(run, { type: 'approval-decided', stepId: 'fence', approval, final: false });
    await presenter.idle();
    const edit = chat.updates().find((u) => text(u).includes('Approved so far'));
    expect(edit && text(edit)).toContain('run:approve');
  });

  it('logs a Slack failure and goes on with the next post', async () => {
    const { chat, presenter, logger } = setup();
    let fail = true;
    chat.gate = async () => {
      if (fail) {
        fail = false;
        throw new Error('slack down');
      }
    };
    const run = twoStepRun();
    await presenter.onRunEvent(run, { type: 'run-started' });
    await presenter.onRunEvent(run, { type: 'step-finished', stepId: 'a', status: 'succeeded' });
    await presenter.idle();
    expect(logger.lines.some((l) => l.level === 'warn' && l.msg.includes('could not post'))).toBe(true);
    expect(chat.posts().length).toBeGreaterThan(0);
  });
});
