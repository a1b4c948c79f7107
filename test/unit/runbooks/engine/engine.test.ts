import { afterEach, describe, expect, it } from 'vitest';
import type { CellopsConfig } from '../../../../src/config/config.js';
import { InputError, NotAuthorizedError, SafetyGateError } from '../../../../src/errors.js';
import { createMemoryLock } from '../../../../src/locks/memory-lock.js';
import { LockBusyError, LockLostError, type RunLock } from '../../../../src/locks/types.js';
import { createApprovalPolicy } from '../../../../src/runbooks/approval-policy.js';
import { createEngine, type EngineOptions } from '../../../../src/runbooks/engine/engine.js';
import { createMemoryRunStore } from '../../../../src/runbooks/engine/memory-run-store.js';
import type { RunStore } from '../../../../src/runbooks/engine/run-store.js';
import type {
  Engine,
  RunbookPorts,
  RunEvent,
  RunObserver,
  RunRecord,
} from '../../../../src/runbooks/types.js';
import { ManualClock } from '../../../fakes/manual-clock.js';
import { RecordingLogger } from '../../../fakes/recording-logger.js';
import { APPROVER_A, APPROVER_B, OPERATOR, STRANGER, testConfig } from '../../../support/bot-fixtures.js';
import {
  countingRunbook,
  memoryCounter,
  waitForAbort,
  type CountingStep,
} from '../../../support/counting-runbook.js';

const MINUTE = 60_000;
/** Members of the on-call user group S0ONCALL: fifty approvers for the concurrency case. */
const ONCALL = Array.from({ length: 50 }, (_, i) => `U0ONCALL${i}`);

interface Setup {
  readonly engine: Engine;
  readonly clock: ManualClock;
  readonly store: RunStore;
  readonly lock: RunLock;
  readonly counts: Map<string, number>;
  readonly attempts: Map<string, number>;
  readonly undone: string[];
  readonly events: { run: RunRecord; event: RunEvent }[];
  readonly logger: RecordingLogger;
  /** Another replica on the same store and lock (a different process after a crash). */
  replica(options?: { version?: number; ownerId?: string }): Engine;
}

const open: Engine[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((engine) => engine.close()));
});

function setup(
  steps: readonly CountingStep[],
  extra: {
    config?: CellopsConfig;
    lock?: (clock: ManualClock) => RunLock;
    observer?: RunObserver;
    options?: EngineOptions;
  } = {},
): Setup {
  const clock = new ManualClock();
  const store = createMemoryRunStore({ clock });
  const lock = extra.lock ? extra.lock(clock) : createMemoryLock({ clock });
  const counter = memoryCounter();
  const attempts = new Map<string, number>();
  const undone: string[] = [];
  const events: { run: RunRecord; event: RunEvent }[] = [];
  const logger = new RecordingLogger();
  const config = extra.config ?? testConfig();
  const policy = createApprovalPolicy({
    slack: config.slack,
    directory: { usergroupMembers: async (id) => (id === 'S0ONCALL' ? ONCALL : []) },
  });
  const observer: RunObserver = extra.observer ?? {
    onRunEvent: async (run, event) => {
      events.push({ run, event });
    },
  };
  // Counting steps use no port but the clock.
  const ports = { clock } as unknown as RunbookPorts;
  const make = (version: number, ownerId: string): Engine => {
    const engine = createEngine({
      store,
      lock,
      runbooks: [countingRunbook({ steps, counter, undone, attempts, version })],
      ports,
      config,
      policy,
      observer,
      clock,
      logger,
      ownerId,
      options: { pollMs: 1_000, graceMs: 1_000, ...extra.options },
    });
    open.push(engine);
    return engine;
  };
  return {
    engine: make(1, 'bot-1'),
    clock,
    store,
    lock,
    counts: counter.counts,
    attempts,
    undone,
    events,
    logger,
    replica: (options = {}) => make(options.version ?? 1, options.ownerId ?? 'bot-2'),
  };
}

/** Lets the engine work (promises settle, no time passes) until `predicate` holds. */
async function until(s: Setup, predicate: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await predicate()) return;
    await s.clock.advance(0);
  }
  throw new Error(`never happened: ${what}`);
}

async function runOf(s: Setup, id: string): Promise<RunRecord> {
  const run = await s.store.loadRun(id);
  if (!run) throw new Error(`no run ${id}`);
  return run;
}

async function untilStatus(s: Setup, id: string, status: RunRecord['status']): Promise<RunRecord> {
  await until(s, async () => (await runOf(s, id)).status === status, `run ${id} ${status}`);
  return runOf(s, id);
}

