/**
 * REDIS_URL → ioredis options. ioredis parses `redis://` and `rediss://` itself but not Sentinel URLs (it
 * reads `redis+sentinel` as part of a host name and then fails to resolve it), so every form is parsed
 * here, in one place, with errors an operator can act on:
 *
 *   redis://[[user]:password@]host[:port][/db]                    one server (port 6379)
 *   rediss://…                                                     the same over TLS
 *   redis+sentinel://[[user]:password@]h1[:p1],h2[:p2]/<master>[/<db>]   through Sentinel (port 26379)
 *   rediss+sentinel://…                                            TLS to the sentinels and the primary
 *
 * The password in the URL is the primary's; the sentinels' own password (Sentinel's `requirepass`) comes
 * from REDIS_SENTINEL_PASSWORD, so that it is not one more secret inside a URL. Error messages never repeat
 * the URL's credentials: only the scheme, host list and path, which carry none.
 */
import type { RedisOptions } from 'ioredis';
import { ConfigError } from '../errors.js';

export interface ParsedRedisUrl {
  /** Connection options for `new Redis(options)`; reconnection settings are added by createRedisClient. */
  readonly options: RedisOptions;
  /** Where it connects, for logs: no credentials. */
  readonly description: string;
}

/** The environment variables the URL's meaning depends on. */
export interface RedisUrlEnv {
  readonly REDIS_SENTINEL_PASSWORD?: string | undefined;
}

const SCHEMES = ['redis', 'rediss', 'redis+sentinel', 'rediss+sentinel'] as const;
type Scheme = (typeof SCHEMES)[number];

const FORMS =
  'redis://[:password@]host[:port][/db], rediss://… (TLS), ' +
  'redis+sentinel://[:password@]host1:port1,host2:port2/<master-name>[/<db>] or rediss+sentinel://… (TLS)';

interface Address {
  readonly host: string;
  readonly port: number;
}

/** Replaces everything between `://` and the last `@` (the credentials) with `***`. */
export function redactRedisUrl(url: string): string {
  const start = url.indexOf('://');
  const at = url.lastIndexOf('@');
  if (start < 0 || at < start) return url;
  return `${url.slice(0, start + 3)}***${url.slice(at)}`;
}

function fail(problem: string): never {
  throw new ConfigError([`REDIS_URL: ${problem}`]);
}

function decode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    // Says which part, never what it holds: it may be the password.
    return fail(`the ${what} is not valid percent-encoding (write % as %25)`);
  }
}

function parseScheme(url: string): { scheme: Scheme; rest: string } {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url);
  if (!match?.[1]) return fail(`must be a URL of the form ${FORMS}`);
  const scheme = match[1].toLowerCase();
  if (scheme === 'sentinel' || scheme === 'redis-sentinel') {
    return fail(
      `the scheme ${scheme}:// is not supported; write redis+sentinel:// (or rediss+sentinel:// for TLS)`,
    );
  }
  const known = SCHEMES.find((s) => s === scheme);
  if (!known) return fail(`the scheme ${scheme}:// is not supported; use ${FORMS}`);
  return { scheme: known, rest: url.slice(match[0].length) };
}

function parseCredentials(userinfo: string): { username?: string; password?: string } {
  const colon = userinfo.indexOf(':');
  if (colon < 0) {
    // Redis has no password-less user login over a URL; this is almost always a password missing its colon.
    return fail(
      'the part before @ has no colon: write the password as redis://:PASSWORD@host (or USER:PASSWORD@ for an ACL user)',
    );
  }
  const username = decode(userinfo.slice(0, colon), 'user name');
  const password = decode(userinfo.slice(colon + 1), 'password');
  return {
    ...(username === '' ? {} : { username }),
    ...(password === '' ? {} : { password }),
  };
}

function parseAddress(text: string, defaultPort: number, what: string): Address {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+))(?::([^:]*))?$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  if (!match || !host) {
    return fail(
      text === ''
        ? `${what} is empty`
        : `${what} "${text}" is not host[:port] (an IPv6 address goes in brackets: [::1]:port)`,
    );
  }
  const portText = match[3];
  if (portText === undefined) return { host, port: defaultPort };
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65_535)) return fail(`${what} "${text}" has port "${portText}": want 1-65535`);
  return { host, port };
}

function parseDb(text: string): number {
  const db = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (Number.isNaN(db)) return fail(`the database "${text}" is not a number (0, 1, …)`);
  return db;
}

