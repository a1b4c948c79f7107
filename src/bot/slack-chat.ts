/**
 * The Chat port over Slack's Web API (WebClient from @slack/bolt's `webApi` export).
 *
 * A failover must never wait on Slack: WebClient's default retry policy retries ten times over about 30
 * minutes and, on a 429, pauses its whole queue for as long as Retry-After says. So the client is built
 * here with an explicit, bounded policy (`SLACK_RETRY`, a per-request timeout) and rate-limited calls are
 * rejected by WebClient and retried by us, honouring Retry-After up to `maxRateLimitWaitMs` in total.
 */
import { webApi, type Logger as SlackLogger } from '@slack/bolt';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Chat, MessageRef, OutgoingMessage } from '../ports/chat.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import { createRedisQuarantine } from '../infra/redis-quarantine.js';
import type { RedisKeys } from '../infra/redis-keys.js';
import { ExternalError } from '../errors.js';
import { redactSecrets } from '../infra/redact.js';

type WebClient = InstanceType<typeof webApi.WebClient>;
type WebClientOptions = ConstructorParameters<typeof webApi.WebClient>[1];

/**
 * Two retries, 0.5 s then 1 s (p-retry options): enough for a dropped connection, short enough that a
 * Slack outage costs a run seconds, not half an hour.
 */
export const SLACK_RETRY = {
  retries: 2,
  factor: 2,
  minTimeout: 500,
  maxTimeout: 1_000,
  randomize: false,
} as const;
/** Per-request timeout of Web API calls, in milliseconds. */
export const SLACK_TIMEOUT_MS = 10_000;

