import { describe, expect, it, vi } from 'vitest';
import { createCommandHandlers, type CommandDeps } from '../../../src/commands/handlers.js';
import { createApprovalPolicy } from '../../../src/runbooks/approval-policy.js';
import { LockBusyError } from '../../../src/locks/types.js';
import { NotAuthorizedError } from '../../../src/errors.js';
import type { Engine, RunRecord } from '../../../src/runbooks/types.js';
import type { MonitorControl } from '../../../src/monitor/types.js';
import { createMemoryRateLimiter } from '../../../src/infra/memory-rate-limiter.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { FakeChat } from '../../fakes/fake-chat.js';
import {
  APPROVER_A,
  CHANNEL,
  OPERATOR,
  STRANGER,
  runRecord,
  testConfig,
} from '../../support/bot-fixtures.js';

function fakeEngine(run: RunRecord = runRecord()) {
  const engine = {
    start: vi.fn<Engine['start']>(async () => run),
    plan: vi.fn<Engine['plan']>(),
    decide: vi.fn<Engine['decide']>(async () => ({ kind: 'recorded' as const, run, final: true })),
    abort: vi.fn<Engine['abort']>(async () => ({ ...run, status: 'aborted' as const })),
    resume: vi.fn<Engine['resume']>(async () => run),
    get: vi.fn<Engine['get']>(async (id) => (id === run.id ? run : undefined)),
    list: vi.fn<Engine['list']>(async () => [run]),
    setThread: vi.fn<Engine['setThread']>(async () => undefined),
    recover: vi.fn<Engine['recover']>(async () => undefined),
    close: vi.fn<Engine['close']>(async () => undefined),
  };
  return engine;
}

function fakeMonitor(): MonitorControl & { [K in keyof MonitorControl]: ReturnType<typeof vi.fn> } {
  return {
    status: vi.fn(async () => ({ at: 0, referenceHeight: 10, nodes: [] })),
    mute: vi.fn(async (_n: string, ms: number) => ({ until: Date.UTC(2026, 10, 26, 3, 0, 0) + ms })),
    unmute: vi.fn(async () => undefined),
    acknowledge: vi.fn(async () => undefined),
  };
}

function setup(overrides: Partial<CommandDeps> = {}) {
  const config = testConfig();
  const chat = new FakeChat();
  const engine = fakeEngine();
  const policy = createApprovalPolicy({ slack: config.slack, directory: chat });
  const deps: CommandDeps = {
    config,
    engine,
    policy,
    chat,
    clock: new ManualClock(),
    logger: new RecordingLogger(),
    ...overrides,
  };
  return { handlers: createCommandHandlers(deps), engine, chat };
}

const req = (text: string, user = OPERATOR) => ({ user, channel: CHANNEL, text });

