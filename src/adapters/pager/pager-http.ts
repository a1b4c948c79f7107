/**
 * One JSON POST to a pager and the translation of its answer into success or a PagerError. Pages are a
 * handful an hour, so the global fetch is used (the node:http client of src/adapters/rpc is tuned for
 * thousands of probes a second and does not return headers, which Retry-After needs).
 */
import type { Clock } from '../../ports/clock.js';
import { PagerError } from '../../escalation/pager-error.js';
import { redactThenTruncate } from '../../infra/redact.js';

export interface PagerPost {
  /** Target name for messages: pagerduty, opsgenie, webhook. */
  readonly target: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The exact bytes sent (the webhook signs them). */
  readonly body: string;
  readonly timeoutMs: number;
  /** Strings that must never appear in an error message: the key or secret sent with this request. */
  readonly secrets: readonly string[];
  readonly signal?: AbortSignal;
}

export interface PagerHttpDeps {
  readonly clock: Clock;
  /** Default: the global fetch. */
  readonly fetch?: typeof fetch;
}

/** Longest excerpt of an error answer kept in a message: enough for PagerDuty's `errors` list. */
const EXCERPT_CHARS = 300;

/** Replaces every occurrence of each secret, raw or as JSON or URL escaping would write it. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length === 0) continue;
    for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)])) {
      out = out.split(form).join('[redacted]');
    }
  }
  return out;
}

/** Retry-After is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1_000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function excerpt(text: string, secrets: readonly string[]): string {
  const flat = scrubSecrets(text, secrets).replace(/\s+/g, ' ').trim();
  if (flat === '') return '';
  return `: ${redactThenTruncate(flat, EXCERPT_CHARS + 1)}`;
}

export type PagerPoster = (post: PagerPost) => Promise<void>;

export function createPagerPoster(deps: PagerHttpDeps): PagerPoster {
  const fetchFn = deps.fetch ?? fetch;
  return async (post) => {
    const { target, secrets } = post;
    const timeout = AbortSignal.timeout(Math.max(1, Math.ceil(post.timeoutMs)));
    const signal = post.signal ? AbortSignal.any([timeout, post.signal]) : timeout;
    let response: Response;
    let text: string;
    try {
      response = await fetchFn(post.url, { method: 'POST', headers: post.headers, body: post.body, signal });
      text = await response.text();
    } catch (error) {
      if (post.signal?.aborted) throw post.signal.reason;
      const why = timeout.aborted
        ? `no answer within ${post.timeoutMs} ms`
        : scrubSecrets(
            error instanceof Error
              ? ((error.cause as Error | undefined)?.message ?? error.message)
              : String(error),
            secrets,
          );
      throw new PagerError(
        'pager_unavailable',
        target,
        `${target}: could not deliver the page (${why}); cellops retries`,
      );
    }
    const { status } = response;
    if (status >= 200 && status < 300) return;
    const detail = excerpt(text, secrets);
    if (status === 429) {
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), deps.clock.now());
      throw new PagerError('pager_rate_limited', target, `${target}: rate limited (HTTP 429)${detail}`, {
        status,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      });
    }
    if (status >= 500 || status === 408) {
      throw new PagerError(
        'pager_unavailable',
        target,
        `${target}: HTTP ${status}${detail}; cellops retries`,
        {
          status,
        },
      );
    }
    const fix =
      status === 401 || status === 403
        ? 'check the key in the environment variable named in escalation'
        : 'the event was not accepted and is not retried';
    throw new PagerError('pager_rejected', target, `${target}: HTTP ${status}${detail} (${fix})`, { status });
  };
}
