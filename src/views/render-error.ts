/**
 * The one place that turns an error into what Slack users read. CellopsError codes (src/errors.ts) get
 * wording that says what to do; anything else is reported as an internal error without its stack.
 * Every message passes through redactSecrets: an error must never carry a key into Slack.
 */
import { CellopsError } from '../errors.js';
import { redactSecrets } from '../infra/redact.js';
import { escapeText, message, section, type RenderedMessage } from './kit.js';

export function errorText(error: unknown): string {
  const text = (raw: string) => escapeText(redactSecrets(raw));
  if (error instanceof CellopsError) {
    switch (error.code) {
      case 'bad_input':
        return `:warning: ${text(error.message)}`;
      case 'not_authorized':
        return `:no_entry: Not allowed: ${text(error.message)}`;
      case 'lock_busy':
        return `:lock: ${text(error.message)}`;
      case 'lock_store_failed':
        return `:x: Redis is not answering, so nothing was started: ${text(error.message)}. Try again in a moment.`;
      default:
        return `:x: ${text(error.message)} (\`${escapeText(error.code)}\`)${error.retryable ? ' — trying again may work.' : ''}`;
    }
  }
  const detail = error instanceof Error ? error.message : String(error);
  return `:x: Something went wrong inside cellops: ${text(detail)}. Nothing more was done; see the bot's log.`;
}

export function renderError(error: unknown): RenderedMessage {
  const text = errorText(error);
  return message(text, [section(text)]);
}
