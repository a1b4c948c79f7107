/**
 * The NodeRpc adapter's HTTP: one request with a small text body in, status and text out, within a time
 * limit and a caller's signal.
 *
 * The default client is node:http(s) with keep-alive agents rather than the global fetch. On Node 20 a
 * fetch builds a Request, a Response, web streams and several AbortSignals per call and parses the answer
 * in wasm; probing 1,000 nodes every second that way cost about a third of a core on its own
 * (bench/monitor-scale.bench.ts). The deadline is a plain timer that destroys the request, not an
 * AbortSignal, and a caller's signal gets one listener that is removed when the request ends.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export interface HttpTextRequest {
  readonly method: 'GET' | 'POST';
  /** Without credentials (see httpTarget in json-rpc.ts). */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  /** The request fails with HttpTimeoutError when it has not completed within this long. */
  readonly timeoutMs: number;
  /** When it aborts, the request is dropped and rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

export interface HttpTextResponse {
  readonly status: number;
  readonly statusText: string;
  /** Status 200–299. */
  readonly ok: boolean;
  readonly text: string;
}

export type HttpClient = (request: HttpTextRequest) => Promise<HttpTextResponse>;

export class HttpTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no complete answer within ${timeoutMs} ms`);
    this.name = 'HttpTimeoutError';
  }
}

export class HttpBodyTooLargeError extends Error {
  /** `url` is shown as scheme, host, port and path only: no credentials, no query string. */
  constructor(
    readonly maxBytes: number,
    url: string,
  ) {
    super(`the answer from ${urlForMessage(url)} is larger than ${maxBytes} bytes; the rest was not read`);
    this.name = 'HttpBodyTooLargeError';
  }
}

/** Scheme, host, port and path: what names an endpoint without anything secret a URL may carry. */
function urlForMessage(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '(an unreadable URL)';
  }
}

/**
 * kcnd's /metrics is a few hundred kB and a JSON-RPC answer for a block range a few hundred more; 1 MiB
 * leaves room for both, and keeps a hostile endpoint from making the bot buffer and parse megabytes.
 */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export interface HttpClientOptions {
  /** Answers longer than this fail, and their connection is dropped. Default 1 MiB. */
  readonly maxBodyBytes?: number;
}

interface Target {
  readonly https: boolean;
  readonly hostname: string;
  readonly port: string;
  readonly path: string;
}

/** Parsed URLs are kept: the same few hundred node URLs are asked every interval. */
const TARGET_CACHE_LIMIT = 10_000;

/** node:http(s) with keep-alive connections, so a probe every second does not open a TCP connection each time. */
export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  // lifo: the most recently used socket is the least likely to have been closed by the server as idle.
  const httpAgent = new HttpAgent({ keepAlive: true, scheduling: 'lifo' });
  const httpsAgent = new HttpsAgent({ keepAlive: true, scheduling: 'lifo' });
  const targets = new Map<string, Target>();

  const targetOf = (url: string): Target => {
    let target = targets.get(url);
    if (target) return target;
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw new TypeError(`unsupported protocol ${parsed.protocol} (http or https expected)`);
    target = {
      https: parsed.protocol === 'https:',
      // node:http wants an IPv6 literal without its brackets.
      hostname: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: parsed.port,
      path: `${parsed.pathname}${parsed.search}`,
    };
    if (targets.size >= TARGET_CACHE_LIMIT) targets.clear();
    targets.set(url, target);
    return target;
  };

  const send = (
    request: HttpTextRequest,
    target: Target,
    deadlineAt: number,
    isRetry: boolean,
  ): Promise<HttpTextResponse> =>
    new Promise<HttpTextResponse>((resolve, reject) => {
      const { signal } = request;
      // The caller's reason is passed on untouched, whatever it is (the adapter's contract).
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      let settled = false;
      let responded = false;
      /** Why we destroyed the request ourselves: the error to report, whatever the socket says after. */
      let cause: Error | undefined;
      const drop = (error: Error) => {
        cause ??= error;
        req.destroy();
        fail(error);
      };
      const headers =
        request.body === undefined
          ? request.headers
          : { ...request.headers, 'content-length': String(Buffer.byteLength(request.body)) };
      const req = (target.https ? httpsRequest : httpRequest)(
        {
          method: request.method,
          hostname: target.hostname,
          ...(target.port === '' ? {} : { port: target.port }),
          path: target.path,
          headers,
          agent: target.https ? httpsAgent : httpAgent,
        },
        (res: IncomingMessage) => {
          responded = true;
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('error', fail);
          const declared = Number(res.headers['content-length']);
          if (declared > maxBodyBytes) {
            drop(new HttpBodyTooLargeError(maxBodyBytes, request.url));
            return;
          }
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxBodyBytes) drop(new HttpBodyTooLargeError(maxBodyBytes, request.url));
            else chunks.push(chunk);
          });
          res.on('end', () => {
            if (settled) return;
            const status = res.statusCode ?? 0;
            const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
            finish();
            resolve({
              status,
              statusText: res.statusMessage ?? '',
              ok: status >= 200 && status < 300,
              text: body.toString('utf8'),
            });
          });
        },
      );
      const remaining = Math.max(0, deadlineAt - performance.now());
      const timer = setTimeout(() => drop(new HttpTimeoutError(request.timeoutMs)), remaining);
      const onAbort = () => {
        if (settled) return;
        finish();
        req.destroy();
        reject(signal?.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });

      function finish(): void {
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      }

      // Socket and parser failures are Errors; `unknown` only because that is what listeners are given.
      function fail(error: unknown): void {
        if (settled) return;
        const code = (error as { code?: unknown } | undefined)?.code;
        // A kept-alive connection the server closed while idle fails at once with ECONNRESET: the request
        // never reached the node, so it is sent again once on a fresh connection (what Node's docs advise).
        if (
          !isRetry &&
          !responded &&
          cause === undefined &&
          req.reusedSocket &&
          (code === 'ECONNRESET' || code === 'EPIPE') &&
          performance.now() < deadlineAt
        ) {
          finish();
          resolve(send(request, target, deadlineAt, true));
          return;
        }
        finish();
        reject(cause ?? (error as Error));
      }

      req.on('error', fail);
      req.end(request.body);
    });

  return async (request) => {
    const target = targetOf(request.url);
    return send(request, target, performance.now() + request.timeoutMs, false);
  };
}

/** The same contract over a fetch implementation (tests inject one; nothing else needs it). */
export function fetchHttpClient(fetchFn: typeof fetch, options: HttpClientOptions = {}): HttpClient {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  return async (request) => {
    const timeout = AbortSignal.timeout(Math.max(0, Math.ceil(request.timeoutMs)));
    const signal = request.signal ? AbortSignal.any([timeout, request.signal]) : timeout;
    try {
      const response = await fetchFn(request.url, {
        method: request.method,
        headers: request.headers,
        ...(request.body === undefined ? {} : { body: request.body }),
        signal,
      });
      const text = await response.text();
      if (Buffer.byteLength(text) > maxBodyBytes) throw new HttpBodyTooLargeError(maxBodyBytes, request.url);
      return { status: response.status, statusText: response.statusText, ok: response.ok, text };
    } catch (error) {
      if (error instanceof HttpBodyTooLargeError) throw error;
      if (request.signal?.aborted) throw request.signal.reason;
      if (timeout.aborted) throw new HttpTimeoutError(request.timeoutMs);
      throw error;
    }
  };
}
