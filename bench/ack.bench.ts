/**
 * Acknowledgement latency of Slack requests (Slack allows 3 s; the goal is p99 < 50 ms on loopback): the
 * time from sending a signed request to /slack/events to its HTTP answer, 50 requests at a time.
 *
 * Subject: the whole cellops bot (Bolt HTTP receiver, command handlers, real engine on a real Redis, the
 * Web API pointed at a loopback stand-in). Baseline: a bare Bolt app on the same receiver type whose
 * listeners only ack. Both listen in this process; the requests come from a child process
 * (bench/ack-load-child.ts) that plays Slack: it signs and sends them, times the answers, and receives the
 * bot's response_url posts. So the client's work does not queue on the event loop being measured, while
 * the bot's own after-ack work (dedup in Redis, the handler, the response_url post) still does, as it
 * would in production.
 *
 * Fairness: every round of the subject waits until the bot has answered every request through
 * response_url, so its leftover work never lands in the baseline's round; rounds alternate which of the
 * two goes first; warm-up rounds are dropped. The load average is printed with the figures, since the
 * machine is shared.
 */
import { App, HTTPReceiver, LogLevel } from '@slack/bolt';
import { fork } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { RUN_ACTIONS } from '../src/views/action-ids.js';
import { createLogger } from '../src/infra/logger.js';
import { testConfig } from '../test/support/bot-fixtures.js';
import { SIGNING_SECRET, startTestBot } from '../test/support/bot-harness.js';
import { startRedis } from '../test/support/redis-server.js';
import { startSlackStandIn } from '../test/support/slack-stand-in.js';
import type { AckKind, ChildMessage, ParentMessage } from './ack-load-child.js';
import { compare, summarize, type BenchRow } from './harness.js';

const CONCURRENCY = 50;
const ROUNDS = Number(process.env.ACK_ROUNDS ?? 30);
const WARMUP_ROUNDS = 5;
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

interface LoadClient {
  /** One round of `count` concurrent requests; with `answers`, also waits for their response_url posts. */
  round(url: string, kind: AckKind, answers: boolean): Promise<number[]>;
  stop(): Promise<void>;
}

async function startLoadClient(): Promise<LoadClient> {
  const script = fileURLToPath(new URL('./ack-load-child.ts', import.meta.url));
  const child = fork(script, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let pending: { resolve: (m: ChildMessage) => void; reject: (e: Error) => void } | undefined;
  let exited = false;
  const next = () =>
    new Promise<ChildMessage>((resolve, reject) => {
      if (exited) reject(new Error('ack load child exited'));
      else pending = { resolve, reject };
    });
  child.on('message', (message: ChildMessage) => {
    const waiting = pending;
    pending = undefined;
    if (message.type === 'error') waiting?.reject(new Error(`ack load child: ${message.message}`));
    else waiting?.resolve(message);
  });
  child.on('exit', (code) => {
    exited = true;
    pending?.reject(new Error(`ack load child exited with ${code}`));
    pending = undefined;
  });
  const ready = await next();
  if (ready.type !== 'ready') throw new Error('ack load child did not start');
  let id = 0;
  const request = (message: ParentMessage) => child.send(message);
  return {
    async round(url, kind, answers) {
      const answer = next();
      request({ type: 'round', id: ++id, url, kind, count: CONCURRENCY, answers });
      const message = await answer;
      if (message.type !== 'round' || message.id !== id)
        throw new Error('ack load child answered out of turn');
      return message.latencies;
    },
    async stop() {
      if (exited) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      request({ type: 'stop' });
      await gone;
    },
  };
}

const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

export async function run(): Promise<BenchRow[]> {
  const redis = await startRedis();
  // Only auth.test at start reaches the Web API: /cell help and a click on a missing run answer through
  // response_url, which is the load child's.
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
  const client = await startLoadClient();

  const samples = {
    command: { ours: [] as number[], bare: [] as number[] },
    click: { ours: [] as number[], bare: [] as number[] },
  };
  // CPU of this process per request, one figure a round: unlike latency, hardly moved by other load.
  const cpu = {
    command: { ours: [] as number[], bare: [] as number[] },
    click: { ours: [] as number[], bare: [] as number[] },
  };
  const loadBefore = load();
  try {
    for (let r = 0; r < WARMUP_ROUNDS + ROUNDS; r++) {
      const keep = r >= WARMUP_ROUNDS;
      for (const kind of ['command', 'click'] as const) {
        const order = r % 2 === 0 ? (['ours', 'bare'] as const) : (['bare', 'ours'] as const);
        for (const who of order) {
          const before = process.cpuUsage();
          const latencies =
            who === 'ours'
              ? await client.round(bot.url, kind, true)
              : await client.round(bare.url, kind, false);
          const used = process.cpuUsage(before);
          if (keep) {
            samples[kind][who].push(...latencies);
            cpu[kind][who].push((used.user + used.system) / 1_000 / CONCURRENCY);
          }
        }
      }
    }
  } finally {
    await client.stop();
    await bare.stop();
    await bot.close();
    await slack.close();
    await redis.stop();
  }
  const loadNote = `load avg ${loadBefore} → ${load()}`;

  const rows: BenchRow[] = [];
  for (const [kind, label] of [
    ['command', 'slash command /cell help'],
    ['click', 'button click (Approve)'],
  ] as const) {
    const baseline = summarize(`ack ${label}, bare Bolt no-op`, samples[kind].bare, {
      note: `${CONCURRENCY} concurrent; ${loadNote}`,
    });
    const subject = compare(
      summarize(`ack ${label}, cellops`, samples[kind].ours, { note: `${CONCURRENCY} concurrent; ${GOAL}` }),
      baseline,
    );
    rows.push(subject, baseline);
  }
  for (const [kind, label] of [
    ['command', 'slash command'],
    ['click', 'button click'],
  ] as const) {
    const baseline = summarize(`CPU per ${label}, bare Bolt no-op`, cpu[kind].bare, {
      unit: 'ms CPU',
      note: 'this process, per request: one figure a round',
    });
    const subject = summarize(`CPU per ${label}, cellops`, cpu[kind].ours, { unit: 'ms CPU' });
    // A p99 over 30 rounds is the machine's noise; the medians say what the after-ack work costs.
    rows.push(
      {
        ...subject,
        note: `ack and after-ack work (dedup, handler, response_url post); median ${(subject.p50 / baseline.p50).toFixed(2)}× the baseline's`,
      },
      baseline,
    );
  }
  return rows;
}
