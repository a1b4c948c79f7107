/**
 * Removes secrets from text before it is logged or posted: anything shaped like a nodekey (64 hex
 * characters, with or without 0x), Slack tokens, PEM private key blocks, AWS keys and session tokens,
 * passwords in Redis URLs, and the exact values of the secrets cellops was started with (the Slack
 * signing secret has no recognisable shape). Node IDs are 128 hex characters and addresses 40, so they
 * survive; transaction and block hashes (0x + 64 hex) are redacted too, which is the safe side of the
 * trade.
 *
 * Text is redacted before it is cut (`redactThenTruncate`). Where something else cut it first (a bounded
 * capture of a command's output, a message shortened upstream), a run of 32–63 hex characters at the cut
 * edge may be most of a key; it is redacted too.
 */
const REDACTED = '[redacted]';

const PATTERNS: ReadonlyArray<readonly [RegExp, string | ((match: string) => string)]> = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g, REDACTED],
  // Bot, user, app-level, refresh (xoxe-) and legacy workspace tokens.
  [/\bxox[abposre](?:\.xox[a-z])?-[A-Za-z0-9-]+/g, REDACTED],
  [/\bxapp-[A-Za-z0-9-]+/g, REDACTED],
  [/(?<![0-9a-fA-F])(?:0x)?[0-9a-fA-F]{64}(?![0-9a-fA-F])/g, REDACTED],
  // AWS: long-term (AKIA) and temporary (ASIA) access key ids; the secret key and session token by name,
  // in ini/env form and as JSON (STS and IMDS answers, SDK errors that echo a request).
  [/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, REDACTED],
  [/(?<=aws_secret_access_key\s*[=:]\s*)[A-Za-z0-9/+=]{40}/gi, REDACTED],
  [/(?<=aws_session_token\s*[=:]\s*)[A-Za-z0-9/+=]{16,}/gi, REDACTED],
  [/("(?:SecretAccessKey|SessionToken|secretAccessKey|sessionToken)"\s*:\s*")[^"]*(")/g, `$1${REDACTED}$2`],
  // redis://user:password@, rediss://:password@, redis+sentinel://:password@: keep the user, drop the password.
  [/\b(redis(?:s|\+sentinel)?:\/\/[^:@/\s]*):[^@/\s]+@/gi, `$1:${REDACTED}@`],
  // A cut edge: 32–63 hex characters at the start or end of the text, or next to an ellipsis. An address
  // (0x + 40) is kept: were it a cut key, the 24 characters missing would still be 96 unknown bits.
  [/^(?:0x)?[0-9a-fA-F]{32,63}(?![0-9a-fA-F])/g, unlessAddress],
  [/(?<![0-9a-fA-F]|0x)(?:0x)?[0-9a-fA-F]{32,63}(?=…|$)/g, unlessAddress],
  [/(?<=…)(?:0x)?[0-9a-fA-F]{32,63}(?![0-9a-fA-F])/g, unlessAddress],
];

function unlessAddress(match: string): string {
  return /^0x[0-9a-fA-F]{40}$/.test(match) ? match : REDACTED;
}

/** Exact secret values to scrub wherever they appear, longest first (set once at start). */
let knownSecrets: readonly string[] = [];

/** Shorter values would also match ordinary words; every real secret cellops holds is far longer. */
const MIN_KNOWN_SECRET_LENGTH = 8;

/**
 * Registers the values of the secrets this process holds (from its environment), so they are scrubbed
 * even where they have no recognisable shape. Replaces any earlier list.
 */
export function setKnownSecrets(values: ReadonlyArray<string | undefined>): void {
  knownSecrets = [
    ...new Set(values.filter((v): v is string => v !== undefined && v.length >= MIN_KNOWN_SECRET_LENGTH)),
  ].sort((a, b) => b.length - a.length);
}

/** The secret values in cellops' environment: Slack credentials, the Redis password, AWS keys, the SSH passphrase. */
export function secretsFromEnv(env: NodeJS.ProcessEnv, passphraseEnv = 'SSH_KEY_PASSPHRASE'): string[] {
  const redisPassword = (() => {
    try {
      const url = new URL(env.REDIS_URL ?? '');
      return url.password === '' ? undefined : decodeURIComponent(url.password);
    } catch {
      return undefined;
    }
  })();
  return [
    env.SLACK_SIGNING_SECRET,
    env.SLACK_BOT_TOKEN,
    env.SLACK_APP_TOKEN,
    env.AWS_SECRET_ACCESS_KEY,
    env.AWS_SESSION_TOKEN,
    env[passphraseEnv],
    redisPassword,
  ].filter((v): v is string => v !== undefined && v !== '');
}

export function redactSecrets(text: string): string {
  let out = text;
  for (const secret of knownSecrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  for (const [pattern, replacement] of PATTERNS)
    out =
      typeof replacement === 'string' ? out.replace(pattern, replacement) : out.replace(pattern, replacement);
  return out;
}

export interface TruncateOptions {
  /** Keep the start (default) or the end, e.g. the tail of a command's output. */
  readonly keep?: 'start' | 'end';
  /** Put where text was cut. Default `…`. */
  readonly marker?: string;
}

/**
 * Redacts, then cuts to at most `max` characters (the marker included). Cutting first could leave 63 of a
 * key's 64 hex characters, which no longer look like a key; after the cut, the edge is checked again.
 */
export function redactThenTruncate(text: string, max: number, options: TruncateOptions = {}): string {
  const redacted = redactSecrets(text);
  if (redacted.length <= max) return redacted;
  const marker = options.marker ?? '…';
  const room = Math.max(0, max - marker.length);
  const cut =
    options.keep === 'end'
      ? `${marker}${redacted.slice(redacted.length - room)}`
      : `${redacted.slice(0, room)}${marker}`;
  return redactSecrets(cut);
}

/** Field names whose values are secrets whatever they look like. */
const SECRET_FIELD =
  /^(?:token|bottoken|apptoken|signingsecret|secret|password|passphrase|privatekey|nodekey|key|authorization|secretaccesskey|sessiontoken)$/i;

/** How many links of an error's `cause` chain are kept (a wrapper of a wrapper of the socket error…). */
const MAX_CAUSES = 5;
/** Entries kept of one array, so that a huge list does not become a huge log line. */
const MAX_ITEMS = 100;

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * A copy of `value` safe to log: every string redacted, secret-named fields replaced, Errors turned into
 * `{ type, message, stack, code, own fields, cause }` (at most MAX_CAUSES causes), nested objects and
 * arrays followed up to `depth` levels (arrays cut to MAX_ITEMS), cycles cut. Buffers are summarised,
 * never dumped (a key file read into one would be the key). The logger and the CLI both write through it.
 */
export function scrubDeep(value: unknown, depth = 8): unknown {
  return scrub(value, depth, new WeakSet(), 0);
}

function scrubError(
  error: Error,
  depth: number,
  seen: WeakSet<object>,
  causes: number,
): Record<string, unknown> {
  const out: Record<string, unknown> = { type: error.name, message: redactSecrets(error.message) };
  if (error.stack !== undefined) out.stack = redactSecrets(error.stack);
  for (const [key, field] of Object.entries(error)) {
    if (key in out || key === 'cause' || key === 'name') continue;
    out[key] = SECRET_FIELD.test(key) ? REDACTED : scrub(field, depth - 1, seen, causes);
  }
  if (error.cause !== undefined) {
    out.cause =
      causes >= MAX_CAUSES ? '[cause chain truncated]' : scrub(error.cause, depth - 1, seen, causes + 1);
  }
  if (error instanceof AggregateError) out.errors = scrub(error.errors, depth - 1, seen, causes + 1);
  return out;
}

function scrub(value: unknown, depth: number, seen: WeakSet<object>, causes: number): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[circular]';
  if (depth <= 0) return '[nested too deep]';
  seen.add(value);
  try {
    if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
    if (value instanceof Date) return value;
    if (value instanceof Error) return scrubError(value, depth, seen, causes);
    if (Array.isArray(value))
      return value.slice(0, MAX_ITEMS).map((item) => scrub(item, depth - 1, seen, causes));
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function' && !isPlainObject(value)) {
      return scrub((toJSON as () => unknown).call(value), depth - 1, seen, causes);
    }
    const out: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(value)) {
      out[key] =
        SECRET_FIELD.test(key) && field !== undefined ? REDACTED : scrub(field, depth - 1, seen, causes);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}