function parseSentinelPath(path: string): { name: string; db?: number } {
  const parts = path.split('/');
  if (parts[parts.length - 1] === '') parts.pop();
  const [rawName, rawDb, ...extra] = parts;
  if (rawName === undefined || rawName === '') {
    return fail(
      'a Sentinel URL must name the primary as Sentinel knows it (its `sentinel monitor <master-name>`): ' +
        'redis+sentinel://host1:port1,host2:port2/<master-name>',
    );
  }
  if (extra.length > 0) return fail(`the path "/${path}" has too many parts: want /<master-name>[/<db>]`);
  const name = decode(rawName, 'master name');
  if (!/^[^\s/]+$/.test(name)) return fail(`the master name "${rawName}" is empty or contains spaces`);
  return { name, ...(rawDb === undefined ? {} : { db: parseDb(rawDb) }) };
}

function parseSentinels(list: string): Address[] {
  const sentinels = list.split(',').map((entry, i) => parseAddress(entry, 26_379, `sentinel ${i + 1}`));
  const seen = new Set<string>();
  for (const { host, port } of sentinels) {
    const key = `${host.toLowerCase()}:${port}`;
    if (seen.has(key)) fail(`the sentinel ${formatAddress({ host, port })} is listed twice`);
    seen.add(key);
  }
  return sentinels;
}

function formatAddress({ host, port }: Address): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Parses REDIS_URL (see the file comment for the forms) and REDIS_SENTINEL_PASSWORD into ioredis options.
 * Throws ConfigError naming the problem, never echoing a password.
 */
export function parseRedisUrl(url: string, env: RedisUrlEnv = {}): ParsedRedisUrl {
  if (/\s/.test(url)) fail('contains whitespace (quote the value, or percent-encode spaces as %20)');
  const { scheme, rest } = parseScheme(url);
  const at = rest.lastIndexOf('@');
  const credentials = at < 0 ? {} : parseCredentials(rest.slice(0, at));
  const afterAt = rest.slice(at + 1);
  if (/[?#]/.test(afterAt)) {
    fail('options after ? or # are not supported: TLS is the scheme (rediss://), the database is the path');
  }
  const slash = afterAt.indexOf('/');
  const hosts = slash < 0 ? afterAt : afterAt.slice(0, slash);
  const path = slash < 0 ? '' : afterAt.slice(slash + 1);
  const tls = scheme.startsWith('rediss');
  const sentinelPassword = env.REDIS_SENTINEL_PASSWORD === '' ? undefined : env.REDIS_SENTINEL_PASSWORD;

  if (scheme.endsWith('+sentinel')) {
    const sentinels = parseSentinels(hosts);
    const { name, db } = parseSentinelPath(path);
    const options: RedisOptions = {
      sentinels: sentinels.map(({ host, port }) => ({ host, port })),
      name,
      ...credentials,
      ...(db === undefined ? {} : { db }),
      ...(sentinelPassword === undefined ? {} : { sentinelPassword }),
      // ioredis uses `tls` for the primary only when enableTLSForSentinelMode is set, and `sentinelTLS` for
      // the sentinels: both, so that nothing goes in clear text when the URL says rediss.
      ...(tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
    };
    const where = sentinels.map(formatAddress).join(',');
    return {
      options,
      description:
        `primary "${name}" through Sentinel at ${where}` +
        `${db === undefined ? '' : `, db ${db}`}${tls ? ' (TLS)' : ''}`,
    };
  }

  if (sentinelPassword !== undefined) {
    fail('REDIS_SENTINEL_PASSWORD is set but this is not a redis+sentinel:// URL; unset one of them');
  }
  if (hosts.includes(',')) {
    fail(
      'several hosts are only valid in a Sentinel URL: redis+sentinel://host1:port1,host2:port2/<master-name>',
    );
  }
  const address = parseAddress(hosts, 6_379, 'the host');
  const db = path === '' ? undefined : parseDb(path.replace(/\/$/, ''));
  return {
    options: {
      host: address.host,
      port: address.port,
      ...credentials,
      ...(db === undefined ? {} : { db }),
      ...(tls ? { tls: {} } : {}),
    },
    description: `${formatAddress(address)}${db === undefined ? '' : `, db ${db}`}${tls ? ' (TLS)' : ''}`,
  };
}
