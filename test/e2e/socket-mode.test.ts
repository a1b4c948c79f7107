/**
 * The bot in Socket Mode end to end: Bolt's SocketModeReceiver (SLACK_APP_TOKEN set) against a loopback
 * stand-in of Slack's Socket Mode (apps.connections.open through SLACK_API_URL, a WebSocket, hello,
 * envelopes, acknowledgements, refreshes and dead connections), a real Redis, the real engine with a
 * test runbook, and the Web API stand-in recording what the bot sent.
 */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { RUN_ACTIONS } from '../../src/views/action-ids.js';
import { RecordingLogger } from '../fakes/recording-logger.js';
import { APPROVER_A, APPROVER_B, OPERATOR, testConfig } from '../support/bot-fixtures.js';
import { startTestBot, type TestBot } from '../support/bot-harness.js';
import { uniquePrefix } from '../support/redis-client.js';
import { ONCALL } from '../support/redis-engine.js';
import { redisForSuite } from '../support/redis-suite.js';
import { blockActionsPayload, slashCommandPayload } from '../support/slack-requests.js';
import { approvalRequest, blocksText, updatesOf, waitForResult } from '../support/slack-run-messages.js';
import { startSlackStandIn, type SlackStandIn } from '../support/slack-stand-in.js';
import {
  startSocketModeStandIn,
  type DeliverOptions,
  type SocketConnection,
  type SocketModeStandIn,
} from '../support/socket-mode-stand-in.js';
import { until } from '../support/until.js';

/** How long a reconnection may take: a second's wait, plus the detection of a dead link (about 7 s). */
const RECONNECT_DEADLINE_MS = 30_000;

const redis = redisForSuite();

interface Env {
  readonly slack: SlackStandIn;
  readonly socket: SocketModeStandIn;
  readonly bots: TestBot[];
  readonly logger: RecordingLogger;
  readonly prefix: string;
}

const envs: Env[] = [];

afterEach(async () => {
  for (const env of envs.splice(0)) {
    await Promise.all(env.bots.map((bot) => bot.close()));
    await env.socket.close();
    await env.slack.close();
  }
});

async function setup(bots = 1, registry?: Registry): Promise<Env> {
  const slack = await startSlackStandIn();
  slack.usergroups.set('S0ONCALL', ONCALL);
  const socket = await startSocketModeStandIn(slack);
  const prefix = uniquePrefix('e2e-socket');
  const logger = new RecordingLogger();
  const env: Env = { slack, socket, bots: [], logger, prefix };
  envs.push(env);
  for (let i = 0; i < bots; i++) {
    env.bots.push(
      await startTestBot({
        redisUrl: redis.server.url,
        config: testConfig({ prefix }),
        slack,
        ownerId: `socket-bot-${i}-${prefix}`,
        logger,
        appToken: socket.appToken,
        ...(registry === undefined ? {} : { registry, metrics: () => registry.metrics() }),
      }),
    );
  }
  return env;
}

let seq = 0;

/** Delivers a slash command envelope; resolves once it is acknowledged, with its response_url id. */
async function command(env: Env, text: string, user: string, options: DeliverOptions = {}) {
  const id = `socket-cmd-${++seq}`;
  const [name, ...rest] = text.split(' ');
  const payload = slashCommandPayload({
    command: name ?? '',
    text: rest.join(' '),
    user,
    responseUrl: env.slack.responseUrl(id),
  });
  const delivery = env.socket.deliver('slash_commands', payload, options);
  await delivery.acked;
  return { id, payload, delivery };
}

async function answerTo(env: Env, id: string): Promise<Record<string, unknown>> {
  return (await env.slack.waitFor(`the answer ${id}`, () => env.slack.responses.find((r) => r.id === id)))
    .body;
}

function approveClick(env: Env, value: string, user: string): Record<string, unknown> {
  return blockActionsPayload({
    actionId: RUN_ACTIONS.approve,
    value,
    user,
    responseUrl: env.slack.responseUrl(`socket-click-${++seq}`),
  });
}

