/**
 * Records written into the bot's Redis by someone else, read back by the real stores on a real Redis:
 * each malformed one is reported by key (never its content), moved aside under `<prefix>quarantine:`, and
 * read as absent, so `/cell runs` and `/cell status` still answer for everyone; a well-formed record that
 * disagrees with the configuration or EC2 stops the runbook that would follow it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedisKeys, type RedisKeys } from '../../../src/infra/redis-keys.js';
import { createRedisCellState } from '../../../src/infra/redis-cell-state.js';
import { createRedisRateLimiter } from '../../../src/infra/redis-rate-limiter.js';
import { createSystemClock } from '../../../src/infra/system-clock.js';
import { createRedisRunStore } from '../../../src/runbooks/engine/redis-run-store.js';
import { createRedisIncidentStore, type IncidentRecord } from '../../../src/monitor/incidents.js';
import { createMonitor } from '../../../src/monitor/monitor.js';
import { createRedisMessageRefStore } from '../../../src/bot/run-presenter.js';
import { createSlackChat, createSlackWebClient } from '../../../src/bot/slack-chat.js';
import { createCommandHandlers } from '../../../src/commands/handlers.js';
import { replacementOf } from '../../../src/runbooks/replacement.js';
import { recordedRole } from '../../../src/runbooks/recorded-role.js';
import type { FailoverContext } from '../../../src/runbooks/failover-params.js';
import type { Cloud, InstanceInfo } from '../../../src/ports/cloud.js';
import type { RunRecord, StepContext } from '../../../src/runbooks/types.js';
import { SafetyGateError } from '../../../src/errors.js';
import { FakeChat } from '../../fakes/fake-chat.js';
import { FakeNodeRpc } from '../../fakes/fake-node-rpc.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { OPERATOR, testConfig } from '../../support/bot-fixtures.js';
import { memoryCellState } from '../../support/monitor-fixtures.js';
import { closeRedis, testRedis, uniquePrefix } from '../../support/redis-client.js';
import { createRedisEngine } from '../../support/redis-engine.js';
import { redisForSuite } from '../../support/redis-suite.js';
import { startSlackStandIn, type SlackStandIn } from '../../support/slack-stand-in.js';

/** Stands for anything secret a hostile record might carry: it must never reach a log line. */
const CANARY = 'xoxb-1111-2222-CANARYcanary';

const suite = redisForSuite();
let redis: Redis;
let slack: SlackStandIn;
beforeAll(async () => {
  redis = testRedis(suite.server.url);
  slack = await startSlackStandIn();
});
afterAll(async () => {
  await closeRedis(redis);
  await slack.close();
});

function runRecord(id: string, overrides: Partial<RunRecord> = {}): RunRecord {
  return {
    id,
    runbook: 'failover',
    runbookVersion: 1,
    params: { cn: 'cn1' },
    node: 'cn1',
    summary: `failover cn1 (${id})`,
    requester: OPERATOR,
    dryRun: false,
    createdAt: 1_700_000_000_000,
    status: 'running',
    steps: [],
    facts: {},
    lockKey: 'failover:test-cell',
    ...overrides,
  };
}

function setup(name: string): { keys: RedisKeys; logger: RecordingLogger } {
  return { keys: createRedisKeys(uniquePrefix(name)), logger: new RecordingLogger() };
}

const quarantined = (keys: RedisKeys, key: string) => redis.exists(keys.quarantine(key));

