/**
 * The response_url poster against a loopback HTTP server standing in for Slack's response_url.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createResponseUrlPoster, type ResponseUrlPoster } from '../../../src/bot/response-url.js';
import { ExternalError } from '../../../src/errors.js';

interface Received {
  readonly path: string;
  readonly contentType: string | undefined;
  readonly body: unknown;
}

interface Target {
  readonly base: string;
  readonly received: Received[];
  /** TCP connections accepted so far. */
  connections(): number;
}

const servers: Server[] = [];
const posters: ResponseUrlPoster[] = [];

afterEach(async () => {
  for (const poster of posters.splice(0)) poster.close();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

async function target(answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<Target> {
  const received: Received[] = [];
  let connections = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        contentType: req.headers['content-type'],
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown,
      });
      answer(req, res);
    });
  });
  server.on('connection', () => {
    connections += 1;
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    connections: () => connections,
  };
}

function poster(timeoutMs?: number): ResponseUrlPoster {
  const created = createResponseUrlPoster(timeoutMs === undefined ? {} : { timeoutMs });
  posters.push(created);
  return created;
}

const ok = (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('ok');
};

describe('response_url poster', () => {
  it('posts the answer as JSON to the response_url', async () => {
    const slack = await target(ok);
    await poster().post(`${slack.base}/actions/T0/1/secret`, { text: 'hi', response_type: 'ephemeral' });
    expect(slack.received).toEqual([
      {
        path: '/actions/T0/1/secret',
        contentType: 'application/json',
        body: { text: 'hi', response_type: 'ephemeral' },
      },
    ]);
  });

  it('sends consecutive answers over one kept-alive connection', async () => {
    const slack = await target(ok);
    const post = poster();
    for (let i = 0; i < 3; i++) await post.post(`${slack.base}/r/${i}`, { text: `answer ${i}` });
    expect(slack.received.map((r) => r.path)).toEqual(['/r/0', '/r/1', '/r/2']);
    expect(slack.connections()).toBe(1);
  });

  it('sends again on a new connection when the kept-alive one was closed by the server', async () => {
    let answered = 0;
    const slack = await target((req, res) => {
      answered += 1;
      // The second request arrives on the first one's connection, which the server has given up.
      if (answered === 2) req.socket.destroy();
      else ok(req, res);
    });
    const post = poster();
    await post.post(`${slack.base}/r/first`, { text: 'one' });
    await post.post(`${slack.base}/r/second`, { text: 'two' });
    expect(slack.received.map((r) => r.path)).toEqual(['/r/first', '/r/second', '/r/second']);
    expect(slack.connections()).toBe(2);
  });

  it('fails with response_url_failed, naming the host but not the secret path, when Slack refuses', async () => {
    const slack = await target((_req, res) => {
      res.writeHead(404);
      res.end('expired_url');
    });
    const error = await poster()
      .post(`${slack.base}/actions/T0/1/secret-part`, { text: 'late' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(ExternalError);
    expect(error).toMatchObject({ code: 'response_url_failed' });
    expect((error as Error).message).toContain('HTTP 404');
    expect((error as Error).message).toContain('127.0.0.1');
    expect((error as Error).message).not.toContain('secret-part');
  });

  it('fails instead of waiting forever when the response_url never answers', async () => {
    const slack = await target(() => undefined);
    await expect(poster(200).post(`${slack.base}/r/silent`, { text: 'x' })).rejects.toMatchObject({
      code: 'response_url_failed',
    });
  });

  it('refuses a response_url that is not an http or https URL', async () => {
    for (const url of ['file:///etc/passwd', 'not a url']) {
      await expect(poster().post(url, { text: 'x' })).rejects.toMatchObject({ code: 'response_url_failed' });
    }
  });
});