async function readyz(bot: TestBot): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${bot.healthUrl}/readyz`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Waits (up to the deadline) for a connection other than `old` to be open, and for /readyz to say so. */
async function reconnected(env: Env, bot: TestBot, old: SocketConnection): Promise<SocketConnection> {
  const fresh = await until(
    'a new Socket Mode connection',
    () => env.socket.open().find((c) => c.id > old.id),
    { timeoutMs: RECONNECT_DEADLINE_MS, everyMs: 100 },
  );
  await until('/readyz to be 200 again', async () => (await readyz(bot)).status === 200, {
    timeoutMs: RECONNECT_DEADLINE_MS,
  });
  return fresh;
}

describe('Socket Mode end to end', () => {
  it('connects with the app token, answers slash commands, and runs a whole failover approved over the socket', async () => {
    const env = await setup();
    const [bot] = env.bots as [TestBot];
    expect(env.slack.callsOf('apps.connections.open').map((c) => c.token)).toEqual([env.socket.appToken]);
    expect(env.socket.open()).toHaveLength(1);
    expect(await readyz(bot)).toMatchObject({ status: 200, body: { socket: 'connected', redis: 'ok' } });

    const help = await command(env, '/cell help', OPERATOR);
    expect(JSON.stringify((await answerTo(env, help.id)).blocks)).toContain('/failover');

    const started = await command(env, '/failover cn1', OPERATOR);
    expect(String((await answerTo(env, started.id)).text)).toContain('Started *failover cn1*');
    const fence = await approvalRequest(env, 'fence');
    const first = env.socket.deliver('interactive', approveClick(env, fence.value, APPROVER_A));
    expect((await first.acked).connection).toBe(first.connection.id);
    const swap = await approvalRequest(env, 'swap');
    await env.socket.deliver('interactive', approveClick(env, swap.value, APPROVER_B)).acked;
    await waitForResult(env, /failover cn1 succeeded/);
    await bot.presenter.idle();

    expect(blocksText(updatesOf(env, fence.ts)[0]!)).toContain(`Approved by <@${APPROVER_A}>`);
    expect(blocksText(updatesOf(env, swap.ts)[0]!)).toContain(`Approved by <@${APPROVER_B}>`);
    const [run] = await bot.engine.list(1);
    expect(run?.status).toBe('succeeded');
    // Every envelope was acknowledged exactly once, on the connection it came on.
    const delivered = env.socket.connections.flatMap((c) => c.envelopes);
    expect(env.socket.acks.map((a) => a.envelopeId).sort()).toEqual([...delivered].sort());
  });

  it('does not connect with a wrong app token', async () => {
    const slack = await startSlackStandIn();
    const socket = await startSocketModeStandIn(slack, { appToken: 'xapp-1-the-right-one' });
    envs.push({ slack, socket, bots: [], logger: new RecordingLogger(), prefix: 'unused' });
    await expect(
      startTestBot({
        redisUrl: redis.server.url,
        config: testConfig({ prefix: uniquePrefix('e2e-socket') }),
        slack,
        ownerId: 'socket-bot-wrong-token',
        logger: new RecordingLogger(),
        appToken: 'xapp-1-a-wrong-one',
      }),
    ).rejects.toThrow(/invalid_auth/);
    expect(socket.refusedTokens()).toBe(1);
    expect(socket.connections).toEqual([]);
  });

  it("reconnects after Slack's refresh_requested, after a dropped TCP connection and after a silent stall", async () => {
    const registry = new Registry();
    const env = await setup(1, registry);
    const [bot] = env.bots as [TestBot];
    let connection = env.socket.open()[0]!;
    const metrics = async () => (await fetch(`${bot.healthUrl}/metrics`)).text();
    expect(await metrics()).toMatch(/^cellops_slack_socket_connected 1$/m);

    env.socket.refresh(connection);
    connection = await reconnected(env, bot, connection);
    const afterRefresh = await command(env, '/cell help', OPERATOR);
    expect(afterRefresh.delivery.connection.id).toBe(connection.id);
    await answerTo(env, afterRefresh.id);

    env.socket.drop(connection);
    // While the socket is down, readiness says so (for about a second, before the reconnection).
    const down = await until('/readyz to report the lost socket', async () => {
      const probe = await readyz(bot);
      return probe.status === 503 ? probe : undefined;
    });
    expect(String(down.body.socket)).toMatch(/Socket Mode not connected/);
    expect(await metrics()).toMatch(/^cellops_slack_socket_connected 0$/m);
    expect(await (await fetch(`${bot.healthUrl}/livez`)).json()).toEqual({ ok: true });
    connection = await reconnected(env, bot, connection);
    await answerTo(env, (await command(env, '/cell help', OPERATOR)).id);

    env.socket.stall(connection);
    const last = await reconnected(env, bot, connection);
    const afterStall = await command(env, '/cell help', OPERATOR);
    expect(afterStall.delivery.connection.id).toBe(last.id);
    await answerTo(env, afterStall.id);
    expect(env.slack.callsOf('apps.connections.open')).toHaveLength(4);
    expect(await metrics()).toMatch(/^cellops_slack_socket_connected 1$/m);
    expect(await metrics()).toMatch(/^cellops_slack_socket_reconnects_total 3$/m);
  }, 120_000);

  it('keeps reconnecting while apps.connections.open fails, where the Slack client alone would give up', async () => {
    const env = await setup();
    const [bot] = env.bots as [TestBot];
    const connection = env.socket.open()[0]!;
    // Two attempts in a row fail (each is three HTTP calls: the Web API client retries twice). An HTTP
    // error of apps.connections.open is what @slack/socket-mode takes for unrecoverable and stops on.
    env.slack.fail('apps.connections.open', 500, 6);
    env.socket.drop(connection);
    await reconnected(env, bot, connection);
    await answerTo(env, (await command(env, '/cell help', OPERATOR)).id);
    expect(env.slack.callsOf('apps.connections.open')).toHaveLength(8);
    expect(env.logger.lines.filter((l) => l.msg.includes('reconnection failed'))).toHaveLength(2);
  }, 120_000);

  it('spreads envelopes over two replicas, each holding a connection, and handles each envelope once', async () => {
    const env = await setup(2);
    const [a, b] = env.bots as [TestBot, TestBot];
    expect(env.socket.open()).toHaveLength(2);
    const sent = await Promise.all(Array.from({ length: 10 }, () => command(env, '/cell runs', OPERATOR)));
    for (const { id } of sent) await answerTo(env, id);
    const started = await command(env, '/failover cn1', OPERATOR);
    await answerTo(env, started.id);
    const fence = await approvalRequest(env, 'fence');
    const [first, second] = env.socket.open() as [SocketConnection, SocketConnection];
    await env.socket.deliver('interactive', approveClick(env, fence.value, APPROVER_A), { to: second }).acked;
    const swap = await approvalRequest(env, 'swap');
    await env.socket.deliver('interactive', approveClick(env, swap.value, APPROVER_B), { to: first }).acked;
    await waitForResult(env, /failover cn1 succeeded/);
    await Promise.all([a.presenter.idle(), b.presenter.idle()]);

    expect(first.envelopes.length).toBeGreaterThan(0);
    expect(second.envelopes.length).toBeGreaterThan(0);
    const ids = new Set([...sent.map((s) => s.id), started.id]);
    const answers = env.slack.responses.filter((r) => ids.has(r.id));
    expect(answers).toHaveLength(ids.size);
    expect(new Set(answers.map((r) => r.id)).size).toBe(ids.size);
    expect(updatesOf(env, fence.ts)).toHaveLength(1);
    expect(updatesOf(env, swap.ts)).toHaveLength(1);
    expect(await a.engine.list(10)).toHaveLength(1);
  });

  it('changes nothing twice when Slack redelivers an envelope (retry_attempt 1) to the other replica', async () => {
    const env = await setup(2);
    const [a, b] = env.bots as [TestBot, TestBot];
    const [first, second] = env.socket.open() as [SocketConnection, SocketConnection];

    const started = await command(env, '/failover cn1', OPERATOR, { to: first });
    // The same command again, as Slack redelivers it: same payload (same trigger id), next attempt.
    await env.socket.deliver('slash_commands', started.payload, { to: second, retryAttempt: 1 }).acked;
    const fence = await approvalRequest(env, 'fence');
    const click = approveClick(env, fence.value, APPROVER_A);
    await env.socket.deliver('interactive', click, { to: second }).acked;
    await env.socket.deliver('interactive', click, { to: first, retryAttempt: 1 }).acked;
    await approvalRequest(env, 'swap');
    // Both redeliveries are done with either way: dropped, or (were they taken for new requests) answered.
    await until(
      'both redeliveries to be handled',
      () =>
        env.logger.lines.filter((l) => l.msg === 'dropped a redelivered Slack request').length >= 2 ||
        env.slack.responses.filter((r) => r.id === started.id).length >= 2,
    );
    await Promise.all([a.presenter.idle(), b.presenter.idle()]);

    expect(env.slack.responses.filter((r) => r.id === started.id)).toHaveLength(1);
    expect(await a.engine.list(10)).toHaveLength(1);
    const run = await a.engine.get((await a.engine.list(1))[0]!.id);
    const step = run?.steps.find((s) => s.id === 'fence');
    expect(step?.approvals.map((x) => [x.user, x.decision])).toEqual([[APPROVER_A, 'approve']]);
    expect(step?.attempts).toBe(1);
    expect(updatesOf(env, fence.ts)).toHaveLength(1);
    // The click's answer: none for the winning click, and none for its redelivery either.
    const clickAnswerId = String(click.response_url).split('/').at(-1);
    expect(env.slack.responses.filter((r) => r.id === clickAnswerId)).toEqual([]);
  });
});