describe('run records in Redis', () => {
  it('moves a garbage run record aside, reports its key only, and lists the other runs', async () => {
    const { keys, logger } = setup('hostile-runs');
    const store = createRedisRunStore({ redis, keys, logger });
    await store.saveRun(runRecord('good1'));
    await store.saveRun(runRecord('bad1'));
    await store.saveRun(runRecord('bad2'));
    await redis.set(keys.run('bad1'), `{"id":"bad1", "token": "${CANARY}", `);
    await redis.set(keys.run('bad2'), JSON.stringify({ ...runRecord('bad2'), steps: 'x', note: CANARY }));

    expect((await store.listRecent(10)).map((r) => r.id)).toEqual(['good1']);
    expect(await store.loadRun('bad1')).toBeUndefined();
    expect(await quarantined(keys, keys.run('bad1'))).toBe(1);
    expect(await quarantined(keys, keys.run('bad2'))).toBe(1);
    expect(await redis.exists(keys.run('bad1'))).toBe(0);
    // Out of the indexes, so recovery does not chase it and /cell runs does not meet it again.
    expect(await redis.zrange(keys.runIndex(), '0', '-1')).toEqual(['good1']);
    expect(await redis.smembers(keys.activeRuns())).toEqual(['good1']);

    const reported = logger.lines.filter((l) => l.level === 'warn').map((l) => l.fields.key);
    expect(reported).toEqual(expect.arrayContaining([keys.run('bad1'), keys.run('bad2')]));
    expect(logger.text()).not.toContain(CANARY);
    expect(logger.text()).toContain('steps');
  });

  it('refuses a record filed under another run id', async () => {
    const { keys, logger } = setup('hostile-runs');
    const store = createRedisRunStore({ redis, keys, logger });
    await store.saveRun(runRecord('victim'));
    await redis.set(keys.run('victim'), JSON.stringify(runRecord('other')));
    expect(await store.loadRun('victim')).toBeUndefined();
    expect(await quarantined(keys, keys.run('victim'))).toBe(1);
  });

  it("stops the run when the replacement's address in its facts was rewritten mid-run", async () => {
    const { keys, logger } = setup('hostile-facts');
    const store = createRedisRunStore({ redis, keys, logger });
    const facts = { instanceId: 'i-0123456789abcdef0', privateIp: '10.0.2.15' };
    await store.saveRun(runRecord('r1', { facts }));
    const readBack = async () => {
      const run = await store.loadRun('r1');
      if (!run) throw new Error('the run record vanished');
      const ctx = { runId: run.id, params: { cn: 'cn1' }, fact: (key: string) => run.facts[key] };
      return replacementOf(ctx as unknown as FailoverContext);
    };
    expect((await readBack()).host.address).toBe('10.0.2.15');

    const tampered = runRecord('r1', { facts: { ...facts, privateIp: '10.0.2.15 -oProxyCommand=sh' } });
    await redis.set(keys.run('r1'), JSON.stringify(tampered));
    await expect(readBack()).rejects.toThrow(SafetyGateError);
    await expect(readBack()).rejects.toThrow(/privateIp of run r1 is not an IP address/);

    await redis.set(
      keys.run('r1'),
      JSON.stringify(runRecord('r1', { facts: { ...facts, instanceId: 'vol-0abc' } })),
    );
    await expect(readBack()).rejects.toThrow(/instanceId of run r1 is not an EC2 instance id/);
  });

  it('keeps a finished run, its approvals and its audit for the retention, then drops it from the index', async () => {
    const { keys } = setup('retention');
    const retentionMs = 86_400_000;
    const store = createRedisRunStore({ redis, keys, retentionMs });
    const old = runRecord('old', { createdAt: 1_000 });
    await store.saveRun(old);
    await store.appendAudit('old', { at: 1_000, who: OPERATOR, what: 'run-started' });
    await store.recordDecision('old', 'fence', 1, { user: 'U0AAA', decision: 'approve', at: 1_500 }, 1);
    expect(await redis.pttl(keys.run('old'))).toBe(-1);
    expect(await redis.pttl(keys.approval('old', 'fence', 1))).toBeGreaterThan(0);

    await store.saveRun({ ...old, status: 'succeeded', endedAt: 2_000 });
    for (const key of [keys.run('old'), keys.audit('old'), keys.approval('old', 'fence', 1)]) {
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(retentionMs);
    }
    // A run created more than the retention later pushes the old one out of the index.
    await store.saveRun(runRecord('new', { createdAt: 1_000 + retentionMs + 1 }));
    expect(await redis.zrange(keys.runIndex(), '0', '-1')).toEqual(['new']);
    // An expired record leaves the index as soon as a listing meets it.
    await redis.zadd(keys.runIndex(), 1_000 + retentionMs + 2, 'expired');
    expect((await store.listRecent(10)).map((r) => r.id)).toEqual(['new']);
    expect(await redis.zrange(keys.runIndex(), '0', '-1')).toEqual(['new']);
  });
});

