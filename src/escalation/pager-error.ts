import { ExternalError } from '../errors.js';

export const PAGER_ERROR_CODES = [
  /** The pager refused the event (400, 401, 403, 404…): sending it again will not help. */
  'pager_rejected',
  /** Rate limited (429): retry after `retryAfterMs` when the pager said, else back off. */
  'pager_rate_limited',
  /** 5xx, a timeout or a network failure: retry with backoff. */
  'pager_unavailable',
  /** The dispatcher's queue for the target was full and this event was dropped for a newer one. */
  'pager_queue_full',
] as const;
export type PagerErrorCode = (typeof PAGER_ERROR_CODES)[number];

/**
 * A failed delivery to one pager. The message names the target and what to check; it is built from the
 * status and a scrubbed excerpt of the answer, never from the request, so it cannot carry the routing key,
 * API key or webhook secret.
 */
export class PagerError extends ExternalError {
  declare readonly code: PagerErrorCode;
  /** HTTP status of the answer, when there was one. */
  readonly status: number | undefined;
  /** How long the pager asked us to wait (Retry-After), when it said. */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: PagerErrorCode,
    readonly target: string,
    message: string,
    options: { readonly status?: number; readonly retryAfterMs?: number } = {},
  ) {
    super(code, message, { retryable: code === 'pager_rate_limited' || code === 'pager_unavailable' });
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}
