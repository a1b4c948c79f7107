/**
 * A loopback stand-in of Slack's Web API and of `response_url`, for tests that run the real bot.
 *
 * WebClient posts `POST /api/<method>` form-encoded (objects such as `blocks` as JSON strings) with
 * `Authorization: Bearer <token>`; Bolt's respond() posts JSON to the response_url. Both are recorded in
 * arrival order. Answers are the minimal ones Slack gives; `rateLimit` makes the next calls of a method
 * answer 429 with Retry-After, `fail` makes them answer an HTTP error or `{ok:false}`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';

export interface ApiCall {
  readonly method: string;
  readonly args: Record<string, unknown>;
  readonly token: string | undefined;
  /** What the stand-in answered (`ts` of a post, …), once answered. */
  result?: Record<string, unknown>;
}

export interface ResponseUrlPost {
  readonly id: string;
  readonly body: Record<string, unknown>;
}

export interface SlackStandIn {
  /** Base URL for WebClient's slackApiUrl (ends with /api/). */
  readonly apiUrl: string;
  /** A response_url that records what is posted to it under `id`. */
  responseUrl(id: string): string;
  readonly calls: ApiCall[];
  readonly responses: ResponseUrlPost[];
  readonly usergroups: Map<string, string[]>;
  callsOf(method: string): ApiCall[];
  /** The next `times` calls of `method` answer 429 with `Retry-After: retryAfterS`. */
  rateLimit(method: string, retryAfterS: number, times?: number): void;
  /** The next `times` calls of `method` answer HTTP `status` (or `{ok:false, error}` when status is 200). */
  fail(method: string, status: number, times?: number, error?: string): void;
  /** Answers `method` with `answer` from now on (e.g. apps.connections.open for the Socket Mode stand-in). */
  answerWith(
    method: string,
    answer: (args: Record<string, unknown>, token: string | undefined) => Record<string, unknown>,
  ): void;
  /** Waits until `check` returns something truthy; throws with `what` after `timeoutMs`. */
  waitFor<T>(what: string, check: () => T | undefined | false, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

function parseForm(body: string): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(body)) {
    if (/^[[{]/.test(value)) {
      try {
        args[key] = JSON.parse(value) as unknown;
        continue;
      } catch {
        // not JSON after all: keep the string
      }
    }
    args[key] = value;
  }
  return args;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startSlackStandIn(): Promise<SlackStandIn> {
  const calls: ApiCall[] = [];
  const responses: ResponseUrlPost[] = [];
  const usergroups = new Map<string, string[]>();
  const limits = new Map<string, { retryAfterS: number; times: number }>();
  const failures = new Map<string, { status: number; times: number; error: string }>();
  const custom = new Map<string, Parameters<SlackStandIn['answerWith']>[1]>();
  let seq = 0;

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  const answer = (method: string, args: Record<string, unknown>): Record<string, unknown> => {
    const channel = typeof args.channel === 'string' ? args.channel : 'C0UNKNOWN';
    switch (method) {
      case 'auth.test':
        return { ok: true, user_id: 'U0BOT', bot_id: 'B0BOT', team_id: 'T0TEAM', user: 'cellops' };
      case 'chat.postMessage': {
        const ts = `1700000000.${String(++seq).padStart(6, '0')}`;
        return { ok: true, channel, ts, message: { ts, text: args.text } };
      }
      case 'chat.update':
        return { ok: true, channel, ts: args.ts };
      case 'chat.postEphemeral':
        return { ok: true, message_ts: `1700000000.${String(++seq).padStart(6, '0')}` };
      case 'chat.getPermalink':
        return {
          ok: true,
          channel,
          permalink: `https://stand-in.slack.com/archives/${channel}/p${String(args.message_ts).replace('.', '')}`,
        };
      case 'usergroups.users.list':
        return { ok: true, users: usergroups.get(String(args.usergroup)) ?? [] };
      default:
        return { ok: false, error: 'unknown_method' };
    }
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const url = req.url ?? '/';
      if (req.method === 'POST' && url.startsWith('/api/')) {
        const method = url.slice('/api/'.length).split('?')[0] ?? '';
        const args = parseForm(body);
        const auth = req.headers.authorization;
        const call: ApiCall = {
          method,
          args,
          token: auth?.startsWith('Bearer ') ? auth.slice(7) : undefined,
        };
        calls.push(call);
        const limit = limits.get(method);
        if (limit && limit.times > 0) {
          limit.times--;
          json(res, 429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(limit.retryAfterS) });
          return;
        }
        const failure = failures.get(method);
        if (failure && failure.times > 0) {
          failure.times--;
          if (failure.status === 200) json(res, 200, { ok: false, error: failure.error });
          else json(res, failure.status, { ok: false, error: failure.error });
          return;
        }
        call.result = custom.get(method)?.(args, call.token) ?? answer(method, args);
        json(res, 200, call.result);
        return;
      }
      if (req.method === 'POST' && url.startsWith('/response/')) {
        responses.push({
          id: url.slice('/response/'.length),
          body: JSON.parse(body) as Record<string, unknown>,
        });
        json(res, 200, { ok: true });
        return;
      }
      json(res, 404, { ok: false, error: 'not_found' });
    })().catch(() => {
      res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('stand-in has no port');
  const base = `http://127.0.0.1:${address.port}`;

  return {
    apiUrl: `${base}/api/`,
    responseUrl: (id) => `${base}/response/${id}`,
    calls,
    responses,
    usergroups,
    callsOf: (method) => calls.filter((c) => c.method === method),
    answerWith: (method, answer) => custom.set(method, answer),
    rateLimit: (method, retryAfterS, times = 1) => limits.set(method, { retryAfterS, times }),
    fail: (method, status, times = 1, error = 'internal_error') =>
      failures.set(method, { status, times, error }),
    async waitFor(what, check, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const value = check();
        if (value) return value;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await delay(10);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
