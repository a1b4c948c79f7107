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
import { redactSecrets, scrubDeep } from './redact.js';

export interface LoggerOptions {
  readonly level?: string;
  /** Where lines go; default stdout. Tests pass a stream to grep what was logged. */
  readonly destination?: NodeJS.WritableStream;
  /** Human-readable lines (pino-pretty) instead of JSON; see `shouldPrettyPrint`. Default false. */
  readonly pretty?: boolean;
}

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

/**
 * Scrubs the fields of one log call. An Error passed as `error` is written as `err`, pino's key, so that
 * every error of every module is found under one name; a string `error` (a message) stays where it is.
 */
export function scrubFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    const target = key === 'error' && value instanceof Error && !('err' in fields) ? 'err' : key;
    out[target] = scrubDeep(value);
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
