import { describe, expect, it } from 'vitest';
import { describeEnv, readEnv } from '../../../src/config/env.js';
import { ConfigError } from '../../../src/errors.js';

describe('environment', () => {
  it('defaults to the sandbox, port 3000, local Redis and ./cellops.yaml', () => {
    expect(readEnv({})).toMatchObject({
      configPath: './cellops.yaml',
      port: 3000,
      redisUrl: 'redis://127.0.0.1:6379',
      redisUrlSet: false,
    });
    expect(readEnv({}).botToken).toBeUndefined();
  });

  it('needs a signing secret in HTTP mode but not in Socket Mode', () => {
    expect(() => readEnv({ SLACK_BOT_TOKEN: 'xoxb-1' })).toThrow(ConfigError);
    expect(readEnv({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1' }).appToken).toBe('xapp-1');
  });

  it('refuses tokens of the wrong kind without echoing them', () => {
    try {
      readEnv({ SLACK_BOT_TOKEN: 'xapp-secret-value', SLACK_SIGNING_SECRET: 's' });
      expect.unreachable();
    } catch (error) {
      expect(String(error)).toContain('SLACK_BOT_TOKEN: must be a bot token');
      expect(String(error)).not.toContain('secret-value');
    }
  });

  it('describes which secrets are set, never their values', () => {
    const env = readEnv({
      SLACK_BOT_TOKEN: 'xoxb-very-secret',
      SLACK_SIGNING_SECRET: 'shh',
      REDIS_URL: 'redis://:pw@10.0.0.1:6379',
    });
    const text = JSON.stringify(describeEnv(env));
    expect(text).not.toContain('very-secret');
    expect(text).not.toContain('shh');
    expect(text).not.toContain('pw@');
    expect(describeEnv(env)).toMatchObject({ slackBotToken: 'set', slackMode: 'http' });
  });

  it('checks REDIS_URL (Sentinel included) at start-up, without echoing its password', () => {
    const url = 'redis+sentinel://:hunter2@10.0.0.1:26379,10.0.0.2:26379/cell-a/1';
    expect(readEnv({ REDIS_URL: url, REDIS_SENTINEL_PASSWORD: 'x' }).redisUrl).toBe(url);
    expect(describeEnv(readEnv({ REDIS_URL: url })).redisUrl).toBe(
      'redis+sentinel://***@10.0.0.1:26379,10.0.0.2:26379/cell-a/1',
    );
    try {
      readEnv({ REDIS_URL: 'redis+sentinel://:hunter2@10.0.0.1:26379,10.0.0.2:26379' });
      expect.unreachable();
    } catch (error) {
      expect(String(error)).toContain('environment: REDIS_URL: a Sentinel URL must name the primary');
      expect(String(error)).not.toContain('hunter2');
    }
    expect(() => readEnv({ REDIS_SENTINEL_PASSWORD: 'x' })).toThrow(/not a redis\+sentinel:\/\/ URL/);
  });

  it('takes HEALTH_PORT and HEALTH_HOST for the probes, refusing a port clash or a non-port', () => {
    expect(readEnv({ HEALTH_PORT: '9102', HEALTH_HOST: '10.0.0.5' })).toMatchObject({
      port: 3000,
      healthPort: 9102,
      healthHost: '10.0.0.5',
    });
    expect(readEnv({}).healthPort).toBeUndefined();
    expect(() => readEnv({ HEALTH_PORT: '3000' })).toThrow(/HEALTH_PORT: must differ from PORT/);
    expect(() => readEnv({ HEALTH_PORT: 'metrics' })).toThrow(/HEALTH_PORT: "metrics" is not a TCP port/);
  });
});
