/**
 * The sandbox's HTTP server: the web console page, a server-sent event stream of messages, and JSON
 * endpoints for slash commands, button clicks and faults. It listens on loopback only: the sandbox has no
 * authentication, so it must not be reachable from elsewhere. For the same reason /api/* answers only
 * requests to its own loopback name (a DNS-rebinding page sends another Host) and from its own origin
 * (403 otherwise), and POSTs only as JSON (415 otherwise): a cross-site form cannot send JSON, and a
 * cross-site fetch of JSON needs a CORS preflight this server never grants.
 */
import type { PagerPanel } from './sandbox-pager.js';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../ports/logger.js';
import type { ConsoleChat } from './console-chat.js';
import { renderConsolePage, type ConsolePageOptions } from './console-page.js';

export interface ConsoleHandlers {
  command(text: string, user: string): Promise<void>;
  action(input: {
    actionId: string;
    value: string;
    user: string;
    messageTs: string;
    threadTs: string;
  }): Promise<void>;
  fault(node: string, fault: string, user: string): Promise<void>;
  health(): Promise<{ ok: boolean; details: Record<string, unknown> }>;
  metrics(): Promise<string>;
  /** The Pager panel: pages the sandbox would have sent and what escalation waits for. */
  pager?(): Promise<PagerPanel>;
}

const MAX_BODY = 16 * 1024;

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY) throw new Error('request body too large');
    chunks.push(buffer);
  }
  const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new Error('expected a JSON object');
  return parsed as Record<string, unknown>;
}

function str(body: Record<string, unknown>, key: string): string {
  const value = body[key];
  if (typeof value !== 'string') throw new Error(`"${key}" must be a string`);
  return value;
}

/** The mediatype of a Content-Type header, lower case, without parameters. */
function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Why a request to /api/* is refused, or undefined when it may go on. */
export function refusal(
  req: Pick<IncomingMessage, 'method' | 'headers'>,
  port: number,
): { status: 403 | 415; error: string } | undefined {
  const host = req.headers.host ?? '';
  if (![`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].includes(host.toLowerCase()))
    return { status: 403, error: 'this console answers only on its own loopback address' };
  const origin = req.headers.origin;
  // Browsers send Origin with every cross-origin request and with same-origin POSTs; tools send none.
  if (origin !== undefined && origin.toLowerCase() !== `http://${host.toLowerCase()}`)
    return { status: 403, error: 'requests from other origins are refused' };
  if (req.method === 'POST' && mediaType(req.headers['content-type']) !== 'application/json')
    return { status: 415, error: 'send JSON (content-type: application/json)' };
  return undefined;
}

export interface ConsoleServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startConsoleServer(deps: {
  chat: ConsoleChat;
  handlers: ConsoleHandlers;
  page: ConsolePageOptions;
  port: number;
  logger: Logger;
}): Promise<ConsoleServer> {
  const page = renderConsolePage(deps.page);
  const streams = new Set<ServerResponse>();
  // Set once listening (deps.port may be 0).
  let port = deps.port;

  const send = (res: ServerResponse, status: number, body: unknown, type = 'application/json'): void => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/') return send(res, 200, page, 'text/html; charset=utf-8');
    if (req.method === 'GET' && path === '/livez') return send(res, 200, { ok: true });
    if (req.method === 'GET' && (path === '/readyz' || path === '/healthz')) {
      const health = await deps.handlers.health();
      return send(res, health.ok ? 200 : 503, health);
    }
    if (path?.startsWith('/api/')) {
      const refused = refusal(req, port);
      if (refused) return send(res, refused.status, { ok: false, error: refused.error });
    }
    if (req.method === 'GET' && path === '/metrics')
      return send(res, 200, await deps.handlers.metrics(), 'text/plain; version=0.0.4');
    if (req.method === 'GET' && path === '/api/messages') return send(res, 200, deps.chat.messages());
    if (req.method === 'GET' && path === '/api/pager')
      return send(res, 200, (await deps.handlers.pager?.()) ?? { sent: [], waiting: [] });
    if (req.method === 'GET' && path === '/api/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      for (const message of deps.chat.messages())
        res.write(`data: ${JSON.stringify({ type: 'message', message })}\n\n`);
      streams.add(res);
      req.on('close', () => streams.delete(res));
      return undefined;
    }
    if (req.method === 'POST' && path?.startsWith('/api/')) {
      let body: Record<string, unknown>;
      try {
        body = await readJson(req);
      } catch (error) {
        return send(res, 400, { ok: false, error: (error as Error).message });
      }
      try {
        if (path === '/api/command') await deps.handlers.command(str(body, 'text'), str(body, 'user'));
        else if (path === '/api/action') {
          await deps.handlers.action({
            actionId: str(body, 'actionId'),
            value: str(body, 'value'),
            user: str(body, 'user'),
            messageTs: str(body, 'messageTs'),
            threadTs: str(body, 'threadTs'),
          });
        } else if (path === '/api/fault')
          await deps.handlers.fault(str(body, 'node'), str(body, 'fault'), str(body, 'user'));
        else return send(res, 404, { ok: false, error: 'not found' });
        return send(res, 200, { ok: true });
      } catch (error) {
        deps.logger.warn({ path, err: error }, 'sandbox request failed');
        return send(res, 400, { ok: false, error: (error as Error).message });
      }
    }
    return send(res, 404, { ok: false, error: 'not found' });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      deps.logger.error({ err: error }, 'sandbox console error');
      if (!res.headersSent) send(res, 500, { ok: false, error: 'internal error' });
    });
  });
  const unsubscribe = deps.chat.subscribe((event) => {
    const line = `data: ${JSON.stringify(event)}\n\n`;
    for (const stream of streams) stream.write(line);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: async () => {
      unsubscribe();
      for (const stream of streams) stream.end();
      streams.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