describe('cell state in Redis', () => {
  const config = testConfig();
  const instance = (tags: Record<string, string>, privateIp = '10.0.2.20'): InstanceInfo => ({
    instanceId: 'i-0aaaaaaaaaaaaaaaa',
    state: 'running',
    availabilityZone: 'us-east-1a',
    privateIp,
    tags,
  });
  const ctxWith = (state: ReturnType<typeof createRedisCellState>, info: InstanceInfo | undefined) =>
    ({
      config,
      runId: 'run-2',
      ports: { state, cloud: { describeInstance: async () => info } as unknown as Cloud },
    }) as unknown as StepContext<unknown>;

  it('moves aside a role whose address is not an IP literal', async () => {
    const { keys, logger } = setup('hostile-cell');
    const state = createRedisCellState({ redis, keys, logger });
    const role = {
      role: 'cn1',
      servedBy: 'cn1-replacement',
      address: 'evil.example; id',
      since: 1,
      runId: 'r1',
    };
    await redis.hset(keys.cellState(), 'role:cn1', JSON.stringify(role));
    expect(await state.role('cn1')).toBeUndefined();
    expect(await redis.hexists(keys.quarantine(keys.cellState()), 'role:cn1')).toBe(1);
    expect(await redis.hexists(keys.cellState(), 'role:cn1')).toBe(0);
    expect(logger.lines.find((l) => l.fields.field === 'role:cn1')?.fields.key).toBe(keys.cellState());
  });

  it('stops a runbook following a role whose instance EC2 does not tag as this cell and run', async () => {
    const { keys, logger } = setup('hostile-cell');
    const state = createRedisCellState({ redis, keys, logger });
    await state.setRole({
      role: 'cn1',
      servedBy: 'cn1-replacement',
      instanceId: 'i-0aaaaaaaaaaaaaaaa',
      address: '10.0.2.20',
      since: 1,
      runId: 'r1',
    });
    const tags = { 'cellops:cell': 'test-cell', 'cellops:role': 'cn1', 'cellops:run-id': 'r1' };
    expect(await recordedRole(ctxWith(state, instance(tags)), 'cn1')).toMatchObject({ address: '10.0.2.20' });

    await expect(
      recordedRole(ctxWith(state, instance({ ...tags, 'cellops:cell': 'other-cell' })), 'cn1'),
    ).rejects.toThrow(/EC2 tag cellops:cell is "other-cell", not "test-cell"/);
    // The address moved to a machine that is neither configured nor the instance's.
    await state.setRole({
      role: 'cn1',
      servedBy: 'cn1-replacement',
      instanceId: 'i-0aaaaaaaaaaaaaaaa',
      address: '10.9.9.9',
      since: 1,
      runId: 'r1',
    });
    await expect(recordedRole(ctxWith(state, instance(tags)), 'cn1')).rejects.toThrow(
      /10\.9\.9\.9, which is neither a configured node's nor i-0aaaaaaaaaaaaaaaa's private IP \(10\.0\.2\.20\)/,
    );
  });
});

describe('monitor records, message refs and the user-group cache in Redis', () => {
  it('moves aside a garbage incident, mute and cell view; status still answers', async () => {
    const { keys, logger } = setup('hostile-incidents');
    const clock = new ManualClock();
    const store = createRedisIncidentStore({ redis, keys, clock, logger });
    const good: IncidentRecord = {
      id: 'cn3-1',
      subject: 'cn3',
      node: 'cn3',
      kind: 'stalled',
      openedAt: 1,
      createdAt: 1,
      pending: {},
      version: 1,
    };
    expect(await store.create(good)).toBe(true);
    await redis.set(keys.incident('cn1'), `not json ${CANARY}`);
    await redis.set(keys.incident('cn1s'), JSON.stringify({ ...good, subject: 'cn1s', kind: 'on-fire' }));
    await redis.set(keys.mute('cn1'), JSON.stringify({ until: 'soon', by: CANARY }));
    await redis.set(keys.monitorView(), '[]');

    expect([...(await store.getMany(['cn1', 'cn1s', 'cn3'])).keys()]).toEqual(['cn3']);
    expect((await store.list()).map((r) => r.subject)).toEqual(['cn3']);
    expect((await store.getMutes(['cn1'])).size).toBe(0);
    expect(await store.loadView()).toBeUndefined();
    for (const key of [keys.incident('cn1'), keys.incident('cn1s'), keys.mute('cn1'), keys.monitorView()])
      expect(await quarantined(keys, key)).toBe(1);
    // A new incident can be opened where the garbage was.
    expect(await store.create({ ...good, id: 'cn1-1', subject: 'cn1', node: 'cn1' })).toBe(true);
    expect(logger.text()).not.toContain(CANARY);
  });

  it('reads a garbage message ref as absent', async () => {
    const { keys, logger } = setup('hostile-refs');
    const refs = createRedisMessageRefStore(redis, keys, 1, logger);
    await refs.save('r1', 'run', { channel: 'C0ALERTS', ts: '1700000000.000100' });
    await redis.hset(keys.slackRefs('r1'), 'approval:fence:1', JSON.stringify({ channel: 'C0X', ts: '-rf' }));
    await redis.hset(keys.slackRefs('r1'), 'approval:fence:2', '{');
    expect(await refs.read('r1', 'run')).toEqual({ channel: 'C0ALERTS', ts: '1700000000.000100' });
    expect(await refs.read('r1', 'approval:fence:1')).toBeUndefined();
    expect(await refs.read('r1', 'approval:fence:2')).toBeUndefined();
    expect(await redis.hkeys(keys.quarantine(keys.slackRefs('r1')))).toEqual([
      'approval:fence:1',
      'approval:fence:2',
    ]);
  });

  it('asks Slack again instead of trusting a user-group cache dated in the future', async () => {
    const { keys, logger } = setup('hostile-usergroup');
    const clock = createSystemClock();
    const client = createSlackWebClient('xoxb-test-token', { apiUrl: slack.apiUrl, timeoutMs: 2_000 });
    const chat = createSlackChat({ client, redis, keys, clock, logger });
    slack.usergroups.set('S0FUTURE', ['U0REAL']);
    const forged = { users: ['U0EVIL'], at: clock.now() + 365 * 86_400_000 };
    await redis.set(keys.usergroup('S0FUTURE'), JSON.stringify(forged), 'PX', 3_600_000);

    expect(await chat.usergroupMembers('S0FUTURE')).toEqual(['U0REAL']);
    expect(JSON.stringify(logger.lines)).toContain('is dated in the future');
    // The fresh entry replaced it and is used from now on.
    expect(JSON.parse((await redis.get(keys.usergroup('S0FUTURE'))) ?? '{}')).toMatchObject({
      users: ['U0REAL'],
    });
  });
});

