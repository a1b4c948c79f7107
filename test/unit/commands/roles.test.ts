/**
 * `/cell roles <cn>` and `/cell roles <cn> set served-by=<node> standby=<node|none>`: parsing, the history
 * answer, and bad input refused with a clear ephemeral answer and nothing changed.
 */
import { describe, expect, it, vi } from 'vitest';
import { parseCell, UsageError } from '../../../src/commands/parse.js';
import { createCommandHandlers, type CommandDeps } from '../../../src/commands/handlers.js';
import { createMemoryCellState } from '../../../src/infra/memory-cell-state.js';
import { createApprovalPolicy } from '../../../src/runbooks/approval-policy.js';
import type { Engine } from '../../../src/runbooks/types.js';
import type { CellState } from '../../../src/ports/cell-state.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { FakeChat } from '../../fakes/fake-chat.js';
import { CHANNEL, OPERATOR, runRecord, testConfig } from '../../support/bot-fixtures.js';

const config = testConfig();

/** The UsageError `fn` throws (the test fails when it throws none or another error). */
function refusal(fn: () => unknown): UsageError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(UsageError);
  return thrown as UsageError;
}

describe('/cell roles parser', () => {
  it('reads the history request and a change with a standby or none', () => {
    expect(parseCell('roles cn1', config)).toEqual({ kind: 'roles', cn: 'cn1' });
    expect(parseCell('roles cn1 set served-by=cn1s standby=cn1', config)).toEqual({
      kind: 'set-roles',
      cn: 'cn1',
      servedBy: 'cn1s',
      standby: 'cn1',
    });
    expect(parseCell('roles cn1 set standby=none served-by=cn1s', config)).toEqual({
      kind: 'set-roles',
      cn: 'cn1',
      servedBy: 'cn1s',
    });
  });

  it.each([
    ['roles', /needs a CN/],
    ['roles cn9', /Unknown node "cn9"/],
    ['roles pn1', /pn1 is a pn, not a cn/],
    ['roles cn1 get', /Unexpected "get"/],
    ['roles cn1 set served-by=cn1s', /needs both served-by=<node> and standby=<node>/],
    ['roles cn1 set served-by=cn1s standby=cn1s', /both cn1s: the standby must be another machine/],
    ['roles cn1 set served-by=cn9 standby=none', /Unknown node "cn9"/],
    ['roles cn1 set served-by=pn1 standby=cn1s', /pn1 is a pn, not a cn or standby/],
    ['roles cn1 set served-by=cn3 standby=cn1s', /cn3 is the machine of the CN cn3/],
    ['roles cn1 set served-by=cn1s served-by=cn1 standby=none', /served-by is given twice/],
    ['roles cn1 set owner=cn1s', /Unexpected "owner=cn1s"/],
  ])('refuses %s with the usage', (text, message) => {
    const error = refusal(() => parseCell(text, config));
    expect(error.message).toMatch(message);
    expect(error.usage.join(' ')).toContain('/cell roles <cn> set served-by=<node> standby=<node|none>');
  });
});

function setup(state: CellState = createMemoryCellState()) {
  const chat = new FakeChat();
  const run = runRecord({ id: 'r-roles1', summary: 'roles of cn1: served by cn1s, standby cn1' });
  const start = vi.fn<Engine['start']>(async () => run);
  const engine = { start, list: vi.fn(async () => []) } as unknown as Engine;
  const deps: CommandDeps = {
    config,
    engine,
    policy: createApprovalPolicy({ slack: config.slack, directory: chat }),
    state,
    chat,
    clock: new ManualClock(),
    logger: new RecordingLogger(),
  };
  return { handlers: createCommandHandlers(deps), start, state };
}

const req = (text: string, user = OPERATOR) => ({ user, channel: CHANNEL, text });

describe('/cell roles', () => {
  it('shows the configuration layout when nothing was recorded', async () => {
    const { handlers } = setup();
    const reply = await handlers.cell(req('roles cn1'));
    expect(reply.ephemeral).toBe(true);
    expect(reply.text).toBe('Roles of cn1: served by cn1, standby cn1s');
    expect(JSON.stringify(reply.blocks)).toContain("No change recorded: the configuration's layout holds.");
  });

  it('shows the history: who, when, which run, why', async () => {
    const state = createMemoryCellState();
    await state.setRole({
      role: 'cn1',
      servedBy: 'cn1s',
      since: Date.UTC(2026, 10, 26, 3, 0),
      runId: 'r-f1',
    });
    await state.recordRoles({
      cn: 'cn1',
      servedBy: 'cn1s',
      standby: 'cn1',
      at: Date.UTC(2026, 10, 26, 4, 30),
      runId: 'r-rb1',
      by: 'U0AAA',
      reason: 'rebuild-standby',
    });
    const { handlers } = setup(state);
    const reply = await handlers.cell(req('roles cn1'));
    const body = JSON.stringify(reply.blocks);
    expect(reply.text).toBe('Roles of cn1: served by cn1s, standby cn1');
    expect(body).toContain('Served before by cn1 (most recent first).');
    expect(body).toContain(
      '2026-11-26 04:30 UTC · served by cn1s · standby cn1 · run `r-rb1` · <@U0AAA> · rebuild-standby',
    );
    expect(body).toContain(
      '2026-11-26 03:00 UTC · served by cn1s · no standby · run `r-f1` · cellops · failover',
    );
    expect(body.indexOf('r-rb1')).toBeLessThan(body.indexOf('r-f1'));
  });

  it('starts the set-roles run with the checked claim and who asked', async () => {
    const { handlers, start } = setup();
    const reply = await handlers.cell(req('roles cn1 set served-by=cn1s standby=cn1'));
    expect(start).toHaveBeenCalledWith({
      runbook: 'set-roles',
      params: { cn: 'cn1', servedBy: 'cn1s', standby: 'cn1', by: OPERATOR },
      requester: OPERATOR,
      dryRun: false,
    });
    expect(reply.ephemeral).toBe(true);
    expect(reply.text).toContain('Started *roles of cn1: served by cn1s, standby cn1*');
  });

  it.each([
    ['roles cn1 set served-by=cn1s standby=cn1s', 'the standby must be another machine'],
    ['roles cn1 set served-by=nope standby=none', 'Unknown node'],
    ['roles cn1 set served-by=pn1 standby=cn1s', 'pn1 is a pn'],
  ])('refuses %s ephemerally and changes nothing', async (text, words) => {
    const { handlers, start, state } = setup();
    const reply = await handlers.cell(req(text));
    expect(reply.ephemeral).toBe(true);
    expect(reply.text).toContain(words);
    expect(start).not.toHaveBeenCalled();
    expect(await state.rolesVersion()).toBe(0);
  });

  it('refuses a machine that serves another CN now', async () => {
    const state = createMemoryCellState();
    // cn3's role moved to cn1s by hand earlier: cn1s cannot also stand by for cn1.
    await state.recordRoles({
      cn: 'cn3',
      servedBy: 'cn1s',
      at: 1,
      runId: 'r-x',
      by: 'U0AAA',
      reason: 'set by hand',
    });
    const { handlers, start } = setup(state);
    const reply = await handlers.cell(req('roles cn1 set served-by=cn1 standby=cn1s'));
    expect(reply.ephemeral).toBe(true);
    expect(reply.text).toContain('cn1s serves cn3 now');
    expect(start).not.toHaveBeenCalled();
    expect(await state.rolesVersion()).toBe(1);
  });
});
