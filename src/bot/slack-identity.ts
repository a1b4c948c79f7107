/**
 * The bot's identity from auth.test, called here rather than by Bolt: Bolt calls auth.test in its
 * constructor when given a token and crashes the start when Slack is unreachable, and with only the token
 * and no bot ids it would even call auth.test before acknowledging every request. So auth.test runs once
 * at start in a try/catch, and again from /healthz until it works; the app's `authorize` answers from
 * what it found.
 */
import { webApi } from '@slack/bolt';
import { redactSecrets } from '../infra/redact.js';

export interface BotIdentity {
  readonly botId: string;
  readonly botUserId: string;
  readonly teamId?: string;
}

export interface SlackIdentity {
  /** Calls auth.test; rejects with the problem in words (also kept in `problem()`). */
  check(): Promise<void>;
  /** Undefined until auth.test has succeeded. */
  current(): BotIdentity | undefined;
  /** Why the last auth.test failed, if it did. */
  problem(): string | undefined;
}

export function createSlackIdentity(client: Pick<webApi.WebClient, 'apiCall'>): SlackIdentity {
  let identity: BotIdentity | undefined;
  let authError: string | undefined;
  return {
    async check() {
      try {
        const result = (await client.apiCall('auth.test')) as {
          user_id?: string;
          bot_id?: string;
          team_id?: string;
        };
        if (!result.user_id || !result.bot_id) throw new Error('auth.test answered without user_id/bot_id');
        identity = {
          botId: result.bot_id,
          botUserId: result.user_id,
          ...(result.team_id ? { teamId: result.team_id } : {}),
        };
        authError = undefined;
      } catch (error) {
        authError =
          error instanceof webApi.WebAPIPlatformError
            ? `Slack refused the bot token (${String(error.data.error)}): check SLACK_BOT_TOKEN`
            : `Slack's Web API is not reachable (${redactSecrets(error instanceof Error ? error.message : String(error))}): check the network and SLACK_API_URL`;
        throw new Error(authError, { cause: error });
      }
    },
    current: () => identity,
    problem: () => authError,
  };
}