describe('command handlers', () => {
  it('starts a failover with only parsed, inventory-checked parameters', async () => {
    const { handlers, engine } = setup();
    const reply = await handlers.failover(req('cn1 --mode standby --force'));
    expect(engine.start).toHaveBeenCalledWith({
      runbook: 'failover',
      params: { cn: 'cn1', mode: 'standby', force: true },
      requester: OPERATOR,
      dryRun: false,
    });
    expect(reply.ephemeral).toBe(true);
    expect(reply.text).toContain('Started *failover cn1 (standby → cn1s)* (run `r-abc123`)');
  });

  it('refuses a sixth dry run in a minute from one person, ephemerally, and starts nothing', async () => {
    const clock = new ManualClock();
    const { handlers, engine } = setup({
      clock,
      dryRunLimiter: createMemoryRateLimiter({ clock, limit: 5, windowMs: 60_000 }),
    });
    for (let i = 0; i < 5; i++) await handlers.failover(req('cn1 --dry-run'));
    await clock.advance(20_000);
    const refused = await handlers.failover(req('cn1 --dry-run'));
    expect(refused.ephemeral).toBe(true);
    expect(refused.text).toContain('Too many dry runs: at most 5 a minute per person. Try again in 40s');
    expect(engine.start).toHaveBeenCalledTimes(5);
    // Another person, and a real failover, are not held up by it; the window ends after a minute.
    await handlers.failover(req('cn1 --dry-run', APPROVER_A));
    await handlers.failover(req('cn1'));
    expect(engine.start).toHaveBeenCalledTimes(7);
    await clock.advance(40_000);
    expect((await handlers.failover(req('cn1 --dry-run'))).text).toContain('Started Dry run');
  });

  it('starts a dry run as a dry run', async () => {
    const { handlers, engine } = setup();
    const reply = await handlers.failover(req('cn1 --dry-run'));
    expect(engine.start).toHaveBeenCalledWith(expect.objectContaining({ dryRun: true }));
    expect(reply.text).toContain('nothing is changed');
  });

  for (const text of ['cn9', 'cn1 --yolo', '', 'cn1 cn1s', 'x'.repeat(4_000), 'cn１', 'cn1; rm -rf /']) {
    it(`answers "${text.slice(0, 20)}" with an ephemeral usage error and runs nothing`, async () => {
      const { handlers, engine } = setup();
      const reply = await handlers.failover(req(text));
      expect(reply.ephemeral).toBe(true);
      expect(reply.text).not.toBe('');
      expect(JSON.stringify(reply.blocks)).toContain(
        'Usage: `/failover &lt;cn&gt; [--mode standby|snapshot] [--switchover] [--dry-run] [--force]`',
      );
      expect(engine.start).not.toHaveBeenCalled();
    });
  }

  it('refuses someone who may not start runbooks, saying why', async () => {
    const { handlers, engine } = setup();
    const reply = await handlers.failover(req('cn1', STRANGER));
    expect(reply.text).toContain('Not allowed');
    expect(reply.text).toContain('not an operator or approver');
    expect(engine.start).not.toHaveBeenCalled();
  });

  it('answers lock contention with the holder, node, runbook, since when and a permalink', async () => {
    const engine = fakeEngine();
    engine.start.mockRejectedValue(
      new LockBusyError('cell', {
        requester: APPROVER_A,
        runbook: 'failover',
        node: 'cn2',
        runId: 'r-other',
        since: Date.UTC(2026, 10, 26, 2, 55, 0),
        thread: { channel: CHANNEL, ts: '1700000000.000100' },
      }),
    );
    const { handlers } = setup({ engine });
    const reply = await handlers.failover(req('cn1'));
    const text = JSON.stringify(reply.blocks);
    expect(reply.ephemeral).toBe(true);
    expect(text).toContain('*failover* on *cn2*');
    expect(text).toContain(`started by <@${APPROVER_A}> at 02:55:00 UTC (5m0s ago)`);
    expect(text).toContain(
      `https://example.slack.com/archives/${CHANNEL}/p1700000000000100|Follow its thread`,
    );
  });

  it('says plainly that monitoring is not running', async () => {
    const { handlers } = setup();
    expect(JSON.stringify((await handlers.cell(req('status'))).blocks)).toContain(
      'monitoring is not running',
    );
    expect((await handlers.cell(req('mute cn1 30m'))).text).toContain('Monitoring is not running');
  });

  it('mutes through the monitor, visibly, for an operator', async () => {
    const monitor = fakeMonitor();
    const { handlers } = setup({ monitor });
    const reply = await handlers.cell(req('mute cn1 30m'));
    expect(monitor.mute).toHaveBeenCalledWith('cn1', 1_800_000, OPERATOR);
    expect(reply.ephemeral).toBe(false);
    expect(reply.text).toContain('until 03:30:00 UTC');
    await handlers.cell(req('mute cn1 30m', STRANGER));
    expect(monitor.mute).toHaveBeenCalledTimes(1);
  });

  it('says when a runbook is not available yet', async () => {
    const { handlers, engine } = setup({ runbooks: ['failover'] });
    const reply = await handlers.cell(req('image cn1'));
    expect(reply.text).toContain('`image` runbook is not available');
    expect(engine.start).not.toHaveBeenCalled();
  });

  it('aborts a known run and refuses an unknown one', async () => {
    const { handlers, engine } = setup();
    expect((await handlers.cell(req('abort r-abc123'))).text).toContain('aborted');
    expect(engine.abort).toHaveBeenCalledWith('r-abc123', OPERATOR);
    expect((await handlers.cell(req('abort r-nope'))).text).toContain('There is no run r-nope');
  });
});

