import { createServer, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createAckGate } from '../../../src/bot/ack-gate.js';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** A loopback server whose requests stay open until the test answers them. */
async function holdingServer(): Promise<{
  server: Server;
  open: ServerResponse[];
  send: () => Promise<void>;
}> {
  const open: ServerResponse[] = [];
  const arrived: (() => void)[] = [];
  const s = createServer((_req, res) => {
    open.push(res);
    arrived.shift()?.();
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  const send = () =>
    new Promise<void>((resolve) => {
      arrived.push(resolve);
      request({ port, host: '127.0.0.1', method: 'POST' }, (res) => res.resume())
        .on('error', () => undefined)
        .end('x');
    });
  return { server: s, open, send };
}

describe('the ack gate', () => {
  it('holds work while a request is unanswered and lets it go once every request is answered', async () => {
    const held = await holdingServer();
    server = held.server;
    const gate = createAckGate({ maxDeferMs: 60_000, quietMs: 1 });
    gate.watch(held.server);
    await held.send();
    await held.send();
    let released = false;
    const work = gate.afterAcks().then(() => {
      released = true;
    });
    held.open[0]!.end('ok');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(released).toBe(false);
    held.open[1]!.end('ok');
    await work;
    expect(released).toBe(true);
  });

  it('lets work go without requests in flight, and after maxDeferMs when one never ends', async () => {
    const held = await holdingServer();
    server = held.server;
    const gate = createAckGate({ maxDeferMs: 30, quietMs: 1 });
    gate.watch(held.server);
    await gate.afterAcks();
    await held.send();
    await gate.afterAcks();
    expect(held.open[0]!.writableEnded).toBe(false);
  });
});
