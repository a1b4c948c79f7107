/**
 * Acknowledgement latency of Slack requests (Slack allows 3 s; the goal is p99 < 50 ms on loopback): the
 * time from sending a signed request to /slack/events to its HTTP answer, 50 requests at a time.
 *
 * Subject: the whole cellops bot (Bolt HTTP receiver, command handlers, real engine on a real Redis, the
 * Web API pointed at a loopback stand-in). Baseline: a bare Bolt app on the same receiver whose listeners
 * only ack. Rounds alternate between the two so that the machine's other work weighs on both alike.
 */
import { App, HTTPReceiver, LogLevel } from '@slack/bolt';
import type { AddressInfo } from 'node:net';
import { RUN_ACTIONS } from '../src/bot/action-ids.js';
import { createLogger } from '../src/infra/logger.js';
import { testConfig, APPROVER_A, OPERATOR } from '../test/support/bot-fixtures.js';
import { SIGNING_SECRET, startTestBot } from '../test/support/bot-harness.js';
import { startRedis } from '../test/support/redis-server.js';
import { blockActionsBody, postSigned, slashCommandBody } from '../test/support/slack-requests.js';
import { startSlackStandIn } from '../test/support/slack-stand-in.js';
import { compare, elapsedMs, summarize, type BenchRow } from './harness.js';

const CONCURRENCY = 50;
const ROUNDS = 20;
const WARMUP_ROUNDS = 3;
const GOAL = 'goal: p99 < 50 ms, ratio ≤ 1.2';

async function bareBolt(): Promise<{ url: string; stop: () => Promise<void> }> {
  const receiver = new HTTPReceiver({ signingSecret: SIGNING_SECRET, endpoints: '/slack/events' });
  // botId and botUserId given: Bolt calls no auth.test, as cellops does not on the ack path.
  const app = new App({
    receiver,
    token: 'xoxb-bench',
    botId: 'B0BENCH',
    botUserId: 'U0BENCH',
    convoStore: false,
    logLevel: LogLevel.ERROR,
  });
  app.command('/cell', async ({ ack }) => {
    await ack();
  });
  app.action(RUN_ACTIONS.approve, async ({ ack }) => {
    await ack();
  });
  const server = await receiver.start({ port: 0, host: '127.0.0.1' }, {});
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`,
    stop: () => app.stop() as Promise<void>,
  };
}

/** One round: `CONCURRENCY` requests at once; each one's latency to its HTTP answer. */
async function round(url: string, makeBody: (i: number) => string): Promise<number[]> {
  const bodies = Array.from({ length: CONCURRENCY }, (_, i) => makeBody(i));
  return Promise.all(
    bodies.map(async (body) => {
      const start = process.hrtime.bigint();
      const response = await postSigned(url, body, { secret: SIGNING_SECRET });
      const ms = elapsedMs(start);
      if (response.status !== 200) throw new Error(`ack bench: HTTP ${response.status} from ${url}`);
      return ms;
    }),
  );
}

export async function run(): Promise<BenchRow[]> {
  const redis = await startRedis();
  const slack = await startSlackStandIn();
  const config = testConfig({ prefix: 'bench:ack:' });
  const bot = await startTestBot({
    redisUrl: redis.url,
    config,
    slack,
    ownerId: 'bench-bot',
    logger: createLogger({ level: 'silent' }),
  });
  const bare = await bareBolt();
  let seq = 0;
  const command = () =>
    slashCommandBody({
      command: '/cell',
      text: 'help',
      user: OPERATOR,
      responseUrl: slack.responseUrl(`b${++seq}`),
    });
  // A click on a run that does not exist: acked first, then answered "no run" through response_url.
  const click = () =>
    blockActionsBody({
      actionId: RUN_ACTIONS.approve,
      value: JSON.stringify({ runId: 'nosuchrun', stepId: 'fence', round: 1 }),
      user: APPROVER_A,
      responseUrl: slack.responseUrl(`b${++seq}`),
    });

  const samples = {
    command: { ours: [] as number[], bare: [] as number[] },
    click: { ours: [] as number[], bare: [] as number[] },
  };
  try {
    for (let r = 0; r < WARMUP_ROUNDS + ROUNDS; r++) {
      const keep = r >= WARMUP_ROUNDS;
      for (const kind of ['command', 'click'] as const) {
        const body = kind === 'command' ? command : click;
        const ours = await round(bot.url, body);
        const base = await round(bare.url, body);
        if (keep) {
          samples[kind].ours.push(...ours);
          samples[kind].bare.push(...base);
        }
      }
      // Let the bot's after-ack work (response_url posts) finish between rounds.
      await bot.presenter.idle();
    }
  } finally {
    await bare.stop();
    await bot.close();
    await slack.close();
    await redis.stop();
  }

  const rows: BenchRow[] = [];
  for (const [kind, label] of [
    ['command', 'slash command /cell help'],
    ['click', 'button click (Approve)'],
  ] as const) {
    const baseline = summarize(`ack ${label}, bare Bolt no-op`, samples[kind].bare, {
      note: `${CONCURRENCY} concurrent`,
    });
    const subject = compare(
      summarize(`ack ${label}, cellops`, samples[kind].ours, { note: `${CONCURRENCY} concurrent; ${GOAL}` }),
      baseline,
    );
    rows.push(subject, baseline);
  }
  return rows;
}
