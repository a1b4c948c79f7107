/**
 * Bolt and WebClient log through this adapter into our Logger port, so their lines are structured,
 * leveled like ours and pass through secret redaction.
 */
import { LogLevel, type Logger as SlackLogger } from '@slack/bolt';
import type { Logger } from '../ports/logger.js';

function line(parts: unknown[]): { msg: string; fields: Record<string, unknown> } {
  const fields: Record<string, unknown> = {};
  const words: string[] = [];
  for (const part of parts) {
    if (part instanceof Error) fields.err = part;
    else if (typeof part === 'string') words.push(part);
    else words.push(JSON.stringify(part) ?? String(part));
  }
  return { msg: words.join(' '), fields };
}

export function boltLogger(logger: Logger, level: LogLevel = LogLevel.WARN): SlackLogger {
  let current = level;
  const order = [LogLevel.DEBUG, LogLevel.INFO, LogLevel.WARN, LogLevel.ERROR];
  const enabled = (l: LogLevel) => order.indexOf(l) >= order.indexOf(current);
  const log = (l: LogLevel, parts: unknown[]) => {
    if (!enabled(l)) return;
    const { msg, fields } = line(parts);
    logger[l]({ ...fields, source: 'bolt' }, msg);
  };
  return {
    debug: (...msg: unknown[]) => log(LogLevel.DEBUG, msg),
    info: (...msg: unknown[]) => log(LogLevel.INFO, msg),
    warn: (...msg: unknown[]) => log(LogLevel.WARN, msg),
    error: (...msg: unknown[]) => log(LogLevel.ERROR, msg),
    setLevel: (l: LogLevel) => {
      current = l;
    },
    getLevel: () => current,
    setName: () => undefined,
  };
}