/** The Web API client options cellops uses everywhere (the Bolt app's listener client too). */
export function slackClientOptions(options: {
  apiUrl?: string | undefined;
  logger?: SlackLogger;
  retries?: number;
  timeoutMs?: number;
}): NonNullable<WebClientOptions> {
  return {
    ...(options.apiUrl === undefined ? {} : { slackApiUrl: options.apiUrl }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    retryConfig: { ...SLACK_RETRY, retries: options.retries ?? SLACK_RETRY.retries },
    timeout: options.timeoutMs ?? SLACK_TIMEOUT_MS,
    // We honour Retry-After ourselves, bounded; WebClient's own handling pauses every call for as long as
    // Slack asks, with no limit.
    rejectRateLimitedCalls: true,
  };
}

export function createSlackWebClient(
  token: string,
  options: Parameters<typeof slackClientOptions>[0] = {},
): WebClient {
  return new webApi.WebClient(token, slackClientOptions(options));
}

export interface SlackChatDeps {
  readonly client: WebClient;
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How long user-group members are trusted without asking Slack again. Default 60 s. */
  readonly usergroupTtlMs?: number;
  /** How long a stale member list may stand in when Slack cannot be reached. Default 1 h. */
  readonly usergroupStaleMs?: number;
  /** Total time one call may spend waiting out 429s before it fails. Default 30 s. */
  readonly maxRateLimitWaitMs?: number;
}

interface CachedMembers {
  readonly users: readonly string[];
  readonly at: number;
}

/** The cache decides who may approve: only Slack user ids, dated when they were read. */
const cachedMembersSchema: z.ZodType<CachedMembers> = z.looseObject({
  users: z.array(z.string().regex(/^[UW][A-Z0-9]{2,}$/, 'must be Slack user ids')).max(100_000),
  at: z.number().int().nonnegative(),
});

const HINTS: Record<string, string> = {
  not_in_channel: 'invite the bot to the channel (/invite @cellops)',
  channel_not_found: 'check slack.channel in the configuration and that the bot was invited',
  invalid_auth: 'check SLACK_BOT_TOKEN',
  not_authed: 'check SLACK_BOT_TOKEN',
  token_revoked: 'the bot token was revoked; reinstall the app and update SLACK_BOT_TOKEN',
  missing_scope: 'add the missing OAuth scope (see manifest.yml) and reinstall the app',
  invalid_blocks: 'a message did not meet Block Kit rules; this is a cellops bug',
  msg_too_long: 'a message was too long; this is a cellops bug',
};

export function createSlackChat(deps: SlackChatDeps): Chat {
  const { client, redis, keys, clock, logger } = deps;
  const ttlMs = deps.usergroupTtlMs ?? 60_000;
  const staleMs = deps.usergroupStaleMs ?? 3_600_000;
  const maxWaitMs = deps.maxRateLimitWaitMs ?? 30_000;

  /** One Web API call: bounded 429 handling and errors that say what to fix. */
  const call = async (method: string, args: Record<string, unknown>): Promise<Record<string, unknown>> => {
    let waited = 0;
    for (;;) {
      try {
        return (await client.apiCall(method, args)) as unknown as Record<string, unknown>;
      } catch (error) {
        if (error instanceof webApi.WebAPIRateLimitedError) {
          const waitMs = Math.max(1, error.retryAfter) * 1_000;
          if (waited + waitMs > maxWaitMs) {
            throw new ExternalError(
              'slack_rate_limited',
              `Slack rate-limited ${method} for ${error.retryAfter}s, longer than cellops waits (${maxWaitMs / 1_000}s); the message was not sent`,
              { retryable: true, cause: error },
            );
          }
          logger.warn({ method, retryAfterS: error.retryAfter }, 'Slack rate limit: waiting as asked');
          await clock.sleep(waitMs);
          waited += waitMs;
          continue;
        }
        if (error instanceof webApi.WebAPIPlatformError) {
          const code = String(error.data.error);
          const hint = HINTS[code];
          throw new ExternalError(
            'slack_error',
            `Slack refused ${method}: ${code}${hint ? ` — ${hint}` : ''}`,
            {
              cause: error,
            },
          );
        }
        const message = error instanceof Error ? redactSecrets(error.message) : String(error);
        throw new ExternalError('slack_unreachable', `Slack's Web API did not answer ${method}: ${message}`, {
          retryable: true,
          cause: error,
        });
      }
    }
  };

  const content = (message: { text: string; blocks?: readonly unknown[] | undefined }) => ({
    text: message.text,
    ...(message.blocks === undefined ? {} : { blocks: message.blocks }),
  });

  const quarantine = createRedisQuarantine({ redis, keys, logger });
  /**
   * A cache entry dated in the future was not written by cellops (we date it with our clock when we
   * read Slack): it would stay "fresh" forever and keep a removed approver approving, so it is refused.
   */
  const readCache = async (id: string): Promise<CachedMembers | undefined> =>
    quarantine.value(
      keys.usergroup(id),
      await redis.get(keys.usergroup(id)),
      cachedMembersSchema.refine((entry) => entry.at <= clock.now(), 'is dated in the future'),
    );

  return {
    async post(message: OutgoingMessage): Promise<MessageRef> {
      const result = await call('chat.postMessage', {
        channel: message.channel,
        ...(message.threadTs === undefined ? {} : { thread_ts: message.threadTs }),
        ...content(message),
        unfurl_links: false,
        unfurl_media: false,
      });
      const ts = result.ts;
      const channel = result.channel;
      if (typeof ts !== 'string')
        throw new ExternalError('slack_error', 'Slack answered chat.postMessage without a ts');
      return { channel: typeof channel === 'string' ? channel : message.channel, ts };
    },

    async update(ref, message) {
      await call('chat.update', { channel: ref.channel, ts: ref.ts, ...content(message) });
    },

    async postEphemeral(channel, user, message) {
      await call('chat.postEphemeral', {
        channel,
        user,
        ...(message.threadTs === undefined ? {} : { thread_ts: message.threadTs }),
        ...content(message),
      });
    },

    async permalink(ref) {
      try {
        const result = await call('chat.getPermalink', { channel: ref.channel, message_ts: ref.ts });
        return typeof result.permalink === 'string' ? result.permalink : undefined;
      } catch (error) {
        logger.warn({ err: error, channel: ref.channel, ts: ref.ts }, 'could not get a permalink');
        return undefined;
      }
    },

    async usergroupMembers(usergroupId) {
      const cached = await readCache(usergroupId);
      const now = clock.now();
      if (cached && now - cached.at < ttlMs) return cached.users;
      try {
        const result = await call('usergroups.users.list', { usergroup: usergroupId });
        const users = Array.isArray(result.users)
          ? result.users.filter((u): u is string => typeof u === 'string')
          : [];
        const entry: CachedMembers = { users, at: now };
        await redis.set(keys.usergroup(usergroupId), JSON.stringify(entry), 'PX', staleMs);
        return users;
      } catch (error) {
        // During a Slack hiccup the last known members decide, so approvals keep working.
        if (cached) {
          logger.warn({ err: error, usergroup: usergroupId }, 'using the cached members of a user group');
          return cached.users;
        }
        throw error;
      }
    },
  };
}
