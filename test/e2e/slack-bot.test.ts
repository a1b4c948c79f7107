/**
 * The bot end to end: Slack-signed requests into the real HTTP receiver, a real Redis, the real engine
 * with a test runbook, and a local stand-in of Slack's Web API that records what the bot sent.
 */
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { RUN_ACTIONS } from '../../src/views/action-ids.js';
import { createRedisKeys } from '../../src/infra/redis-keys.js';
import { CELL_LOCK } from '../../src/runbooks/failover-params.js';
import { RecordingLogger } from '../fakes/recording-logger.js';
import { APPROVER_A, APPROVER_B, OPERATOR, STRANGER, testConfig } from '../support/bot-fixtures.js';
import { SIGNING_SECRET, startTestBot, type TestBot } from '../support/bot-harness.js';
import { closeRedis, testRedis, uniquePrefix } from '../support/redis-client.js';
import { redisForSuite } from '../support/redis-suite.js';
import { ONCALL } from '../support/redis-engine.js';
import { blockActionsBody, postSigned, slashCommandBody } from '../support/slack-requests.js';
import { approvalRequest, blocksText, updatesOf, waitForResult } from '../support/slack-run-messages.js';
import { startSlackStandIn, type ApiCall, type SlackStandIn } from '../support/slack-stand-in.js';

const redis = redisForSuite();

interface Env {
  readonly slack: SlackStandIn;
  readonly bots: TestBot[];
  readonly prefix: string;
  readonly logger: RecordingLogger;
}

const envs: Env[] = [];

afterEach(async () => {
  for (const env of envs.splice(0)) {
    await Promise.all(env.bots.map((bot) => bot.close()));
    await env.slack.close();
  }
});

async function setup(bots = 1, overrides: Parameters<typeof testConfig>[0] = {}): Promise<Env> {
  const slack = await startSlackStandIn();
  slack.usergroups.set('S0ONCALL', ONCALL);
  const prefix = uniquePrefix('e2e-bot');
  const config = testConfig({ prefix, ...overrides });
  const logger = new RecordingLogger();
  const started: TestBot[] = [];
  for (let i = 0; i < bots; i++) {
    started.push(
      await startTestBot({
        redisUrl: redis.server.url,
        config,
        slack,
        ownerId: `bot-${i}-${prefix}`,
        logger,
      }),
    );
  }
  const env = { slack, bots: started, prefix, logger };
  envs.push(env);
  return env;
}

let answerSeq = 0;

/** Sends a slash command; returns the HTTP status and the response_url id its answer will carry. */
async function sendCommand(env: Env, bot: TestBot, command: string, text: string, user: string) {
  const id = `cmd-${++answerSeq}`;
  const body = slashCommandBody({ command, text, user, responseUrl: env.slack.responseUrl(id) });
  const response = await postSigned(bot.url, body, { secret: SIGNING_SECRET });
  return { ...response, id };
}

/** A slash command and the answer posted to its response_url. */
async function command(env: Env, bot: TestBot, command: string, text: string, user: string) {
  const sent = await sendCommand(env, bot, command, text, user);
  expect(sent.status).toBe(200);
  const answer = await env.slack.waitFor(`the answer to ${command} ${text.slice(0, 30)}`, () =>
    env.slack.responses.find((r) => r.id === sent.id),
  );
  return answer.body;
}

async function click(env: Env, bot: TestBot, actionId: string, value: string, user: string) {
  const id = `click-${++answerSeq}`;
  const body = blockActionsBody({ actionId, value, user, responseUrl: env.slack.responseUrl(id) });
  const response = await postSigned(bot.url, body, { secret: SIGNING_SECRET });
  return { ...response, id };
}

/** The ts Slack gave a post. */
function tsOf(call: ApiCall): string {
  return String(call.result?.ts);
}

/**
 * One Approve click delivered twice, as Slack redelivers it (same action_ts, same trigger id): first to
 * `to[0]`, then to `to[1]`; both are acknowledged. Answers to it go to the response_url id `answerId`.
 */
