import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { parseRedisUrl, redactRedisUrl } from '../../../src/infra/redis-url.js';
import { reconnectOnReadonly, redisRetryDelay } from '../../../src/infra/redis-client.js';

const SECRET = 'S3cr3t:p@ss/w%rd';
const ENCODED = encodeURIComponent(SECRET);

function problem(url: string, env: Record<string, string> = {}): string {
  try {
    parseRedisUrl(url, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`${url} was accepted`);
}

describe('parseRedisUrl: one server', () => {
  it('reads host, port, database and the password', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6380/2').options).toEqual({
      host: '127.0.0.1',
      port: 6380,
      db: 2,
    });
    expect(parseRedisUrl('redis://redis.internal').options).toEqual({ host: 'redis.internal', port: 6379 });
    expect(parseRedisUrl('redis://redis.internal/').options).toEqual({ host: 'redis.internal', port: 6379 });
    expect(parseRedisUrl(`redis://:${ENCODED}@h:1`).options).toEqual({
      host: 'h',
      port: 1,
      password: SECRET,
    });
    expect(parseRedisUrl('redis://bot:pw@h').options).toEqual({
      host: 'h',
      port: 6379,
      username: 'bot',
      password: 'pw',
    });
    expect(parseRedisUrl('redis://:@h').options).toEqual({ host: 'h', port: 6379 });
    expect(parseRedisUrl('REDIS://[::1]:7000').options).toEqual({ host: '::1', port: 7000 });
  });

  it('takes rediss:// as TLS', () => {
    const parsed = parseRedisUrl('rediss://:pw@cache.example.com:6380/1');
    expect(parsed.options).toEqual({ host: 'cache.example.com', port: 6380, password: 'pw', db: 1, tls: {} });
    expect(parsed.description).toBe('cache.example.com:6380, db 1 (TLS)');
  });
});

describe('parseRedisUrl: Sentinel', () => {
  it('reads the sentinels, the master name, the database and the primary password', () => {
    const parsed = parseRedisUrl(`redis+sentinel://:${ENCODED}@10.0.0.1:26379,10.0.0.2:26380,s3/mymaster/3`);
    expect(parsed.options).toEqual({
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
        { host: 's3', port: 26379 },
      ],
      name: 'mymaster',
      password: SECRET,
      db: 3,
    });
    expect(parsed.description).toBe(
      'primary "mymaster" through Sentinel at 10.0.0.1:26379,10.0.0.2:26380,s3:26379, db 3',
    );
    expect(parsed.description).not.toContain(SECRET);
  });

  it('accepts one sentinel, no password, no database, a trailing slash and IPv6', () => {
    expect(parseRedisUrl('redis+sentinel://[fd00::1]:5000/cell-a/').options).toEqual({
      sentinels: [{ host: 'fd00::1', port: 5000 }],
      name: 'cell-a',
    });
  });

  it('takes the sentinels password from REDIS_SENTINEL_PASSWORD, apart from the primary one', () => {
    const parsed = parseRedisUrl('redis+sentinel://:primary@s1,s2/m', {
      REDIS_SENTINEL_PASSWORD: 'sentinels',
    });
    expect(parsed.options).toMatchObject({ password: 'primary', sentinelPassword: 'sentinels' });
    expect(
      parseRedisUrl('redis+sentinel://s1/m', { REDIS_SENTINEL_PASSWORD: '' }).options,
    ).not.toHaveProperty('sentinelPassword');
  });

  it('takes rediss+sentinel:// as TLS to the sentinels and to the primary', () => {
    expect(parseRedisUrl('rediss+sentinel://s1:26379/m/0').options).toEqual({
      sentinels: [{ host: 's1', port: 26379 }],
      name: 'm',
      db: 0,
      tls: {},
      sentinelTLS: {},
      enableTLSForSentinelMode: true,
    });
  });
});

