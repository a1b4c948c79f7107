/**
 * The environment of the README's variable table as a pure function of an `env` object (probot's way), so
 * tests pass their own. Secrets are kept as they are, and never printed: see `describeEnv`.
 */
import { ConfigError } from '../errors.js';
import { parseRedisUrl, redactRedisUrl } from '../infra/redis-url.js';

const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export interface EnvConfig {
  /** CELLOPS_CONFIG, default ./cellops.yaml. */
  readonly configPath: string;
  /** SLACK_BOT_TOKEN (xoxb-…). Absent: the sandbox starts. */
  readonly botToken?: string;
  /** SLACK_SIGNING_SECRET: required with a bot token in HTTP mode. */
  readonly signingSecret?: string;
  /** SLACK_APP_TOKEN (xapp-…): present means Socket Mode. */
  readonly appToken?: string;
  /** SLACK_API_URL: base URL of Slack's Web API, default Slack's own. */
  readonly slackApiUrl?: string;
  /** PORT, default 3000. */
  readonly port: number;
  /** HEALTH_PORT: the probes and /metrics on a port of their own (default: on PORT). */
  readonly healthPort?: number;
  /** HEALTH_HOST: the address the health port listens on (default: all interfaces). */
  readonly healthHost?: string;
  /**
   * REDIS_URL, default redis://127.0.0.1:6379; checked by parseRedisUrl (Sentinel and TLS forms), with
   * REDIS_SENTINEL_PASSWORD, which createRedisClient reads from the environment again.
   */
  readonly redisUrl: string;
  /** REDIS_URL was set explicitly (the sandbox falls back to its own Redis only when it was not). */
  readonly redisUrlSet: boolean;
  /** LOG_LEVEL, default info. */
  readonly logLevel: string;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function tcpPort(name: string, text: string, problems: string[]): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    problems.push(`${name}: "${text}" is not a TCP port (0–65535)`);
  return port;
}

export function readEnv(env: NodeJS.ProcessEnv): EnvConfig {
  const problems: string[] = [];
  const port = tcpPort('PORT', nonEmpty(env.PORT) ?? '3000', problems);
  const healthPortText = nonEmpty(env.HEALTH_PORT);
  const healthPort =
    healthPortText === undefined ? undefined : tcpPort('HEALTH_PORT', healthPortText, problems);
  if (healthPort !== undefined && healthPort !== 0 && healthPort === port)
    problems.push('HEALTH_PORT: must differ from PORT (leave it unset to serve the probes on PORT)');
  const healthHost = nonEmpty(env.HEALTH_HOST);

  const botToken = nonEmpty(env.SLACK_BOT_TOKEN);
  const appToken = nonEmpty(env.SLACK_APP_TOKEN);
  const signingSecret = nonEmpty(env.SLACK_SIGNING_SECRET);
  if (botToken !== undefined && !botToken.startsWith('xoxb-'))
    problems.push('SLACK_BOT_TOKEN: must be a bot token (starts with xoxb-)');
  if (appToken !== undefined && !appToken.startsWith('xapp-'))
    problems.push('SLACK_APP_TOKEN: must be an app-level token (starts with xapp-)');
  if (botToken !== undefined && appToken === undefined && signingSecret === undefined) {
    problems.push(
      'SLACK_SIGNING_SECRET: is required with SLACK_BOT_TOKEN in HTTP mode (Basic Information → App Credentials)',
    );
  }
  const slackApiUrl = nonEmpty(env.SLACK_API_URL);
  if (slackApiUrl !== undefined && !/^https?:\/\//.test(slackApiUrl))
    problems.push(`SLACK_API_URL: "${slackApiUrl}" is not an http(s) URL`);
  const redisUrl = nonEmpty(env.REDIS_URL);
  try {
    parseRedisUrl(redisUrl ?? DEFAULT_REDIS_URL, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `environment: ${p}`));

  return {
    configPath: nonEmpty(env.CELLOPS_CONFIG) ?? './cellops.yaml',
    ...(botToken === undefined ? {} : { botToken }),
    ...(signingSecret === undefined ? {} : { signingSecret }),
    ...(appToken === undefined ? {} : { appToken }),
    ...(slackApiUrl === undefined ? {} : { slackApiUrl }),
    port,
    ...(healthPort === undefined ? {} : { healthPort }),
    ...(healthHost === undefined ? {} : { healthHost }),
    redisUrl: redisUrl ?? DEFAULT_REDIS_URL,
    redisUrlSet: redisUrl !== undefined,
    logLevel: nonEmpty(env.LOG_LEVEL) ?? 'info',
  };
}

/** The environment for logs: which secrets are set, never their values. */
export function describeEnv(env: EnvConfig): Record<string, unknown> {
  return {
    configPath: env.configPath,
    slackBotToken: env.botToken ? 'set' : 'not set',
    slackSigningSecret: env.signingSecret ? 'set' : 'not set',
    slackMode: env.botToken === undefined ? 'sandbox' : env.appToken ? 'socket' : 'http',
    slackApiUrl: env.slackApiUrl ?? 'https://slack.com/api/',
    port: env.port,
    ...(env.healthPort === undefined ? {} : { healthPort: env.healthPort }),
    redisUrl: redactRedisUrl(env.redisUrl),
  };
}