async function approveTwice(
  env: Env,
  to: readonly [TestBot, TestBot],
  click: { readonly value: string; readonly user: string; readonly answerId: string },
): Promise<void> {
  const body = blockActionsBody({
    actionId: RUN_ACTIONS.approve,
    value: click.value,
    user: click.user,
    responseUrl: env.slack.responseUrl(click.answerId),
    actionTs: `1700000000.${String(++answerSeq).padStart(6, '0')}`,
  });
  for (const bot of to)
    expect((await postSigned(bot.url, body, { secret: SIGNING_SECRET })).status).toBe(200);
}

async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`never happened: ${what}`);
}

describe('Slack bot end to end', () => {
  it('runs a failover with two approvals, showing who approved each step and when', async () => {
    const env = await setup();
    const [bot] = env.bots as [TestBot];
    const started = await command(env, bot, '/failover', 'cn1', OPERATOR);
    expect(started).toMatchObject({ response_type: 'ephemeral' });
    expect(String(started.text)).toContain('Started *failover cn1*');

    const runMessage = await env.slack.waitFor('the run message', () =>
      env.slack.callsOf('chat.postMessage').find((c) => c.args.thread_ts === undefined),
    );
    expect(runMessage.args.channel).toBe('C0ALERTS');
    expect(blocksText(runMessage)).toContain('failover cn1');

    const fence = await approvalRequest(env, 'fence');
    expect(
      blocksText(env.slack.callsOf('chat.postMessage').find((c) => c.args.thread_ts !== undefined)!),
    ).toContain('Plan');
    const first = await click(env, bot, RUN_ACTIONS.approve, fence.value, APPROVER_A);
    expect(first.status).toBe(200);
    const swap = await approvalRequest(env, 'swap');
    await click(env, bot, RUN_ACTIONS.approve, swap.value, APPROVER_B);
    await waitForResult(env, /failover cn1 succeeded/);
    await bot.presenter.idle();

    const fenceUpdates = updatesOf(env, fence.ts);
    expect(fenceUpdates).toHaveLength(1);
    expect(blocksText(fenceUpdates[0]!)).toMatch(
      new RegExp(`Approved by <@${APPROVER_A}> at \\d\\d:\\d\\d:\\d\\d UTC`),
    );
    expect(blocksText(fenceUpdates[0]!)).not.toContain(RUN_ACTIONS.approve);
    expect(blocksText(updatesOf(env, swap.ts)[0]!)).toContain(`Approved by <@${APPROVER_B}>`);
    // Every post of the run went into the run message's thread.
    const runTs = tsOf(runMessage);
    const threaded = env.slack.callsOf('chat.postMessage').filter((c) => c !== runMessage);
    expect(threaded.every((c) => c.args.thread_ts === runTs)).toBe(true);
    expect(blocksText(updatesOf(env, runTs).at(-1)!)).toContain('succeeded');
    const [run] = await bot.engine.list(1);
    expect(run?.status).toBe('succeeded');
  });

  it('refuses an approval by the person who started the run (four eyes), ephemerally, changing nothing', async () => {
    const env = await setup();
    const [bot] = env.bots as [TestBot];
    await command(env, bot, '/failover', 'cn1', APPROVER_A);
    const fence = await approvalRequest(env, 'fence');
    const own = await click(env, bot, RUN_ACTIONS.approve, fence.value, APPROVER_A);
    const answer = await env.slack.waitFor('the refusal', () =>
      env.slack.responses.find((r) => r.id === own.id),
    );
    expect(answer.body).toMatchObject({ response_type: 'ephemeral', replace_original: false });
    expect(String(answer.body.text)).toContain('Not allowed');
    const stranger = await click(env, bot, RUN_ACTIONS.approve, fence.value, STRANGER);
    const refused = await env.slack.waitFor('the refusal', () =>
      env.slack.responses.find((r) => r.id === stranger.id),
    );
    expect(String(refused.body.text)).toContain('Not allowed');
    await bot.presenter.idle();
    expect(updatesOf(env, fence.ts)).toHaveLength(0);
    const [run] = await bot.engine.list(1);
    expect(run?.status).toBe('waiting-approval');
    expect(run?.steps.find((s) => s.id === 'fence')?.approvals).toEqual([]);
  });

  it('answers a second failover with who holds the lock, for which node, since when, with a link', async () => {
    const env = await setup();
    const [bot] = env.bots as [TestBot];
    await command(env, bot, '/failover', 'cn1', OPERATOR);
    await approvalRequest(env, 'fence');
    const keys = createRedisKeys(env.prefix);
    await eventually('the lock holder knows its thread', async () => {
      return ((await bot.redis.get(keys.lockHolder(CELL_LOCK))) ?? '').includes('"thread"');
    });
    const busy = await command(env, bot, '/failover', 'cn1 --force', APPROVER_B);
    const text = JSON.stringify(busy.blocks);
    expect(busy.response_type).toBe('ephemeral');
    expect(text).toContain('*failover* on *cn1*');
    expect(text).toContain(`started by <@${OPERATOR}> at`);
    expect(text).toMatch(/<https:\/\/stand-in\.slack\.com\/archives\/C0ALERTS\/p\d+\|Follow its thread>/);
    expect(await bot.engine.list(10)).toHaveLength(1);
  });

  it('runs a dry run: the plan and the read-only preflight, no approval asked, nothing changed', async () => {
    const env = await setup();
    const [bot] = env.bots as [TestBot];
    const answer = await command(env, bot, '/failover', 'cn1 --dry-run', OPERATOR);
    expect(String(answer.text)).toContain('Dry run of *failover cn1*');
    await waitForResult(env, /Dry run of failover cn1/);
    await bot.presenter.idle();
    const posts = env.slack.callsOf('chat.postMessage').map(blocksText).join('\n');
    expect(posts).toContain('Dry run — plan');
    expect(posts).not.toContain(RUN_ACTIONS.approve);
    const [run] = await bot.engine.list(1);
    expect(run?.dryRun).toBe(true);
    expect(run?.steps.find((s) => s.id === 'preflight')?.status).toBe('succeeded');
    expect(run?.steps.find((s) => s.id === 'fence')?.status).not.toBe('succeeded');
  });

  it('answers forged and stale requests with 401 and runs nothing', async () => {
    const env = await setup();
    const [bot] = env.bots as [TestBot];
    const body = slashCommandBody({
      command: '/failover',
      text: 'cn1',
      user: OPERATOR,
      responseUrl: env.slack.responseUrl('forged'),
    });
    const now = Math.floor(Date.now() / 1000);
    const forged = await postSigned(bot.url, body, { secret: 'not-the-secret' });
    const garbage = await postSigned(bot.url, body, { secret: SIGNING_SECRET, signature: 'v0=deadbeef' });
    const stale = await postSigned(bot.url, body, { secret: SIGNING_SECRET, timestamp: now - 6 * 60 });
    const tampered = await postSigned(bot.url, body.replace('text=cn1', 'text=cn3'), {
      secret: SIGNING_SECRET,
      signature: (await import('../support/slack-requests.js')).slackSignature(SIGNING_SECRET, now, body),
      timestamp: now,
    });
    expect([forged.status, garbage.status, stale.status, tampered.status]).toEqual([401, 401, 401, 401]);
    const click = blockActionsBody({
      actionId: RUN_ACTIONS.approve,
      value: '{"runId":"r1","stepId":"fence","round":1}',
      user: APPROVER_A,
      responseUrl: env.slack.responseUrl('forged-click'),
    });
    expect((await postSigned(bot.url, click, { secret: 'nope' })).status).toBe(401);
    // A good request afterwards is answered, so the forged ones had their chance to show up first.
    await command(env, bot, '/cell', 'help', OPERATOR);
    expect(env.slack.responses.filter((r) => r.id.startsWith('forged'))).toEqual([]);
    expect(await bot.engine.list(10)).toEqual([]);
  });

  const badInputs: [string, string][] = [
    ['/failover', 'cn9'],
    ['/failover', 'cn1s'],
    ['/failover', 'cn1 --yolo'],
    ['/failover', ''],
    ['/failover', 'cn1 cn1s'],
    ['/failover', 'cn1 '.repeat(1_000)],
    ['/failover', 'cn１'],
    ['/failover', 'cn1; rm -rf /'],
    ['/failover', 'cn1 --mode hot'],
    ['/cell', 'reboot'],
    ['/cell', 'mute cn1'],
    ['/cell', 'abort'],
    ['/cell', 'image cn1 now'],
    ['/cell', 'check $(id)'],
    ['/cell', 'drill failover cn1'],
  ];

  it('answers every bad input with an ephemeral error and the usage, and runs nothing', async () => {
    const env = await setup();
    const [bot] = env.bots as [TestBot];
    for (const [name, text] of badInputs) {
      const answer = await command(env, bot, name, text, OPERATOR);
      expect(answer.response_type, `${name} ${text.slice(0, 30)}`).toBe('ephemeral');
      expect(JSON.stringify(answer.blocks), `${name} ${text.slice(0, 30)}`).toContain('Usage:');
    }
    expect(await bot.engine.list(10)).toEqual([]);
    expect(env.slack.callsOf('chat.postMessage')).toEqual([]);
  });

  it('advances the run whichever of two bot instances receives each click', async () => {
    const env = await setup(2);
    const [a, b] = env.bots as [TestBot, TestBot];
    await command(env, a, '/failover', 'cn1', OPERATOR);
    const fence = await approvalRequest(env, 'fence');
    await click(env, b, RUN_ACTIONS.approve, fence.value, APPROVER_A);
    const swap = await approvalRequest(env, 'swap');
    await click(env, a, RUN_ACTIONS.approve, swap.value, APPROVER_B);
    await waitForResult(env, /failover cn1 succeeded/);
    await Promise.all([a.presenter.idle(), b.presenter.idle()]);
    expect(updatesOf(env, fence.ts)).toHaveLength(1);
    expect(blocksText(updatesOf(env, fence.ts)[0]!)).toContain(`Approved by <@${APPROVER_A}>`);
    expect(updatesOf(env, swap.ts)).toHaveLength(1);
  });

  it('records one decision and makes one chat.update for 50 concurrent clicks on two instances', async () => {
    const env = await setup(2);
    const [a, b] = env.bots as [TestBot, TestBot];
    await command(env, a, '/failover', 'cn1', OPERATOR);
    const fence = await approvalRequest(env, 'fence');
    const clicks = await Promise.all(
      ONCALL.map((user, i) => click(env, i % 2 === 0 ? a : b, RUN_ACTIONS.approve, fence.value, user)),
    );
    expect(clicks.every((c) => c.status === 200)).toBe(true);
    await approvalRequest(env, 'swap');
    // The 49 losers are told; the winner is not (the message itself shows the decision).
    const answers = await env.slack.waitFor('49 answers to the losing clicks', () => {
      const ids = new Set(clicks.map((c) => c.id));
      const got = env.slack.responses.filter((r) => ids.has(r.id));
      return got.length >= 49 ? got : undefined;
    });
    await Promise.all([a.presenter.idle(), b.presenter.idle()]);
    expect(answers).toHaveLength(49);
    expect(answers.every((r) => /Already decided|Nothing to decide/.test(String(r.body.text)))).toBe(true);
    const edits = updatesOf(env, fence.ts);
    expect(edits).toHaveLength(1);
    expect(blocksText(edits[0]!)).toMatch(/Approved by <@U0ONCALL\d+>/);
    const run = await a.engine.get((await a.engine.list(1))[0]!.id);
    expect(run?.steps.find((s) => s.id === 'fence')?.approvals).toHaveLength(1);
  });

  it('serves /livez, /readyz and /healthz (Redis and Slack auth) and /metrics next to /slack/events', async () => {
    const env = await setup();
    const [bot] = env.bots as [TestBot];
    const base = bot.url.replace('/slack/events', '');
    expect(bot.healthUrl).toBe(base);
    for (const path of ['/readyz', '/healthz']) {
      const health = await fetch(`${base}${path}`);
      expect(health.status, path).toBe(200);
      expect(await health.json()).toEqual({ ok: true, redis: 'ok', slack: 'ok' });
    }
    expect(await (await fetch(`${base}/livez`)).json()).toEqual({ ok: true });
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
  });

  it('serves the probes and /metrics only on HEALTH_PORT when one is given, not next to /slack/events', async () => {
    const env = await setup(0);
    const bot = await startTestBot({
      redisUrl: redis.server.url,
      config: testConfig({ prefix: env.prefix }),
      slack: env.slack,
      ownerId: 'bot-health-port',
      logger: env.logger,
      healthPort: 0,
      metrics: async () => 'cellops_test_metric 1\n',
    });
    env.bots.push(bot);
    const slackBase = bot.url.replace('/slack/events', '');
    expect(bot.healthUrl).not.toBe(slackBase);
    for (const path of ['/livez', '/readyz', '/healthz', '/metrics']) {
      expect((await fetch(`${bot.healthUrl}${path}`)).status, path).toBe(200);
      expect((await fetch(`${slackBase}${path}`)).status, path).toBe(404);
    }
    expect(await (await fetch(`${bot.healthUrl}/metrics`)).text()).toBe('cellops_test_metric 1\n');
    expect((await fetch(`${bot.healthUrl}/slack/events`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${bot.healthUrl}/readyz`, { method: 'POST' })).status).toBe(405);
    await command(env, bot, '/cell', 'help', OPERATOR);
  });

  it('answers /readyz 503 with the reason when Redis does not answer, while /livez stays 200', async () => {
    const env = await setup();
    const [bot] = env.bots as [TestBot];
    const base = bot.url.replace('/slack/events', '');
    bot.redis.disconnect();
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(503);
    const body = (await ready.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ ok: false, slack: 'ok' });
    expect(String(body.redis)).not.toBe('ok');
    expect((await fetch(`${base}/livez`)).status).toBe(200);
  });

  it('starts when Slack is unreachable at start, reports it on /healthz, and recovers', async () => {
    const env = await setup(0);
    env.slack.fail('auth.test', 200, 1, 'invalid_auth');
    const bot = await startTestBot({
      redisUrl: redis.server.url,
      config: testConfig({ prefix: env.prefix }),
      slack: env.slack,
      ownerId: 'bot-unauth',
      logger: env.logger,
    });
    env.bots.push(bot);
    expect(env.logger.lines.some((l) => l.level === 'error' && l.msg.includes('auth.test failed'))).toBe(
      true,
    );
    const base = bot.url.replace('/slack/events', '');
    // The one failure is used up by the start; /healthz retries auth.test and now succeeds.
    const health = await fetch(`${base}/healthz`);
    expect(await health.json()).toMatchObject({ ok: true, slack: 'ok' });
    const answer = await command(env, bot, '/cell', 'help', OPERATOR);
    expect(JSON.stringify(answer.blocks)).toContain('/failover');
  });

  it('handles a redelivered click once', async () => {
    const env = await setup();
    const [bot] = env.bots as [TestBot];
    await command(env, bot, '/failover', 'cn1', OPERATOR);
    const fence = await approvalRequest(env, 'fence');
    await approveTwice(env, [bot, bot], { value: fence.value, user: STRANGER, answerId: 'redelivered' });
    await command(env, bot, '/cell', 'help', OPERATOR);
    await env.slack.waitFor('the answer to the first delivery', () =>
      env.slack.responses.find((r) => r.id === 'redelivered'),
    );
    await command(env, bot, '/cell', 'runs', OPERATOR);
    expect(env.slack.responses.filter((r) => r.id === 'redelivered')).toHaveLength(1);
  });
  it("records an authorized approver's redelivered Approve click once: one decision, one edit, one run of the step", async () => {
    // Slack may redeliver to another replica: the first delivery goes to one bot, the redelivery to the other.
    const env = await setup(2);
    const [bot, other] = env.bots as [TestBot, TestBot];
    await command(env, bot, '/failover', 'cn1', OPERATOR);
    const fence = await approvalRequest(env, 'fence');
    await approveTwice(env, [bot, other], {
      value: fence.value,
      user: APPROVER_A,
      answerId: 'redelivered-approve',
    });
    // The redelivery is done with either way: dropped, or (were it taken for a new click) answered.
    await env.slack.waitFor('the redelivery to be handled', () =>
      env.logger.lines.some((l) => l.msg === 'dropped a redelivered Slack request') ||
      env.slack.responses.some((r) => r.id === 'redelivered-approve')
        ? true
        : undefined,
    );
    await approvalRequest(env, 'swap');
    await Promise.all([bot.presenter.idle(), other.presenter.idle()]);

    // The winning click is not answered (the message shows the decision); a second decision would be.
    expect(env.slack.responses.filter((r) => r.id === 'redelivered-approve')).toEqual([]);
    const edits = updatesOf(env, fence.ts);
    expect(edits).toHaveLength(1);
    expect(blocksText(edits[0]!)).toContain(`Approved by <@${APPROVER_A}>`);
    const run = await bot.engine.get((await bot.engine.list(1))[0]!.id);
    const step = run?.steps.find((s) => s.id === 'fence');
    expect(step?.approvals.map((a) => [a.user, a.decision])).toEqual([[APPROVER_A, 'approve']]);
    expect(step?.status).toBe('succeeded');
    expect(step?.attempts).toBe(1);
    expect(step?.output.filter((line) => line === 'fence done on cn1')).toHaveLength(1);
  });

  it('acknowledges a slash command without waiting for Redis, and answers it once Redis is back', async () => {
    const env = await setup();
    const [bot] = env.bots as [TestBot];
    const admin = testRedis(redis.server.url);
    onTestFinished(async () => {
      await admin.call('CLIENT', 'UNPAUSE');
      await closeRedis(admin);
    });
    // Writes (the redelivery check's SET NX among them) wait until UNPAUSE; the pause outlasts the test,
    // so an ack that waited for Redis would never come.
    await admin.call('CLIENT', 'PAUSE', '300000', 'WRITE');
    const sent = await sendCommand(env, bot, '/cell', 'help', OPERATOR);
    expect(sent.status).toBe(200);
    expect(env.slack.responses.find((r) => r.id === sent.id)).toBeUndefined();
    await admin.call('CLIENT', 'UNPAUSE');
    const answer = await env.slack.waitFor('the answer once Redis is back', () =>
      env.slack.responses.find((r) => r.id === sent.id),
    );
    expect(JSON.stringify(answer.body.blocks)).toContain('/failover');
  }, 20_000);

  it('acknowledges a redelivered slash command and drops it', async () => {
    const env = await setup();
    const [bot] = env.bots as [TestBot];
    const body = slashCommandBody({
      command: '/cell',
      text: 'help',
      user: OPERATOR,
      responseUrl: env.slack.responseUrl('redelivered-command'),
      triggerId: '1700000000.1.redelivered',
    });
    expect((await postSigned(bot.url, body, { secret: SIGNING_SECRET })).status).toBe(200);
    expect((await postSigned(bot.url, body, { secret: SIGNING_SECRET })).status).toBe(200);
    await env.slack.waitFor('the redelivery to be dropped', () =>
      env.logger.lines.find((l) => l.msg === 'dropped a redelivered Slack request'),
    );
    await env.slack.waitFor('the answer to the first delivery', () =>
      env.slack.responses.find((r) => r.id === 'redelivered-command'),
    );
    await command(env, bot, '/cell', 'runs', OPERATOR);
    expect(env.slack.responses.filter((r) => r.id === 'redelivered-command')).toHaveLength(1);
  });
  it('answers with chat.postEphemeral when the response_url refuses the answer', async () => {
    const env = await setup();
    const [bot] = env.bots as [TestBot];
    // A path the stand-in answers 404, as Slack does for an expired response_url.
    const expired = env.slack.apiUrl.replace('/api/', '/expired/T0TEAM/1/abc');
    const body = slashCommandBody({ command: '/cell', text: 'help', user: OPERATOR, responseUrl: expired });
    expect((await postSigned(bot.url, body, { secret: SIGNING_SECRET })).status).toBe(200);
    const ephemeral = await env.slack.waitFor('the fallback answer', () =>
      env.slack.callsOf('chat.postEphemeral').find((c) => c.args.user === OPERATOR),
    );
    expect(ephemeral.args.channel).toBe('C0ALERTS');
    expect(JSON.stringify(ephemeral.args.blocks)).toContain('/failover');
  });
});
