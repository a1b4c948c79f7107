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
    const target = URL.canParse(url) ? new URL(url) : undefined;
    const secure = target?.protocol === 'https:';
    if (!target || (!secure && target.protocol !== 'http:')) {
      return Promise.reject(new ExternalError('response_url_failed', 'response_url is not an http(s) URL'));
    }
    const body = JSON.stringify(message);
    const where = `response_url of ${target.host}`;
    const attempt = (retried: boolean): Promise<void> =>
      new Promise<void>((resolve, reject) => {
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
        const init = { method: 'POST', headers, timeout: timeoutMs };
        const req = secure
          ? httpsRequest(target, { ...init, agent: agents.https }, onResponse)
          : httpRequest(target, { ...init, agent: agents.http }, onResponse);
        req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        req.on('error', (error: NodeJS.ErrnoException) => {
          // A kept-alive connection the server closed while idle fails at its next use: once, on a new one.
          if (!retried && req.reusedSocket && error.code === 'ECONNRESET') resolve(attempt(true));
          else fail(error.message, error);
        });
        req.end(body);
      });
    return attempt(false);
  };

  return {
    post,
    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}
