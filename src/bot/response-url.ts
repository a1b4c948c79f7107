/**
 * Posts answers to the `response_url` of a slash command or a click.
 *
 * Bolt's respond() does the same with fetch. This uses node:http(s) with keep-alive agents instead: the
 * post runs on the event loop that also reads and acknowledges the requests still arriving, so its CPU
 * shows in their ack latency, and a fetch costs several times a plain request (WHATWG streams, Request
 * and Response objects). It also has a timeout, which fetch has not: an answer that cannot be delivered
 * fails and falls back to chat.postEphemeral instead of hanging.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { ExternalError } from '../errors.js';

/** How long one post may take, connection included, in milliseconds. */
export const RESPONSE_URL_TIMEOUT_MS = 10_000;

export interface ResponseUrlPoster {
  /** POSTs `message` as JSON; rejects with `ExternalError('response_url_failed')` unless Slack says 2xx. */
  post(url: string, message: Record<string, unknown>): Promise<void>;
  /** Closes the idle keep-alive connections. */
  close(): void;
}

export function createResponseUrlPoster(options: { readonly timeoutMs?: number } = {}): ResponseUrlPoster {
  const timeoutMs = options.timeoutMs ?? RESPONSE_URL_TIMEOUT_MS;
  const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

  const post = (url: string, message: Record<string, unknown>): Promise<void> => {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    if (!secure && target.protocol !== 'http:') {
      return Promise.reject(new ExternalError('response_url_failed', 'response_url is not an http(s) URL'));
    }
    const body = JSON.stringify(message);
    const where = `response_url of ${target.host}`;
    return new Promise<void>((resolve, reject) => {
      const fail = (what: string, cause?: unknown) =>
        reject(new ExternalError('response_url_failed', `${where}: ${what}`, { retryable: true, cause }));
      const onResponse = (res: IncomingMessage) => {
        // Read the (tiny) answer whole, so the connection goes back to the agent for the next post.
        res.resume();
        res.on('error', (error) => fail('the answer broke off', error));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else fail(`HTTP ${status}`);
        });
      };
      const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
      const req = secure
        ? httpsRequest(
            target,
            { method: 'POST', headers, agent: agents.https, timeout: timeoutMs },
            onResponse,
          )
        : httpRequest(
            target,
            { method: 'POST', headers, agent: agents.http, timeout: timeoutMs },
            onResponse,
          );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (error) => fail(error.message, error));
      req.end(body);
    });
  };

  return {
    post,
    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}