describe('parseRedisUrl: errors an operator can act on, without the password', () => {
  const cases: [string, RegExp][] = [
    ['127.0.0.1:6379', /must be a URL of the form redis:\/\//],
    ['http://h', /scheme http:\/\/ is not supported/],
    ['sentinel://s1/m', /write redis\+sentinel:\/\//],
    ['redis+sentinel://s1:26379,s2:26379', /must name the primary as Sentinel knows it/],
    ['redis+sentinel://s1:26379/', /must name the primary/],
    ['redis+sentinel://s1,,s2/m', /sentinel 2 is empty/],
    ['redis+sentinel:///m', /sentinel 1 is empty/],
    ['redis+sentinel://s1:abc/m', /sentinel 1 "s1:abc" has port "abc": want 1-65535/],
    ['redis+sentinel://s1:70000/m', /has port "70000"/],
    ['redis+sentinel://s1:0/m', /has port "0"/],
    ['redis+sentinel://s1,s1:26379/m', /sentinel s1:26379 is listed twice/],
    ['redis+sentinel://s1/m/x', /database "x" is not a number/],
    ['redis+sentinel://s1/m/1/2', /too many parts/],
    ['redis+sentinel://s1/m%20x', /master name "m%20x" is empty or contains spaces/],
    ['redis+sentinel://::1:26379/m', /IPv6 address goes in brackets/],
    ['redis://h1:1,h2:2', /several hosts are only valid in a Sentinel URL/],
    ['redis://h/db0', /database "db0" is not a number/],
    ['redis://', /the host is empty/],
    ['redis://h:6379?db=1', /options after \? or # are not supported/],
    ['redis://h 6379', /whitespace/],
  ];
  it.each(cases)('%s', (url, expected) => {
    expect(problem(url)).toMatch(expected);
    expect(problem(url)).toMatch(/^REDIS_URL: /);
  });

  it('refuses REDIS_SENTINEL_PASSWORD with a URL that is not Sentinel', () => {
    expect(problem('redis://h', { REDIS_SENTINEL_PASSWORD: 'x' })).toMatch(/not a redis\+sentinel:\/\/ URL/);
  });

  it('never repeats the password, whatever is wrong', () => {
    const urls = [
      `redis+sentinel://:${SECRET}@s1:bad/m`,
      `redis+sentinel://:${SECRET}@s1`,
      `redis://:${SECRET}@h/x`,
      `redis://${SECRET.replace(':', '')}@h`,
      `redis://:${SECRET}%zz@h`,
      `redis+sentinel://:${SECRET}@s1,s1/m`,
      `redis://:${SECRET}@h?x=1`,
    ];
    for (const url of urls) {
      const message = problem(url);
      expect(message).not.toContain('S3cr3t');
      expect(message).not.toContain('w%rd');
    }
    expect(problem(`redis://S3cr3tpass@h`)).toMatch(
      /no colon: write the password as redis:\/\/:PASSWORD@host/,
    );
    expect(problem(`redis://:${SECRET}%zz@h`)).toMatch(/the password is not valid percent-encoding/);
  });
});

describe('redactRedisUrl', () => {
  it('hides everything before the last @ and leaves URLs without credentials alone', () => {
    expect(redactRedisUrl(`redis+sentinel://:${SECRET}@s1,s2/m`)).toBe('redis+sentinel://***@s1,s2/m');
    expect(redactRedisUrl('redis://user:pw@h:1/0')).toBe('redis://***@h:1/0');
    expect(redactRedisUrl('redis://h:1/0')).toBe('redis://h:1/0');
  });
});

describe('reconnection settings', () => {
  it('backs off from 100 ms to at most 2 s and never gives up', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 100].map(redisRetryDelay)).toEqual([
      100, 200, 400, 800, 1600, 2000, 2000, 2000,
    ]);
  });

  it('reconnects and sends again on READONLY (a demoted primary), and only then', () => {
    expect(reconnectOnReadonly(new Error("READONLY You can't write against a read only replica."))).toBe(2);
    expect(reconnectOnReadonly(new Error("ERR Error running script: -READONLY You can't write"))).toBe(2);
    expect(reconnectOnReadonly(new Error('WRONGTYPE Operation against a key'))).toBe(false);
  });
});