describe('dry-run rate limit in Redis', () => {
  it('allows the configured number per window and user, then refuses with the time left', async () => {
    const { keys } = setup('dry-runs');
    const limiter = createRedisRateLimiter({
      redis,
      key: (u) => keys.dryRuns(u),
      limit: 5,
      windowMs: 60_000,
    });
    const verdicts = [];
    for (let i = 0; i < 6; i++) verdicts.push(await limiter.take('U0AAA'));
    expect(verdicts.slice(0, 5).every((v) => v.allowed)).toBe(true);
    const refused = verdicts[5];
    expect(refused?.allowed).toBe(false);
    if (refused && !refused.allowed) {
      expect(refused.limit).toBe(5);
      expect(refused.retryAfterMs).toBeGreaterThan(0);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(60_000);
    }
    expect((await limiter.take('U0BBB')).allowed).toBe(true);
    expect(await redis.pttl(keys.dryRuns('U0AAA'))).toBeGreaterThan(0);
  });
});

describe('/cell runs and /cell status over hostile records', () => {
  it('still answer, listing what is well-formed', async () => {
    const prefix = uniquePrefix('hostile-commands');
    const keys = createRedisKeys(prefix);
    const logger = new RecordingLogger();
    const engine = createRedisEngine({
      url: suite.server.url,
      prefix,
      ownerId: 'bot-1',
      steps: () => [{ id: 'prepare' }],
      logger,
    });
    try {
      const clock = new ManualClock();
      const config = testConfig({ prefix });
      const good = runRecord('good1', { status: 'paused', runbook: 'counting', summary: 'the good run' });
      await engine.store.saveRun(good);
      await engine.store.saveRun(runRecord('bad1'));
      await redis.set(keys.run('bad1'), `{"broken": ${CANARY}`);
      await redis.set(keys.monitorView(), JSON.stringify({ nodes: 'none', at: -1 }));
      await redis.set(keys.mute('cn1'), 'garbage');
      const monitor = createMonitor({
        config,
        rpc: new FakeNodeRpc(),
        chat: new FakeChat(),
        clock,
        logger,
        store: createRedisIncidentStore({ redis, keys, clock, logger }),
        state: memoryCellState(),
        replicaId: 'r1',
      });
      const handlers = createCommandHandlers({
        config,
        engine: engine.engine,
        policy: { canStart: async () => ({ allowed: true }), canAbort: async () => ({ allowed: true }) },
        monitor,
        chat: { permalink: async () => undefined },
        clock,
        logger,
      });

      const runs = await handlers.cell({ user: OPERATOR, channel: 'C0ALERTS', text: 'runs' });
      expect(JSON.stringify(runs.blocks)).toContain('good1');
      expect(JSON.stringify(runs.blocks)).not.toContain('bad1');
      const status = await handlers.cell({ user: OPERATOR, channel: 'C0ALERTS', text: 'status' });
      expect(status.text).toContain('test-cell');
      expect(JSON.stringify(status.blocks)).toContain('good1');
      expect(logger.text()).not.toContain(CANARY);
    } finally {
      await engine.close();
    }
  });
});