describe('run button handler', () => {
  const value = JSON.stringify({ runId: 'r-abc123', stepId: 'fence', round: 0 });

  it('says nothing when the decision was recorded (the message changes instead)', async () => {
    const { handlers, engine } = setup();
    expect(await handlers.runAction({ user: APPROVER_A, decision: 'approve', value })).toBeUndefined();
    expect(engine.decide).toHaveBeenCalledWith('r-abc123', 'fence', APPROVER_A, 'approve', 0);
  });

  it('tells a late clicker who already decided', async () => {
    const engine = fakeEngine();
    engine.decide.mockResolvedValue({
      kind: 'already-decided',
      by: { user: APPROVER_A, decision: 'approve', at: Date.UTC(2026, 10, 26, 12, 3, 4) },
    });
    const { handlers } = setup({ engine });
    const reply = await handlers.runAction({ user: 'U0BBB', decision: 'approve', value });
    expect(reply?.text).toContain(`Already decided: approved by <@${APPROVER_A}> at 12:03:04 UTC`);
  });

  it('tells a clicker whose approval came after the request expired that nothing was recorded', async () => {
    const engine = fakeEngine();
    engine.decide.mockResolvedValue({ kind: 'expired', expiredAt: Date.UTC(2026, 10, 26, 12, 15, 0) });
    const { handlers } = setup({ engine });
    const reply = await handlers.runAction({ user: 'U0BBB', decision: 'approve', value });
    expect(reply?.ephemeral).toBe(true);
    expect(reply?.text).toContain('expired at 12:15:00 UTC; your approval was not recorded');
    expect(reply?.text).toContain('/cell resume r-abc123');
  });

  it('refuses, ephemerally, someone the engine does not allow', async () => {
    const engine = fakeEngine();
    engine.decide.mockRejectedValue(
      new NotAuthorizedError('<@U0CCC> started this run and may not approve it'),
    );
    const { handlers } = setup({ engine });
    const reply = await handlers.runAction({ user: OPERATOR, decision: 'approve', value });
    expect(reply?.ephemeral).toBe(true);
    expect(reply?.text).toContain('Not allowed');
  });

  it('refuses a forged button value without calling the engine', async () => {
    const { handlers, engine } = setup();
    for (const bad of [
      '{',
      '{"runId":"r; rm","stepId":"x","round":0}',
      '[]',
      JSON.stringify({ runId: 'r', stepId: 's', round: -1 }),
    ]) {
      const reply = await handlers.runAction({ user: APPROVER_A, decision: 'approve', value: bad });
      expect(reply?.text).toContain('not valid');
    }
    expect(engine.decide).not.toHaveBeenCalled();
  });

  it('cleans up an ended snapshot run: /cell cleanup and the Clean up button start the cleanup runbook', async () => {
    const ended = runRecord({ node: 'cn2', status: 'failed', facts: { snapshotId: 'snap-1' } });
    const engine = fakeEngine(ended);
    const { handlers } = setup({ engine });
    await handlers.cell(req('cleanup r-abc123'));
    expect(engine.start).toHaveBeenLastCalledWith({
      runbook: 'cleanup',
      params: { runId: 'r-abc123', cn: 'cn2' },
      requester: OPERATOR,
      dryRun: false,
    });
    engine.start.mockClear();
    await handlers.runAction({
      user: OPERATOR,
      decision: 'cleanup',
      value: JSON.stringify({ runId: 'r-abc123', stepId: 'cleanup', round: 0 }),
    });
    expect(engine.start).toHaveBeenCalledTimes(1);
    expect(engine.decide).not.toHaveBeenCalled();
  });

  it('refuses to clean up a run that is still going, and starts nothing', async () => {
    const { handlers, engine } = setup();
    const reply = await handlers.cell(req('cleanup r-abc123'));
    expect(reply.text).toMatch(/is running: clean up only after it has ended/);
    expect(engine.start).not.toHaveBeenCalled();
  });
});