function step(run: RunRecord, id: string) {
  const found = run.steps.find((st) => st.id === id);
  if (!found) throw new Error(`no step ${id}`);
  return found;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

const types = (s: Setup) => s.events.map((e) => e.event.type);
const start = (s: Setup, requester = OPERATOR, dryRun = false) =>
  s.engine.start({ runbook: 'counting', params: { node: 'cn1' }, requester, dryRun });

describe('engine: a run from start to end', () => {
  it('runs every step once, in order, saves and audits each, and releases the lock at the end', async () => {
    const s = setup([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    const started = await start(s);
    expect(started).toMatchObject({
      runbook: 'counting',
      runbookVersion: 1,
      requester: OPERATOR,
      node: 'cn1',
    });
    expect(started.steps.map((st) => st.description)).toEqual([
      'increment the counter a for cn1',
      'increment the counter b for cn1',
      'increment the counter c for cn1',
    ]);

    const run = await untilStatus(s, started.id, 'succeeded');
    expect([...s.counts.entries()]).toEqual([
      ['a', 1],
      ['b', 1],
      ['c', 1],
    ]);
    expect(run.steps.map((st) => st.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(run.facts).toEqual({ 'a.count': 1, 'b.count': 1, 'c.count': 1 });
    expect(run.fencingToken).toBe(1);
    expect(await s.lock.holder('failover')).toBeUndefined();
    expect(await s.store.activeRunIds()).toEqual([]);

    await until(s, () => types(s).includes('run-finished'), 'run-finished event');
    expect(types(s)).toEqual([
      'run-started',
      ...['a', 'b', 'c'].flatMap(() => ['step-started', 'step-finished']),
      'run-finished',
    ]);
    const audit = await s.store.readAudit(started.id);
    expect(audit[0]).toMatchObject({ who: OPERATOR, what: 'run-started' });
    expect(audit.filter((e) => e.what === 'step-started').map((e) => e.stepId)).toEqual(['a', 'b', 'c']);
    expect(audit.at(-1)).toMatchObject({ who: 'engine:bot-1', what: 'run-finished', detail: 'succeeded' });
  });

  it('keeps the thread an observer records as soon as the run starts, in the run and the lock holder', async () => {
    const late: { engine?: Engine } = {};
    const thread = { channel: 'C0ALERTS', ts: '1700000000.000001' };
    const s = setup([{ id: 'a' }, { id: 'fence', destructive: true }], {
      observer: {
        // Slack answers a post at once: the presenter records the thread while the engine is starting.
        onRunEvent: async (run, event) => {
          if (event.type === 'run-started') await late.engine?.setThread(run.id, thread);
        },
      },
    });
    late.engine = s.engine;
    const started = await start(s);
    const waiting = await untilStatus(s, started.id, 'waiting-approval');
    expect(waiting.thread).toEqual(thread);
    expect((await s.lock.holder('failover'))?.thread).toEqual(thread);
  });

  it('refuses bad parameters, unknown runbooks and users who may not start, and nothing runs', async () => {
    const s = setup([{ id: 'a' }]);
    const bad = await rejection(
      s.engine.start({ runbook: 'counting', params: { node: 'CN 1' }, requester: OPERATOR }),
    );
    expect(bad).toBeInstanceOf(InputError);
    expect((bad as Error).message).toBe('bad parameters for counting: node: must be a node name such as cn1');
    const unknown = await rejection(s.engine.start({ runbook: 'nope', params: {}, requester: OPERATOR }));
    expect((unknown as Error).message).toBe('unknown runbook "nope" (known: counting)');
    const stranger = await rejection(start(s, STRANGER));
    expect(stranger).toBeInstanceOf(NotAuthorizedError);
    expect((stranger as Error).message).toContain('may not start runbooks');
    expect(await s.engine.list(10)).toEqual([]);
    expect(s.counts.size).toBe(0);
  });

  it('renders the plan with no side effects', async () => {
    const s = setup([{ id: 'a' }, { id: 'fence', destructive: true }]);
    expect(await s.engine.plan('counting', { node: 'cn1' })).toEqual({
      summary: 'counting on cn1',
      steps: [
        { id: 'a', title: 'Count a', description: 'increment the counter a for cn1', destructive: false },
        {
          id: 'fence',
          title: 'Count fence',
          description: 'increment the counter fence for cn1',
          destructive: true,
        },
      ],
    });
    expect(s.counts.size).toBe(0);
    expect(await s.engine.list(10)).toEqual([]);
  });

  it('logs observer failures and never lets them stop the run', async () => {
    const s = setup([{ id: 'a' }], {
      observer: {
        onRunEvent: async () => {
          throw new Error('slack is down');
        },
      },
    });
    const run = await start(s);
    await untilStatus(s, run.id, 'succeeded');
    await until(s, () => s.logger.text().includes('the run observer failed'), 'a logged observer failure');
  });

  it('keeps step output redacted and as a bounded tail, with every line in the audit stream', async () => {
    const nodekey = '4c0883a69102937d6231471b5dbb6204fe512961708279f4c4b1b0e5f8f4a1b2';
    const s = setup([{ id: 'a', output: `one\ntwo\nthree\nkey ${nodekey}\nfive` }], {
      options: { outputLines: 3 },
    });
    const run = await start(s);
    const done = await untilStatus(s, run.id, 'succeeded');
    expect(step(done, 'a').output).toEqual(['three', 'key [redacted]', 'five']);
    const lines = (await s.store.readAudit(run.id)).filter((e) => e.what === 'step-output');
    expect(lines.map((e) => e.detail)).toEqual(['one', 'two', 'three', 'key [redacted]', 'five']);
    expect(JSON.stringify(s.events)).not.toContain(nodekey);
  });
});

describe('engine: approvals', () => {
  it('waits for approval before a destructive step, says when the request expires, and runs it once approved', async () => {
    const s = setup([{ id: 'a' }, { id: 'fence', destructive: true }, { id: 'c' }]);
    const t0 = s.clock.now();
    const run = await start(s);
    const waiting = await untilStatus(s, run.id, 'waiting-approval');
    expect(step(waiting, 'fence')).toMatchObject({ status: 'waiting-approval', approvalRound: 1 });
    expect(s.counts.get('fence')).toBeUndefined();
    const requested = s.events.find((e) => e.event.type === 'approval-requested')?.event;
    expect(requested).toEqual({ type: 'approval-requested', stepId: 'fence', expiresAt: t0 + 15 * MINUTE });

    const outcome = await s.engine.decide(run.id, 'fence', APPROVER_A, 'approve', 1);
    expect(outcome).toMatchObject({ kind: 'recorded', final: true });
    const done = await untilStatus(s, run.id, 'succeeded');
    expect(s.counts.get('fence')).toBe(1);
    expect(step(done, 'fence').approvals).toEqual([{ user: APPROVER_A, decision: 'approve', at: t0 }]);
    const decided = s.events.filter((e) => e.event.type === 'approval-decided');
    expect(decided).toHaveLength(1);
    expect(await s.store.readAudit(run.id)).toContainEqual(
      expect.objectContaining({ who: APPROVER_A, what: 'decision', stepId: 'fence' }),
    );
  });

  it('waits for an approver to confirm a manual step too', async () => {
    const s = setup([{ id: 'power-off', kind: 'manual' }]);
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    await s.engine.decide(run.id, 'power-off', APPROVER_B, 'approve');
    await untilStatus(s, run.id, 'succeeded');
  });

  it('records one decision out of fifty concurrent clicks; the others answer who decided', async () => {
    const s = setup([{ id: 'fence', destructive: true }]);
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    const outcomes = await Promise.all(
      ONCALL.map((user) => s.engine.decide(run.id, 'fence', user, 'approve', 1)),
    );
    const recorded = outcomes.filter((o) => o.kind === 'recorded');
    expect(recorded).toHaveLength(1);
    const winner = recorded[0]?.kind === 'recorded' ? step(recorded[0].run, 'fence').approvals[0] : undefined;
    for (const outcome of outcomes) {
      if (outcome.kind !== 'recorded') expect(outcome).toEqual({ kind: 'already-decided', by: winner });
    }
    const repeat = await s.engine.decide(run.id, 'fence', ONCALL[7] ?? '', 'approve', 1);
    expect(repeat).toEqual({ kind: 'already-decided', by: winner });
    await untilStatus(s, run.id, 'succeeded');
    expect(s.counts.get('fence')).toBe(1);
    expect(s.events.filter((e) => e.event.type === 'approval-decided')).toHaveLength(1);
  });

  it('refuses the requester under four-eyes and unknown users, and records nothing', async () => {
    const s = setup([{ id: 'fence', destructive: true }]);
    const run = await start(s, APPROVER_A);
    await untilStatus(s, run.id, 'waiting-approval');
    const own = await rejection(s.engine.decide(run.id, 'fence', APPROVER_A, 'approve'));
    expect(own).toBeInstanceOf(NotAuthorizedError);
    expect((own as Error).message).toContain('fourEyes');
    const stranger = await rejection(s.engine.decide(run.id, 'fence', STRANGER, 'approve'));
    expect(stranger).toBeInstanceOf(NotAuthorizedError);
    expect((stranger as Error).message).toContain('not in slack.approvers');
    expect(await s.store.readRound(run.id, 'fence', 1)).toEqual({ decisions: [] });
    expect((await runOf(s, run.id)).status).toBe('waiting-approval');
  });

  it('needs N distinct approvers when slack.approvals is N', async () => {
    const s = setup([{ id: 'fence', destructive: true }], { config: testConfig({ approvals: 2 }) });
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    expect(await s.engine.decide(run.id, 'fence', APPROVER_A, 'approve')).toMatchObject({
      kind: 'recorded',
      final: false,
    });
    expect(await s.engine.decide(run.id, 'fence', APPROVER_A, 'approve')).toMatchObject({
      kind: 'already-decided',
      by: { user: APPROVER_A },
    });
    await until(
      s,
      async () => step(await runOf(s, run.id), 'fence').approvals.length === 1,
      'one approval saved',
    );
    expect(s.counts.get('fence')).toBeUndefined();
    expect(await s.engine.decide(run.id, 'fence', APPROVER_B, 'approve')).toMatchObject({
      kind: 'recorded',
      final: true,
    });
    const done = await untilStatus(s, run.id, 'succeeded');
    expect(step(done, 'fence').approvals.map((a) => a.user)).toEqual([APPROVER_A, APPROVER_B]);
  });

  it('pauses the run when an approval expires; resume asks again in a new round and continues', async () => {
    const s = setup([{ id: 'fence', destructive: true }, { id: 'c' }]);
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    await s.clock.advance(15 * MINUTE - 1);
    expect((await runOf(s, run.id)).status).toBe('waiting-approval');
    await s.clock.advance(1);
    const paused = await untilStatus(s, run.id, 'paused');
    expect(paused.pauseReason).toContain('approval of step fence (Count fence) expired after 15m');
    expect(step(paused, 'fence')).toMatchObject({ status: 'pending', approvalRound: 1 });
    expect(types(s)).toEqual(expect.arrayContaining(['approval-expired', 'run-paused']));
    expect(await s.engine.decide(run.id, 'fence', APPROVER_A, 'approve', 1)).toEqual({
      kind: 'not-waiting',
      status: 'pending',
    });
    expect(await s.lock.holder('failover')).toMatchObject({ runId: run.id });

    await s.engine.resume(run.id, OPERATOR);
    await until(s, async () => step(await runOf(s, run.id), 'fence').approvalRound === 2, 'a second round');
    expect(types(s)).toContain('run-resumed');
    expect((await runOf(s, run.id)).status).toBe('waiting-approval');
    expect(await s.engine.decide(run.id, 'fence', APPROVER_A, 'approve', 1)).toEqual({
      kind: 'not-waiting',
      status: 'waiting-approval',
    });
    await s.engine.decide(run.id, 'fence', APPROVER_A, 'approve', 2);
    await untilStatus(s, run.id, 'succeeded');
    expect(s.counts.get('fence')).toBe(1);
  });

  it('refuses to resume a run that is not paused', async () => {
    const s = setup([{ id: 'fence', destructive: true }]);
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    const error = await rejection(s.engine.resume(run.id, OPERATOR));
    expect((error as Error).message).toBe(
      `run ${run.id} is waiting-approval; only a paused run can be resumed`,
    );
  });
});

describe('engine: abort, failure and undo', () => {
  it('abort stops before the next step and runs completed undos in reverse, not hiding the first undo error', async () => {
    const s = setup([
      { id: 'a', undo: true },
      { id: 'b', undo: true, undoFails: true },
      { id: 'c', undo: true },
      { id: 'slow', undo: true, before: (ctx) => waitForAbort(ctx.signal) },
      { id: 'd' },
    ]);
    const run = await start(s);
    await until(s, () => s.attempts.get('slow') === 1, 'slow started');
    const aborted = await s.engine.abort(run.id, APPROVER_B);
    expect(aborted.status).toBe('aborted');
    expect(s.undone).toEqual(['c', 'b', 'a']);
    expect(s.counts.get('slow')).toBeUndefined();
    expect(s.counts.get('d')).toBeUndefined();
    expect(aborted.steps.map((st) => st.status)).toEqual([
      'undone',
      'succeeded',
      'undone',
      'aborted',
      'pending',
    ]);
    expect(aborted.error).toBe('undo of step b (Count b) failed: undo of b broke');
    expect(await s.lock.holder('failover')).toBeUndefined();
    const audit = await s.store.readAudit(run.id);
    expect(audit).toContainEqual(expect.objectContaining({ who: APPROVER_B, what: 'abort-requested' }));
  });

  it('an abort during a destructive step lets it finish, then stops before the next step and undoes it too', async () => {
    const s = setup([
      { id: 'a', undo: true },
      { id: 'swap', destructive: true, undo: true, before: (ctx) => s.clock.sleep(10_000, ctx.signal) },
      { id: 'b' },
    ]);
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    await s.engine.decide(run.id, 'swap', APPROVER_A, 'approve');
    await until(s, () => s.attempts.get('swap') === 1, 'swap started');
    const aborting = s.engine.abort(run.id, APPROVER_B);
    await s.clock.advance(10_000);
    const aborted = await aborting;
    expect(aborted.status).toBe('aborted');
    expect(s.counts.get('swap')).toBe(1);
    expect(s.counts.get('b')).toBeUndefined();
    expect(s.undone).toEqual(['swap', 'a']);
  });

  it('retries a destructive step only when its check says the failed attempt did not act', async () => {
    let failures = 0;
    const s = setup([
      {
        id: 'swap',
        destructive: true,
        retry: { attempts: 3, backoffMs: 1_000 },
        after: async () => {
          // The side effect happened, then the connection dropped before the step could say so.
          if (failures++ === 0) throw new Error('connection lost');
        },
      },
    ]);
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    await s.engine.decide(run.id, 'swap', APPROVER_A, 'approve');
    const done = await untilStatus(s, run.id, 'succeeded');
    expect(s.counts.get('swap')).toBe(1);
    expect(s.attempts.get('swap')).toBe(1);
    expect(step(done, 'swap').status).toBe('succeeded');
  });

  it('an Abort click while waiting for approval aborts the run and undoes what was done', async () => {
    const s = setup([{ id: 'a', undo: true }, { id: 'fence', destructive: true }, { id: 'c' }]);
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    expect(await s.engine.decide(run.id, 'fence', OPERATOR, 'abort')).toMatchObject({
      kind: 'recorded',
      final: true,
    });
    const done = await untilStatus(s, run.id, 'aborted');
    expect(s.undone).toEqual(['a']);
    expect(step(done, 'fence').status).toBe('aborted');
    expect(s.counts.get('fence')).toBeUndefined();
  });

  it('a failing step fails the run, undoes completed steps in reverse and reports its own error first', async () => {
    const s = setup([
      { id: 'a', undo: true },
      { id: 'b', undo: true, undoFails: true },
      {
        id: 'c',
        before: async () => {
          throw new Error('kcnd refused to stop');
        },
      },
      { id: 'd' },
    ]);
    const run = await start(s);
    const failed = await untilStatus(s, run.id, 'failed');
    expect(failed.error).toBe(
      'step c (Count c) failed: kcnd refused to stop; undo of step b (Count b) failed: undo of b broke',
    );
    expect(s.undone).toEqual(['b', 'a']);
    expect(failed.steps.map((st) => st.status)).toEqual(['undone', 'succeeded', 'failed', 'pending']);
    expect(s.counts.get('d')).toBeUndefined();
  });

  it('a destructive step failing half way runs its own undo first, then the completed undos in reverse', async () => {
    const s = setup([
      { id: 'a', undo: true },
      {
        id: 'swap',
        destructive: true,
        undo: true,
        after: async () => {
          // The side effect happened (the counter moved), then the step broke before it finished.
          throw new Error('checksum of the written key did not match');
        },
      },
      { id: 'c', undo: true },
    ]);
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    await s.engine.decide(run.id, 'swap', APPROVER_A, 'approve');
    const failed = await untilStatus(s, run.id, 'failed');
    expect(s.counts.get('swap')).toBe(1);
    expect(s.undone).toEqual(['swap', 'a']);
    expect(failed.steps.map((st) => st.status)).toEqual(['undone', 'failed', 'pending']);
    expect(step(failed, 'swap').output).toContain('undo: finished (the step had failed part way)');
    expect(failed.error).toBe('step swap (Count swap) failed: checksum of the written key did not match');
  });

  it('a failing step that is not destructive, or never began, has no undo of its own run', async () => {
    const s = setup([
      { id: 'a', undo: true },
      {
        id: 'look',
        undo: true,
        before: async () => {
          throw new Error('probe failed');
        },
      },
    ]);
    const run = await start(s);
    await untilStatus(s, run.id, 'failed');
    expect(s.undone).toEqual(['a']);
  });

  it("a half-done step's failing undo is reported after its own error, never instead of it", async () => {
    const s = setup([
      {
        id: 'swap',
        destructive: true,
        undo: true,
        undoFails: true,
        after: async () => {
          throw new Error('half way');
        },
      },
    ]);
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    await s.engine.decide(run.id, 'swap', APPROVER_A, 'approve');
    const failed = await untilStatus(s, run.id, 'failed');
    expect(failed.error).toBe(
      'step swap (Count swap) failed: half way; undo of step swap (Count swap) failed: undo of swap broke',
    );
    expect(step(failed, 'swap').status).toBe('failed');
  });

  it('retries a failing step with doubling backoff, then goes on', async () => {
    const s = setup([
      {
        id: 'flaky',
        retry: { attempts: 3, backoffMs: 1_000 },
        before: async (_ctx, attempt) => {
          if (attempt < 3) throw new Error(`rpc timeout ${attempt}`);
        },
      },
    ]);
    const run = await start(s);
    await until(s, () => s.attempts.get('flaky') === 1, 'first attempt');
    await s.clock.advance(999);
    expect(s.attempts.get('flaky')).toBe(1);
    await s.clock.advance(1);
    expect(s.attempts.get('flaky')).toBe(2);
    await s.clock.advance(1_999);
    expect(s.attempts.get('flaky')).toBe(2);
    await s.clock.advance(1);
    const done = await untilStatus(s, run.id, 'succeeded');
    expect(step(done, 'flaky')).toMatchObject({ attempts: 3 });
    expect(step(done, 'flaky').output).toEqual([
      'attempt 1 of 3 failed: rpc timeout 1; trying again in 1s',
      'attempt 2 of 3 failed: rpc timeout 2; trying again in 2s',
    ]);
  });

  it('does not retry an error marked not retryable', async () => {
    const s = setup([
      {
        id: 'gate',
        retry: { attempts: 3, backoffMs: 1_000 },
        before: async () => {
          throw new SafetyGateError('the standby runs the same nodekey');
        },
      },
    ]);
    const run = await start(s);
    const failed = await untilStatus(s, run.id, 'failed');
    expect(s.attempts.get('gate')).toBe(1);
    expect(failed.error).toBe('step gate (Count gate) failed: the standby runs the same nodekey');
  });

  it('fails a step that runs past its timeout', async () => {
    const s = setup([
      { id: 'slow', timeoutMs: 5_000, before: (ctx) => waitForAbort(ctx.signal) },
      { id: 'b' },
    ]);
    const run = await start(s);
    await until(s, () => s.attempts.get('slow') === 1, 'slow started');
    await s.clock.advance(4_999);
    expect((await runOf(s, run.id)).status).toBe('running');
    await s.clock.advance(1);
    const failed = await untilStatus(s, run.id, 'failed');
    expect(step(failed, 'slow').error).toBe(
      `run of step slow (Count slow) in run ${run.id} did not finish within 5s`,
    );
    expect(s.counts.get('b')).toBeUndefined();
  });

  it('fails a step whose check does not hold after it ran', async () => {
    const s = setup([{ id: 'a', verify: 'false' }, { id: 'b' }]);
    const run = await start(s);
    const failed = await untilStatus(s, run.id, 'failed');
    expect(s.counts.get('a')).toBe(1);
    expect(step(failed, 'a').status).toBe('failed');
    expect(failed.error).toContain('ran, but its check afterwards did not hold');
  });

  it('skips a step whose `when` says it is not needed', async () => {
    const s = setup([{ id: 'confirm', kind: 'manual', when: false }, { id: 'b' }]);
    const run = await start(s);
    const done = await untilStatus(s, run.id, 'succeeded');
    expect(done.steps.map((st) => st.status)).toEqual(['skipped', 'succeeded']);
  });
});

describe('engine: dry run and the lock', () => {
  it('a dry run records the plan and runs only read-only steps, never destructive ones, without the lock', async () => {
    const s = setup([
      { id: 'preflight', readOnly: true },
      { id: 'odd', readOnly: true, destructive: true },
      { id: 'fence', destructive: true },
      { id: 'record' },
    ]);
    const run = await start(s, OPERATOR, true);
    expect(await s.lock.holder('failover')).toBeUndefined();
    const done = await untilStatus(s, run.id, 'succeeded');
    expect([...s.counts.keys()]).toEqual(['preflight']);
    expect(done.steps.map((st) => st.status)).toEqual(['succeeded', 'skipped', 'skipped', 'skipped']);
    expect(done.note).toContain('dry run');
    expect(done.steps.map((st) => st.description)).toHaveLength(4);
  });

  it('refuses a second run while one holds the lock, naming the holder, and starts it once the first ends', async () => {
    const s = setup([{ id: 'fence', destructive: true }]);
    const first = await start(s);
    await untilStatus(s, first.id, 'waiting-approval');
    const busy = await rejection(start(s, APPROVER_B));
    expect(busy).toBeInstanceOf(LockBusyError);
    expect((busy as LockBusyError).holder).toMatchObject({
      runId: first.id,
      requester: OPERATOR,
      node: 'cn1',
    });
    expect((await s.engine.list(10)).map((r) => r.id)).toEqual([first.id]);

    await s.engine.decide(first.id, 'fence', APPROVER_A, 'approve');
    await untilStatus(s, first.id, 'succeeded');
    const second = await start(s, APPROVER_B);
    expect(second.fencingToken).toBe(2);
  });

  it('checks the lock before every step and pauses with the reason when it is lost; resume takes it again', async () => {
    let lost = false;
    const s = setup(
      [
        {
          id: 'a',
          after: async () => {
            lost = true;
          },
        },
        { id: 'b' },
      ],
      {
        lock: (clock) => {
          const base = createMemoryLock({ clock });
          return { ...base, isHeld: async (lease) => !lost && base.isHeld(lease) };
        },
      },
    );
    const run = await start(s);
    const paused = await untilStatus(s, run.id, 'paused');
    expect(paused.pauseReason).toContain('lost the lock failover');
    expect(s.counts.get('b')).toBeUndefined();
    expect(step(paused, 'b').status).toBe('pending');

    // The old lease lapses unrenewed; then resume takes the lock again with a new fencing token.
    await s.clock.advance(31_000);
    lost = false;
    await s.engine.resume(run.id, OPERATOR);
    const done = await untilStatus(s, run.id, 'succeeded');
    expect(s.counts.get('b')).toBe(1);
    expect(done.fencingToken).toBe(2);
  });
});

describe('engine: recovery after the driving process died', () => {
  it('asks again, in a new round, for a destructive step that was in flight, and never re-runs it blind', async () => {
    const s = setup([
      { id: 'a' },
      {
        id: 'fence',
        destructive: true,
        before: async (ctx, attempt) => {
          if (attempt === 1) await waitForAbort(ctx.signal);
        },
      },
      { id: 'c' },
    ]);
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    await s.engine.decide(run.id, 'fence', APPROVER_A, 'approve', 1);
    await until(s, () => s.attempts.get('fence') === 1, 'fence in flight');
    await s.engine.close();
    expect(step(await runOf(s, run.id), 'fence').status).toBe('running');

    const replica = s.replica();
    await replica.recover();
    expect((await runOf(s, run.id)).owner).toBe('bot-1');
    await s.clock.advance(31_000);
    await replica.recover();
    await until(s, async () => step(await runOf(s, run.id), 'fence').approvalRound === 2, 'a fresh round');
    const waiting = await runOf(s, run.id);
    expect(waiting).toMatchObject({ status: 'waiting-approval', owner: 'bot-2', fencingToken: 2 });
    expect(s.attempts.get('fence')).toBe(1);
    // A click on the old round's buttons is stale: it approves nothing.
    expect(await replica.decide(run.id, 'fence', APPROVER_B, 'approve', 1)).toMatchObject({
      kind: 'not-waiting',
    });
    await replica.decide(run.id, 'fence', APPROVER_B, 'approve', 2);
    await untilStatus(s, run.id, 'succeeded');
    expect([...s.counts.entries()]).toEqual([
      ['a', 1],
      ['fence', 1],
      ['c', 1],
    ]);
    expect(await s.store.readAudit(run.id)).toContainEqual(
      expect.objectContaining({ what: 'run-recovered', who: 'engine:bot-2' }),
    );
  });

  it('marks an in-flight step whose check holds as done without running it again', async () => {
    const s = setup([{ id: 'slow', after: (ctx) => waitForAbort(ctx.signal) }, { id: 'b' }]);
    const run = await start(s);
    await until(s, () => s.counts.get('slow') === 1, 'slow acted');
    await s.engine.close();
    await s.clock.advance(31_000);
    await s.replica().recover();
    const done = await untilStatus(s, run.id, 'succeeded');
    expect(s.attempts.get('slow')).toBe(1);
    expect(step(done, 'slow').output).toContain(
      'its check holds after the interruption: done, not run again',
    );
    expect(s.counts.get('b')).toBe(1);
  });

  it('runs an in-flight step again when it is not destructive and its check does not hold', async () => {
    const s = setup([
      {
        id: 'slow',
        before: async (ctx, attempt) => {
          if (attempt === 1) await waitForAbort(ctx.signal);
        },
      },
    ]);
    const run = await start(s);
    await until(s, () => s.attempts.get('slow') === 1, 'slow started');
    await s.engine.close();
    await s.clock.advance(31_000);
    await s.replica().recover();
    await untilStatus(s, run.id, 'succeeded');
    expect(s.attempts.get('slow')).toBe(2);
    expect(s.counts.get('slow')).toBe(1);
  });

  it('pauses with a message instead of resuming a run recorded under another runbook version', async () => {
    const s = setup([
      { id: 'a', undo: true },
      { id: 'fence', destructive: true },
    ]);
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    await s.engine.close();
    await s.clock.advance(31_000);
    const newer = s.replica({ version: 2 });
    await newer.recover();
    const paused = await untilStatus(s, run.id, 'paused');
    expect(paused.pauseReason).toContain('recorded under counting version 1 and this bot runs version 2');
    const resume = await rejection(newer.resume(run.id, OPERATOR));
    expect(resume).toBeInstanceOf(InputError);
    const aborted = await newer.abort(run.id, OPERATOR);
    expect(aborted.status).toBe('aborted');
    expect(aborted.error).toContain('undos not run');
    expect(s.undone).toEqual([]);
  });
});

describe('engine: the checks right before a step acts', () => {
  it('checks the lock again after a long approval wait: lost meanwhile, the step does not run and needs a fresh approval', async () => {
    let lost = false;
    const s = setup([{ id: 'a' }, { id: 'fence', destructive: true }], {
      lock: (clock) => {
        const base = createMemoryLock({ clock });
        return { ...base, isHeld: async (lease) => !lost && base.isHeld(lease) };
      },
    });
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    // The lock goes (a Redis failover dropped the key) between two renewals, and the approval lands then.
    lost = true;
    await s.engine.decide(run.id, 'fence', APPROVER_A, 'approve', 1);
    const paused = await untilStatus(s, run.id, 'paused');
    expect(s.counts.get('fence')).toBeUndefined();
    expect(paused.pauseReason).toContain('lost the lock failover');
    expect(step(paused, 'fence')).toMatchObject({ status: 'pending', approvalRound: 1 });

    await s.clock.advance(31_000);
    lost = false;
    await s.engine.resume(run.id, OPERATOR);
    await until(s, async () => step(await runOf(s, run.id), 'fence').approvalRound === 2, 'a fresh round');
    expect(s.counts.get('fence')).toBeUndefined();
    await s.engine.decide(run.id, 'fence', APPROVER_A, 'approve', 2);
    await untilStatus(s, run.id, 'succeeded');
    expect(s.counts.get('fence')).toBe(1);
  });

  it('an abort recorded by another replica while the approval settles stops the run before the step acts', async () => {
    const s = setup([
      { id: 'a', undo: true },
      { id: 'fence', destructive: true },
    ]);
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    // The other replica's /cell abort lands between the driver's abort check and its read of the round.
    const readRound = s.store.readRound.bind(s.store);
    s.store.readRound = async (...args) => {
      const round = await readRound(...args);
      if (round.final) await s.store.requestAbort(run.id, { user: APPROVER_B, at: s.clock.now() });
      return round;
    };
    await s.engine.decide(run.id, 'fence', APPROVER_A, 'approve', 1);
    const aborted = await untilStatus(s, run.id, 'aborted');
    expect(s.counts.get('fence')).toBeUndefined();
    expect(step(aborted, 'fence').status).toBe('aborted');
    expect(s.undone).toEqual(['a']);
  });

  it('asks again for a destructive step approved before its driver died but not yet started', async () => {
    const s = setup([{ id: 'fence', destructive: true }]);
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    await s.engine.close();
    // As saved by a driver that died right after recording the approval, before the step started.
    const record = await runOf(s, run.id);
    record.status = 'running';
    Object.assign(step(record, 'fence'), { status: 'approved', approvals: [] });
    await s.store.saveRun(record);

    // Hours later a replica takes the run over: the approval was for then, not for now.
    await s.clock.advance(3 * 60 * MINUTE);
    await s.replica().recover();
    await until(s, async () => step(await runOf(s, run.id), 'fence').approvalRound === 2, 'a fresh round');
    expect((await runOf(s, run.id)).status).toBe('waiting-approval');
    expect(s.counts.get('fence')).toBeUndefined();
  });
});

describe('engine: an approval that expired', () => {
  it('refuses a click after the request expired, even while no driver has paused the run yet', async () => {
    const s = setup([{ id: 'fence', destructive: true }]);
    const run = await start(s);
    const waiting = await untilStatus(s, run.id, 'waiting-approval');
    const expiresAt = step(waiting, 'fence').approvalExpiresAt ?? 0;
    // The driving process dies; the request expires before anyone takes the run over.
    await s.engine.close();
    await s.clock.advance(15 * MINUTE + 1);
    const replica = s.replica();
    expect(await replica.decide(run.id, 'fence', APPROVER_A, 'approve', 1)).toEqual({
      kind: 'expired',
      expiredAt: expiresAt,
    });
    expect(await s.store.readRound(run.id, 'fence', 1)).toEqual({ decisions: [] });

    await replica.recover();
    const paused = await untilStatus(s, run.id, 'paused');
    expect(paused.pauseReason).toContain('expired');
    expect(s.counts.get('fence')).toBeUndefined();
  });

  it('does not act on a settling approval recorded after the expiry (a replica with a slow clock)', async () => {
    const s = setup([{ id: 'fence', destructive: true }]);
    const run = await start(s);
    const waiting = await untilStatus(s, run.id, 'waiting-approval');
    const expiresAt = step(waiting, 'fence').approvalExpiresAt ?? 0;
    await s.engine.close();
    await s.clock.advance(15 * MINUTE + 31_000);
    await s.store.recordDecision(
      run.id,
      'fence',
      1,
      { user: APPROVER_A, decision: 'approve', at: expiresAt + 5_000 },
      1,
    );
    await s.replica().recover();
    const paused = await untilStatus(s, run.id, 'paused');
    expect(paused.pauseReason).toContain('expired');
    expect(s.counts.get('fence')).toBeUndefined();
  });
});

/**
 * A store and a lock that can lose everything at once, as Redis does when it restarts without persistence
 * (or is flushed): every call goes to the current in-memory instance, and wipe() swaps in empty ones.
 */
function volatileRedis(clock: ManualClock): { store: RunStore; lock: RunLock; wipe(): void } {
  let store = createMemoryRunStore({ clock });
  let lock = createMemoryLock({ clock });
  const forward = <T extends object>(current: () => T): T =>
    new Proxy({} as T, { get: (_target, name) => Reflect.get(current(), name) as unknown });
  return {
    store: forward(() => store),
    lock: forward(() => lock),
    wipe: () => {
      store = createMemoryRunStore({ clock });
      lock = createMemoryLock({ clock });
    },
  };
}

describe('engine: Redis restarted without persistence mid-run', () => {
  function volatileSetup(steps: readonly CountingStep[]) {
    const clock = new ManualClock();
    const redis = volatileRedis(clock);
    const counter = memoryCounter();
    const events: { run: RunRecord; event: RunEvent }[] = [];
    const config = testConfig();
    const engine = createEngine({
      store: redis.store,
      lock: redis.lock,
      runbooks: [countingRunbook({ steps, counter })],
      ports: { clock } as unknown as RunbookPorts,
      config,
      policy: createApprovalPolicy({ slack: config.slack, directory: { usergroupMembers: async () => [] } }),
      observer: { onRunEvent: async (run, event) => void events.push({ run, event }) },
      clock,
      logger: new RecordingLogger(),
      ownerId: 'bot-1',
      options: { pollMs: 1_000, graceMs: 1_000 },
    });
    open.push(engine);
    const settle = async (what: string, predicate: () => Promise<boolean>) => {
      for (let i = 0; i < 200; i++) {
        if (await predicate()) return;
        await clock.advance(0);
      }
      throw new Error(`never happened: ${what}`);
    };
    return { clock, redis, counts: counter.counts, events, engine, settle };
  }

  it('a run waiting for approval stops safely, says so, and is recorded again from memory as paused', async () => {
    const v = volatileSetup([{ id: 'a' }, { id: 'fence', destructive: true }]);
    const run = await v.engine.start({ runbook: 'counting', params: { node: 'cn1' }, requester: OPERATOR });
    await v.settle(
      'waiting',
      async () => (await v.redis.store.loadRun(run.id))?.status === 'waiting-approval',
    );

    v.redis.wipe();
    await v.clock.advance(10_000);
    await v.settle('paused', async () => (await v.redis.store.loadRun(run.id))?.status === 'paused');
    const paused = await v.redis.store.loadRun(run.id);
    expect(paused?.pauseReason).toContain('Redis lost');
    expect(paused?.steps.map((st) => st.status)).toEqual(['succeeded', 'pending']);
    expect(await v.redis.store.activeRunIds()).toEqual([run.id]);
    expect(v.events.map((e) => e.event.type)).toContain('run-paused');
    expect(v.counts.get('fence')).toBeUndefined();

    // Resume takes a new lock and asks for the approval again; the run then ends normally.
    await v.engine.resume(run.id, OPERATOR);
    await v.settle(
      'asked again',
      async () => (await v.redis.store.loadRun(run.id))?.status === 'waiting-approval',
    );
    expect(await v.redis.lock.holder('failover')).toMatchObject({ runId: run.id });
    const round = (await v.redis.store.loadRun(run.id))?.steps[1]?.approvalRound ?? 0;
    await v.engine.decide(run.id, 'fence', APPROVER_A, 'approve', round);
    await v.settle('succeeded', async () => (await v.redis.store.loadRun(run.id))?.status === 'succeeded');
    expect(v.counts.get('fence')).toBe(1);
  });

  it('a step that ends just after the loss is saved, and the run pauses before the next step', async () => {
    const holder: { wipe?: () => void } = {};
    const v = volatileSetup([{ id: 'a', after: async () => holder.wipe?.() }, { id: 'b' }]);
    holder.wipe = v.redis.wipe;
    const run = await v.engine.start({ runbook: 'counting', params: { node: 'cn1' }, requester: OPERATOR });
    await v.settle('paused', async () => (await v.redis.store.loadRun(run.id))?.status === 'paused');
    const paused = await v.redis.store.loadRun(run.id);
    expect(paused?.steps.map((st) => st.status)).toEqual(['succeeded', 'pending']);
    expect(paused?.pauseReason).toContain('Redis lost');
    expect(v.counts.get('b')).toBeUndefined();
  });
});

describe('engine: taking over a run that was ending', () => {
  it('finishes failing a run whose driver died while undoing, and never runs the failed step again', async () => {
    const s = setup([{ id: 'a', undo: true }, { id: 'b' }, { id: 'c' }]);
    const run = await start(s);
    await untilStatus(s, run.id, 'succeeded');
    // As saved by a driver that died right after recording that b failed, before its undos and the end.
    const record = await runOf(s, run.id);
    Object.assign(record, { status: 'running', currentStep: 'b' });
    delete record.endedAt;
    Object.assign(step(record, 'b'), { status: 'failed', error: 'kcnd did not start' });
    Object.assign(step(record, 'c'), { status: 'pending' });
    await s.store.saveRun(record);
    await s.store.acquireOwner(run.id, 'bot-dead', 30_000);
    s.counts.clear();

    await s.clock.advance(31_000);
    await s.replica().recover();
    const failed = await untilStatus(s, run.id, 'failed');
    expect(s.counts.size).toBe(0);
    expect(s.undone).toEqual(['a']);
    expect(failed.error).toContain('kcnd did not start');
    expect(failed.steps.map((st) => st.status)).toEqual(['undone', 'failed', 'pending']);
  });

  it('finishes aborting a run aborted by its Abort button whose driver died while undoing', async () => {
    const s = setup([
      { id: 'a', undo: true },
      { id: 'fence', destructive: true },
    ]);
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    await s.engine.close();
    const record = await runOf(s, run.id);
    record.status = 'running';
    Object.assign(step(record, 'fence'), {
      status: 'aborted',
      approvals: [{ user: APPROVER_B, decision: 'abort', at: s.clock.now() }],
    });
    await s.store.saveRun(record);

    await s.clock.advance(31_000);
    await s.replica().recover();
    const aborted = await untilStatus(s, run.id, 'aborted');
    expect(s.counts.get('fence')).toBeUndefined();
    expect(step(aborted, 'fence').approvalRound).toBe(1);
    expect(s.undone).toEqual(['a']);
  });
});

describe('engine: the approval request after the run stopped waiting', () => {
  it('/cell abort while waiting announces the abort on the approval request, with who and when', async () => {
    const s = setup([{ id: 'fence', destructive: true }]);
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    await s.engine.abort(run.id, APPROVER_B);
    await until(s, () => types(s).includes('run-finished'), 'run-finished');
    const decided = s.events.filter((e) => e.event.type === 'approval-decided').map((e) => e.event);
    expect(decided).toEqual([
      {
        type: 'approval-decided',
        stepId: 'fence',
        approval: { user: APPROVER_B, decision: 'abort', at: s.clock.now() },
        final: true,
      },
    ]);
  });

  it('an Abort click is announced once, by the replica that recorded it', async () => {
    const s = setup([{ id: 'fence', destructive: true }]);
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    await s.engine.decide(run.id, 'fence', APPROVER_B, 'abort', 1);
    await until(s, () => types(s).includes('run-finished'), 'run-finished');
    expect(s.events.filter((e) => e.event.type === 'approval-decided')).toHaveLength(1);
  });

  it('a pause while waiting closes the request and says so, so that its buttons go', async () => {
    let lost = false;
    const s = setup([{ id: 'fence', destructive: true }], {
      lock: (clock) => {
        const base = createMemoryLock({ clock });
        return {
          ...base,
          extend: async (lease, ttl) => {
            if (lost) throw new LockLostError(lease.key, 'taken');
            return base.extend(lease, ttl);
          },
        };
      },
    });
    const run = await start(s);
    await untilStatus(s, run.id, 'waiting-approval');
    lost = true;
    await s.clock.advance(10_000);
    await untilStatus(s, run.id, 'paused');
    const closed = s.events.find((e) => e.event.type === 'approval-closed');
    expect(closed?.event).toMatchObject({ type: 'approval-closed', stepId: 'fence', round: 1 });
    expect(closed?.run.steps[0]?.approvalRound).toBe(1);
  });
});
