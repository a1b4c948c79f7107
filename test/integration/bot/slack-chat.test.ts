import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createSlackChat, createSlackWebClient } from '../../../src/bot/slack-chat.js';
import { createRedisKeys } from '../../../src/infra/redis-keys.js';
import { createSystemClock } from '../../../src/infra/system-clock.js';
import { startRedis, type RedisServer } from '../../support/redis-server.js';
import { closeRedis, testRedis, uniquePrefix } from '../../support/redis-client.js';
import { startSlackStandIn, type SlackStandIn } from '../../support/slack-stand-in.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { ManualClock } from '../../fakes/manual-clock.js';

let server: RedisServer;
let redis: Redis;
let slack: SlackStandIn;

beforeAll(async () => {
  server = await startRedis();
  redis = testRedis(server.url);
  slack = await startSlackStandIn();
});

afterAll(async () => {
  await closeRedis(redis);
  await slack.close();
  await server.stop();
});

function chatWith(options: { clock?: ManualClock; maxRateLimitWaitMs?: number } = {}) {
  const keys = createRedisKeys(uniquePrefix('slack-chat'));
  const client = createSlackWebClient('xoxb-test-token', { apiUrl: slack.apiUrl, timeoutMs: 2_000 });
  return {
    keys,
    chat: createSlackChat({
      client,
      redis,
      keys,
      clock: options.clock ?? createSystemClock(),
      logger: new RecordingLogger(),
      ...(options.maxRateLimitWaitMs === undefined ? {} : { maxRateLimitWaitMs: options.maxRateLimitWaitMs }),
    }),
  };
}

describe('Slack chat adapter', () => {
  it('posts, threads, edits and links messages through the Web API with the bot token', async () => {
    const { chat } = chatWith();
    const blocks = [{ type: 'section', text: { type: 'mrkdwn', text: 'hi' } }];
    const ref = await chat.post({ channel: 'C0ALERTS', text: 'hello', blocks });
    await chat.post({ channel: ref.channel, threadTs: ref.ts, text: 'in thread' });
    await chat.update(ref, { text: 'edited' });
    await chat.postEphemeral('C0ALERTS', 'U0AAA', { text: 'just you' });
    expect(await chat.permalink(ref)).toBe(
      `https://stand-in.slack.com/archives/C0ALERTS/p${ref.ts.replace('.', '')}`,
    );
    const posts = slack.callsOf('chat.postMessage').slice(-2);
    expect(posts[0]?.args).toMatchObject({ channel: 'C0ALERTS', text: 'hello', blocks });
    expect(posts[0]?.token).toBe('xoxb-test-token');
    expect(posts[1]?.args).toMatchObject({ thread_ts: ref.ts, text: 'in thread' });
    expect(slack.callsOf('chat.update').at(-1)?.args).toMatchObject({ ts: ref.ts, text: 'edited' });
    expect(slack.callsOf('chat.postEphemeral').at(-1)?.args).toMatchObject({ user: 'U0AAA' });
  });

  it('waits as long as Retry-After says on a 429, then sends', async () => {
    const { chat } = chatWith();
    const before = slack.callsOf('chat.update').length;
    slack.rateLimit('chat.update', 1);
    await chat.update({ channel: 'C0ALERTS', ts: '1.2' }, { text: 'after the limit' });
    expect(slack.callsOf('chat.update').length - before).toBe(2);
  });

  it('gives up at once when Retry-After is longer than it may wait, so a run is not stalled', async () => {
    const clock = new ManualClock();
    const { chat } = chatWith({ clock, maxRateLimitWaitMs: 30_000 });
    slack.rateLimit('chat.postMessage', 3_600);
    await expect(chat.post({ channel: 'C0ALERTS', text: 'x' })).rejects.toMatchObject({
      code: 'slack_rate_limited',
    });
    expect(clock.pending).toBe(0);
  });

  it('retries a server error a bounded number of times and then fails', async () => {
    const { chat } = chatWith();
    const before = slack.callsOf('chat.postMessage').length;
    slack.fail('chat.postMessage', 500, 10);
    await expect(chat.post({ channel: 'C0ALERTS', text: 'x' })).rejects.toMatchObject({
      code: 'slack_unreachable',
    });
    expect(slack.callsOf('chat.postMessage').length - before).toBe(3);
    slack.fail('chat.postMessage', 500, 0);
  });

  it('says what to do when Slack refuses a call', async () => {
    const { chat } = chatWith();
    slack.fail('chat.postMessage', 200, 1, 'not_in_channel');
    await expect(chat.post({ channel: 'C0ALERTS', text: 'x' })).rejects.toThrow(
      /not_in_channel — invite the bot/,
    );
  });

  it('caches user-group members in Redis and serves the last list while Slack fails', async () => {
    const clock = new ManualClock();
    const { chat, keys } = chatWith({ clock });
    slack.usergroups.set('S0ONCALL', ['U0ONE', 'U0TWO']);
    const before = slack.callsOf('usergroups.users.list').length;
    expect(await chat.usergroupMembers('S0ONCALL')).toEqual(['U0ONE', 'U0TWO']);
    expect(await chat.usergroupMembers('S0ONCALL')).toEqual(['U0ONE', 'U0TWO']);
    expect(slack.callsOf('usergroups.users.list').length - before).toBe(1);
    expect(await redis.exists(keys.usergroup('S0ONCALL'))).toBe(1);

    await clock.advance(61_000);
    slack.fail('usergroups.users.list', 200, 1, 'ratelimited_by_test');
    expect(await chat.usergroupMembers('S0ONCALL')).toEqual(['U0ONE', 'U0TWO']);
    slack.usergroups.set('S0ONCALL', ['U0THREE']);
    expect(await chat.usergroupMembers('S0ONCALL')).toEqual(['U0THREE']);
  });
});
