/**
 * The engine on a real Redis with two replicas (separate connections, as two bot processes would have):
 * decisions are atomic across replicas, a click on the replica that does not drive the run reaches the
 * driver through pub/sub, and the lock keeps a second run out until the first ends.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LockBusyError } from '../../../../src/locks/types.js';
import type { RunEvent, RunRecord } from '../../../../src/runbooks/types.js';
import { RecordingLogger } from '../../../fakes/recording-logger.js';
import { APPROVER_A, APPROVER_B, OPERATOR, STRANGER } from '../../../support/bot-fixtures.js';
import { uniquePrefix } from '../../../support/redis-client.js';
import { createRedisEngine, ONCALL, type RedisEngineSetup } from '../../../support/redis-engine.js';
import { startRedis, type RedisServer } from '../../../support/redis-server.js';
import { NotAuthorizedError } from '../../../../src/errors.js';
import { until as pollUntil } from '../../../support/until.js';

const until = <T>(what: string, check: () => Promise<T | undefined>): Promise<T> =>
  pollUntil(what, check, { timeoutMs: 10_000 });

let server: RedisServer;
const setups: RedisEngineSetup[] = [];

beforeAll(async () => {
  server = await startRedis();
});
afterEach(async () => {
  await Promise.all(setups.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await server.stop();
});

/**
 * Two replicas on one prefix. The poll fallback is ten minutes, so a waiting run only moves when a
 * notification wakes it: these tests fail (by timeout) if pub/sub does not work.
 */
function replicas(events: { owner: string; event: RunEvent }[] = []): [RedisEngineSetup, RedisEngineSetup] {
  const prefix = uniquePrefix('engine');
  const make = (ownerId: string) => {
    const setup = createRedisEngine({
      url: server.url,
      prefix,
      ownerId,
      steps: () => [{ id: 'prepare' }, { id: 'fence', destructive: true }, { id: 'finish' }],
      logger: new RecordingLogger(),
      engineOptions: { pollMs: 600_000 },
      observer: {
        onRunEvent: async (_run, event) => {
          events.push({ owner: ownerId, event });
        },
      },
    });
    setups.push(setup);
    return setup;
  };
  return [make('bot-1'), make('bot-2')];
}

const status = (setup: RedisEngineSetup, id: string, wanted: RunRecord['status']) =>
  until(`run ${id} ${wanted}`, async () => {
    const run = await setup.store.loadRun(id);
    return run?.status === wanted ? run : undefined;
  });

const start = (setup: RedisEngineSetup, requester = OPERATOR) =>
  setup.engine.start({ runbook: 'counting', params: { node: 'cn1' }, requester });

describe('engine on Redis with two replicas', () => {
  it('records exactly one of 50 concurrent decisions from different users across replicas', async () => {
    const events: { owner: string; event: RunEvent }[] = [];
    const [one, two] = replicas(events);
    const run = await start(one);
    await status(one, run.id, 'waiting-approval');

    const outcomes = await Promise.all(
      ONCALL.map((user, i) => (i % 2 === 0 ? one : two).engine.decide(run.id, 'fence', user, 'approve', 1)),
    );
    const recorded = outcomes.filter((o) => o.kind === 'recorded');
    expect(recorded).toHaveLength(1);
    const winner = recorded[0]?.kind === 'recorded' ? recorded[0].run.steps[1]?.approvals[0] : undefined;
    expect(winner?.user).toMatch(/^U0ONCALL/);
    for (const outcome of outcomes.filter((o) => o.kind !== 'recorded')) {
      expect(outcome).toEqual({ kind: 'already-decided', by: winner });
    }

    const done = await status(one, run.id, 'succeeded');
    expect(await one.counter.get('fence')).toBe(1);
    expect(done.steps[1]?.approvals).toEqual([winner]);
    expect((await one.store.readRound(run.id, 'fence', 1)).decisions).toEqual([winner]);
    expect(events.filter((e) => e.event.type === 'approval-decided')).toHaveLength(1);
    const decisions = (await one.store.readAudit(run.id)).filter((e) => e.what === 'decision');
    expect(decisions.map((e) => e.who)).toEqual([winner?.user]);
  });

  it('refuses the requester under four-eyes and unknown users, on any replica', async () => {
    const [one, two] = replicas();
    const run = await start(one, APPROVER_A);
    await status(one, run.id, 'waiting-approval');
    await expect(two.engine.decide(run.id, 'fence', APPROVER_A, 'approve')).rejects.toBeInstanceOf(
      NotAuthorizedError,
    );
    await expect(two.engine.decide(run.id, 'fence', STRANGER, 'approve')).rejects.toThrow(
      /not in slack\.approvers/,
    );
    expect((await two.store.readRound(run.id, 'fence', 1)).decisions).toEqual([]);
  });

  it('wakes the driving replica when the decision was clicked on the other one', async () => {
    const events: { owner: string; event: RunEvent }[] = [];
    const [one, two] = replicas(events);
    const run = await start(one);
    await status(one, run.id, 'waiting-approval');
    expect(await two.engine.decide(run.id, 'fence', APPROVER_B, 'approve')).toMatchObject({
      kind: 'recorded',
    });
    await status(one, run.id, 'succeeded');
    // Events reach the observer from a queue, after the state they announce is saved.
    await until('the run-finished event', async () =>
      events.some((e) => e.event.type === 'run-finished') ? true : undefined,
    );
    // The replica that recorded the decision announced it; the driver announced the rest.
    expect(events.filter((e) => e.event.type === 'approval-decided').map((e) => e.owner)).toEqual(['bot-2']);
    expect(events.filter((e) => e.event.type === 'run-finished').map((e) => e.owner)).toEqual(['bot-1']);
  });

  it('refuses a second run while one holds the lock, naming the holder; it starts once the first ends', async () => {
    const [one, two] = replicas();
    const first = await start(one);
    await status(one, first.id, 'waiting-approval');

    const refused = await start(two, APPROVER_B).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(LockBusyError);
    const holder = (refused as LockBusyError).holder;
    expect(holder).toMatchObject({ runId: first.id, requester: OPERATOR, runbook: 'counting', node: 'cn1' });
    expect(holder?.since).toBe(first.createdAt);
    expect((refused as Error).message).toContain(first.id);

    await two.engine.abort(first.id, APPROVER_B);
    await status(one, first.id, 'aborted');
    const second = await start(two, APPROVER_B);
    expect(second.fencingToken).toBeGreaterThan(first.fencingToken ?? 0);
    await status(two, second.id, 'waiting-approval');
  });
});
