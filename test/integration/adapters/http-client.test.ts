import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createHttpClient,
  HttpBodyTooLargeError,
  HttpTimeoutError,
} from '../../../src/adapters/rpc/http-client.js';

interface Loopback {
  readonly url: string;
  readonly server: Server;
  /** Connections accepted so far. */
  connections: number;
}

const servers: Server[] = [];

async function serve(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<Loopback> {
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const loopback: Loopback = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    connections: 0,
  };
  server.on('connection', () => loopback.connections++);
  return loopback;
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

describe('HTTP client of the NodeRpc adapter', () => {
  it('sends method, path, headers and body, and returns status and text', async () => {
    const seen: Array<{ method?: string; url?: string; auth?: string; body: string }> = [];
    const { url } = await serve((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, body });
        res.writeHead(418, 'Teapot', { 'content-type': 'text/plain' }).end('héllo');
      });
    });
    const http = createHttpClient();

    const response = await http({
      method: 'POST',
      url: `${url}/rpc?x=1`,
      headers: { authorization: 'Basic abc' },
      body: '{"a":"é"}',
      timeoutMs: 5_000,
    });

    expect(response).toEqual({ status: 418, statusText: 'Teapot', ok: false, text: 'héllo' });
    expect(seen).toEqual([{ method: 'POST', url: '/rpc?x=1', auth: 'Basic abc', body: '{"a":"é"}' }]);
  });

  it('keeps the connection open between requests to the same server', async () => {
    const target = await serve((_req, res) => res.end('ok'));
    const http = createHttpClient();
    for (let i = 0; i < 5; i++) {
      await http({ method: 'GET', url: `${target.url}/metrics`, headers: {}, timeoutMs: 5_000 });
    }
    expect(target.connections).toBe(1);
  });

  it('fails with HttpTimeoutError when the server accepts but never answers', async () => {
    const { url } = await serve(() => undefined);
    const http = createHttpClient();
    await expect(http({ method: 'GET', url, headers: {}, timeoutMs: 200 })).rejects.toBeInstanceOf(
      HttpTimeoutError,
    );
  });

  it('rejects with the caller reason when the caller aborts', async () => {
    const { url } = await serve(() => undefined);
    const http = createHttpClient();
    const controller = new AbortController();
    const reason = new Error('shutting down');
    const pending = http({ method: 'GET', url, headers: {}, timeoutMs: 5_000, signal: controller.signal });
    setTimeout(() => controller.abort(reason), 50);
    await expect(pending).rejects.toBe(reason);
  });

  it('refuses an answer larger than its limit', async () => {
    const { url } = await serve((_req, res) => res.end('x'.repeat(10_000)));
    const http = createHttpClient({ maxBodyBytes: 1_000 });
    await expect(http({ method: 'GET', url, headers: {}, timeoutMs: 5_000 })).rejects.toBeInstanceOf(
      HttpBodyTooLargeError,
    );
  });

  it('sends again on a fresh connection when the server closed the kept-alive one while idle', async () => {
    let served = 0;
    const { url, server } = await serve((_req, res) => {
      served++;
      res.end(`answer ${served}`);
    });
    const http = createHttpClient();
    await http({ method: 'GET', url, headers: {}, timeoutMs: 5_000 });
    // Close the idle connection from the server side without the client having noticed yet.
    server.closeIdleConnections();
    const second = await http({ method: 'GET', url, headers: {}, timeoutMs: 5_000 });
    expect(second.text).toBe('answer 2');
  });

  it('says which protocol it does not speak', async () => {
    const http = createHttpClient();
    await expect(
      http({ method: 'GET', url: 'ftp://127.0.0.1/metrics', headers: {}, timeoutMs: 1_000 }),
    ).rejects.toThrow(/unsupported protocol ftp:/);
  });
});
