/**
 * The pino logger behind the Logger port. Known secret-bearing fields are redacted by path, and every
 * message and every string anywhere in the fields (nested objects, arrays, error messages, stacks and
 * causes) passes through `redactSecrets`, so a nodekey or token that slipped into an error is still not
 * written.
 *
 * Errors are logged under pino's one key, `err`, with `type`, `message`, `stack`, `code` and the `cause`
 * chain: an operator reading a failed run's log needs the underlying cause (the SSH or AWS error), not
 * just the wrapper's message. Output is JSON lines for log collectors, or human-readable through
 * pino-pretty at a terminal and in the sandbox (`shouldPrettyPrint`).
 */
import { pino } from 'pino';
import { build as prettyStream } from 'pino-pretty';
import type { Logger } from '../ports/logger.js';
import { redactSecrets } from './redact.js';

export interface LoggerOptions {
  readonly level?: string;
  /** Where lines go; default stdout. Tests pass a stream to grep what was logged. */
  readonly destination?: NodeJS.WritableStream;
  /** Human-readable lines (pino-pretty) instead of JSON; see `shouldPrettyPrint`. Default false. */
  readonly pretty?: boolean;
}

/** How deep nested fields are scrubbed; deeper values are replaced, which also ends reference cycles. */
const MAX_DEPTH = 8;
/** How many links of an error's `cause` chain are kept (a wrapper of a wrapper of the socket error…). */
const MAX_CAUSES = 5;
/** Entries kept of one array, so that a huge list does not become a huge log line. */
const MAX_ITEMS = 100;

/**
 * Pretty output for people, JSON for machines. LOG_FORMAT=json|pretty decides when set; otherwise
 * pretty when stdout is a terminal or the process is the sandbox (someone is watching it), JSON when
 * it runs under systemd, Docker or Kubernetes with its output collected.
 */
export function shouldPrettyPrint(
  env: Readonly<Record<string, string | undefined>>,
  isTTY: boolean,
  sandbox: boolean,
): boolean {
  const format = env.LOG_FORMAT?.trim().toLowerCase();
  if (format === 'json') return false;
  if (format === 'pretty') return true;
  return isTTY || sandbox;
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** An Error as a plain object pino writes in full: type, message, stack, code, cause, own fields. */
export function serializeError(error: Error, causes = 0, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = { type: error.name, message: redactSecrets(error.message) };
  if (error.stack !== undefined) out.stack = redactSecrets(error.stack);
  for (const [key, value] of Object.entries(error)) {
    if (key in out || key === 'cause' || key === 'name') continue;
    out[key] = scrubValue(value, depth + 1);
  }
  if (error.cause !== undefined) {
    if (causes >= MAX_CAUSES) out.cause = '[cause chain truncated]';
    else if (error.cause instanceof Error) out.cause = serializeError(error.cause, causes + 1, depth + 1);
    else out.cause = scrubValue(error.cause, depth + 1);
  }
  if (error instanceof AggregateError) {
    out.errors = (error.errors as unknown[])
      .slice(0, MAX_ITEMS)
      .map((inner) =>
        inner instanceof Error ? serializeError(inner, causes + 1, depth + 1) : scrubValue(inner, depth + 1),
      );
  }
  return out;
}

/** A copy of `value` with every string redacted, errors serialized and nesting bounded. */
export function scrubValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return serializeError(value, 0, depth);
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (value instanceof Date) return value;
  if (Array.isArray(value)) return value.slice(0, MAX_ITEMS).map((item) => scrubValue(item, depth + 1));
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function' && !isPlainObject(value)) {
    return scrubValue((toJSON as () => unknown).call(value), depth + 1);
  }
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) out[key] = scrubValue(inner, depth + 1);
  return out;
}

/**
 * Scrubs the fields of one log call. An Error passed as `error` is written as `err`, pino's key, so that
 * every error of every module is found under one name; a string `error` (a message) stays where it is.
 */
export function scrubFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    const target = key === 'error' && value instanceof Error && !('err' in fields) ? 'err' : key;
    out[target] = scrubValue(value, 1);
  }
  return out;
}

function wrap(base: pino.Logger): Logger {
  return {
    debug: (fields, msg) => base.debug(scrubFields(fields), redactSecrets(msg)),
    info: (fields, msg) => base.info(scrubFields(fields), redactSecrets(msg)),
    warn: (fields, msg) => base.warn(scrubFields(fields), redactSecrets(msg)),
    error: (fields, msg) => base.error(scrubFields(fields), redactSecrets(msg)),
    child: (bindings) => wrap(base.child(scrubFields(bindings))),
  };
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? process.stdout;
  const stream = options.pretty
    ? prettyStream({
        destination,
        sync: true,
        colorize: destination === process.stdout && process.stdout.isTTY,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
      })
    : destination;
  const base = pino(
    {
      level: options.level ?? process.env.LOG_LEVEL ?? 'info',
      // Errors arrive already serialized (with their causes as objects); pino's own serializer would
      // flatten the cause chain into one message and call the type "Object".
      serializers: { err: (value: unknown) => value },
      redact: {
        paths: [
          'token',
          'botToken',
          'appToken',
          'signingSecret',
          'privateKey',
          'nodekey',
          'key',
          '*.token',
          '*.nodekey',
        ],
        censor: '[redacted]',
      },
    },
    stream,
  );
  return wrap(base);
}
