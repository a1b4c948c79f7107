/**
 * The pino logger behind the Logger port. Known secret-bearing fields are redacted by path, and every
 * message and string field passes through `redactSecrets`, so a nodekey or token that slipped into an
 * error message is still not written.
 */
import { pino } from 'pino';
import type { Logger } from '../ports/logger.js';
import { redactSecrets } from './redact.js';

export interface LoggerOptions {
  readonly level?: string;
  /** Where lines go; default stdout. Tests pass a stream to grep what was logged. */
  readonly destination?: NodeJS.WritableStream;
}

function scrub(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (typeof value === 'string') out[key] = redactSecrets(value);
    else if (value instanceof Error) out[key] = { type: value.name, message: redactSecrets(value.message) };
    else out[key] = value;
  }
  return out;
}

function wrap(base: pino.Logger): Logger {
  return {
    debug: (fields, msg) => base.debug(scrub(fields), redactSecrets(msg)),
    info: (fields, msg) => base.info(scrub(fields), redactSecrets(msg)),
    warn: (fields, msg) => base.warn(scrub(fields), redactSecrets(msg)),
    error: (fields, msg) => base.error(scrub(fields), redactSecrets(msg)),
    child: (bindings) => wrap(base.child(scrub(bindings))),
  };
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const base = pino(
    {
      level: options.level ?? process.env.LOG_LEVEL ?? 'info',
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
    options.destination ?? process.stdout,
  );
  return wrap(base);
}
