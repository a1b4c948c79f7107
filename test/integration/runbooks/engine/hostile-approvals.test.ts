/**
 * Approvals written into Redis by hand, as someone with write access to the bot's Redis could: a forged
 * `_final`, a forged self-approval under four-eyes, a bumped `_approvals` count. None of them runs the
 * destructive step: a round settles only on decisions the approver policy allows at settle time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRedisKeys } from '../../../../src/infra/redis-keys.js';
import type { RunRecord } from '../../../../src/runbooks/types.js';
import { RecordingLogger } from '../../../fakes/recording-logger.js';
import { APPROVER_A, APPROVER_B, OPERATOR, STRANGER } from '../../../support/bot-fixtures.js';
import { uniquePrefix } from '../../../support/redis-client.js';
import { createRedisEngine, type RedisEngineSetup } from '../../../support/redis-engine.js';
import { redisForSuite } from '../../../support/redis-suite.js';
import { until } from '../../../support/until.js';

const suite = redisForSuite();
const setups: RedisEngineSetup[] = [];
afterEach(async () => {
  await Promise.all(setups.splice(0).map((s) => s.close()));
});

function engineOn(approvals = 1) {
  const prefix = uniquePrefix('hostile-approvals');
  const logger = new RecordingLogger();
  const setup = createRedisEngine({
    url: suite.server.url,
    prefix,
    ownerId: 'bot-1',
    steps: () => [{ id: 'prepare' }, { id: 'fence', destructive: true }, { id: 'finish' }],
    logger,
    engineOptions: { pollMs: 50 },
    approvals,
  });
  setups.push(setup);
  return { ...setup, keys: createRedisKeys(prefix), logger };
}

/** A run by `requester` waiting for the approval of its destructive step. */
async function waitingRun(setup: RedisEngineSetup, requester: string): Promise<RunRecord> {
  const run = await setup.engine.start({ runbook: 'counting', params: { node: 'cn1' }, requester });
  return status(setup, run.id, 'waiting-approval');
}

/** What a hand-written settling approval by `user` looks like: their decision, and `_final` pointing at it. */
async function forgeApproval(setup: ReturnType<typeof engineOn>, runId: string, user: string): Promise<void> {
  const forged = decision(user);
  await setup.redis.hset(setup.keys.approval(runId, 'fence', 1), `u:${user}`, forged, '_final', forged);
}

const status = (setup: RedisEngineSetup, id: string, wanted: RunRecord['status']) =>
  until(`run ${id} ${wanted}`, async () => {
    const run = await setup.store.loadRun(id);
    return run?.status === wanted ? run : undefined;
  });

const decision = (user: string, at = Date.now()) => JSON.stringify({ user, decision: 'approve', at });

describe('approvals forged in Redis', () => {
  it('refuses a forged _final with a decision by someone who is not an approver, and asks again on resume', async () => {
    const setup = engineOn();
    const run = await waitingRun(setup, OPERATOR);
    await forgeApproval(setup, run.id, STRANGER);
    await setup.store.publish(run.id);

    const paused = await status(setup, run.id, 'paused');
    expect(paused.pauseReason).toMatch(/refused when it settled: 0 of 1 required approval\(s\) stand/);
    expect(paused.pauseReason).toContain('not in slack.approvers');
    expect(await setup.counter.get('fence')).toBe(0);
    const audit = await setup.store.readAudit(run.id);
    expect(audit.some((e) => e.what === 'approval-refused' && e.stepId === 'fence')).toBe(true);

    // Resume asks again in a new round; a real approval then runs the step.
    await setup.engine.resume(run.id, OPERATOR);
    await until('round 2', async () => {
      const now = await setup.store.loadRun(run.id);
      return now?.status === 'waiting-approval' && now.steps[1]?.approvalRound === 2 ? true : undefined;
    });
    expect(await setup.engine.decide(run.id, 'fence', APPROVER_B, 'approve', 2)).toMatchObject({
      kind: 'recorded',
    });
    await status(setup, run.id, 'succeeded');
    expect(await setup.counter.get('fence')).toBe(1);
  });

  it('refuses a self-approval written into the round under four-eyes', async () => {
    const setup = engineOn();
    const run = await waitingRun(setup, APPROVER_A);
    await forgeApproval(setup, run.id, APPROVER_A);

    const paused = await status(setup, run.id, 'paused');
    expect(paused.pauseReason).toMatch(/slack\.fourEyes requires a second approver/);
    expect(await setup.counter.get('fence')).toBe(0);
  });

  it('ignores and moves aside a _final that is not one of the recorded decisions', async () => {
    const setup = engineOn();
    const run = await waitingRun(setup, OPERATOR);

    const key = setup.keys.approval(run.id, 'fence', 1);
    await setup.redis.hset(key, '_final', decision(APPROVER_B));
    await until('the forged _final moved aside', async () =>
      (await setup.redis.hexists(setup.keys.quarantine(key), '_final')) === 1 ? true : undefined,
    );
    expect(await setup.redis.hexists(key, '_final')).toBe(0);
    expect((await setup.store.loadRun(run.id))?.status).toBe('waiting-approval');
    expect(await setup.counter.get('fence')).toBe(0);
    const warning = setup.logger.lines.find((l) => l.fields.key === key);
    expect(warning?.fields).toMatchObject({ field: '_final' });
    expect(JSON.stringify(warning?.fields.problems)).toContain('not one of the decisions recorded');

    // The round still works for the real approver.
    expect(await setup.engine.decide(run.id, 'fence', APPROVER_B, 'approve', 1)).toMatchObject({
      kind: 'recorded',
      final: true,
    });
    await status(setup, run.id, 'succeeded');
  });

  it('does not let a bumped _approvals count stand in for missing approvers', async () => {
    const setup = engineOn(2);
    const run = await waitingRun(setup, OPERATOR);

    // The script settles the round when the count reaches 2: a forged count makes one approval "enough".
    await setup.redis.hset(setup.keys.approval(run.id, 'fence', 1), '_approvals', '7');
    expect(await setup.engine.decide(run.id, 'fence', APPROVER_B, 'approve', 1)).toMatchObject({
      kind: 'recorded',
      final: true,
    });
    const paused = await status(setup, run.id, 'paused');
    expect(paused.pauseReason).toMatch(/1 of 2 required approval\(s\) stand/);
    expect(await setup.counter.get('fence')).toBe(0);
  });
});
