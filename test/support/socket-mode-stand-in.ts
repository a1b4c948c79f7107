/**
 * A loopback stand-in of Slack's Socket Mode, for tests that run the real bot with SLACK_APP_TOKEN.
 *
 * As Slack does it: the client calls `apps.connections.open` on the Web API (here the Web API stand-in,
 * which this one teaches the method) with the app-level `xapp-` token and gets a single-use `wss` URL
 * (here `ws://127.0.0.1:<port>/link/?ticket=…`); on connecting it receives `{type:"hello"}`; envelopes
 * `{envelope_id, type, payload, accepts_response_payload, retry_attempt, retry_reason}` follow, each sent
 * to one connection only, and the client acknowledges each with `{envelope_id, payload?}`.
 *
 * What goes wrong in production can be played: `refresh` sends Slack's `{type:"disconnect",
 * reason:"refresh_requested"}`; `drop` closes the TCP connection with no close frame (a load balancer or
 * NAT losing it); `stall` stops reading the connection, so pings go unanswered and nothing more arrives
 * (a connection that died silently, half-open).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { SlackStandIn } from './slack-stand-in.js';

export type EnvelopeType = 'slash_commands' | 'interactive';

export interface SocketConnection {
  /** 1 for the first connection ever made, 2 for the next, … */
  readonly id: number;
  /** True from hello until the connection closed, dropped or stalled. */
  open: boolean;
  /** Envelope ids delivered on this connection. */
  readonly envelopes: string[];
}

export interface Ack {
  readonly envelopeId: string;
  /** The connection the acknowledgement came back on. */
  readonly connection: number;
  readonly payload: unknown;
}

export interface DeliverOptions {
  /** Slack's retry_attempt: 0 for a first delivery, 1… for redeliveries of the same payload. */
  readonly retryAttempt?: number;
  /** Default: the next open connection, round robin. */
  readonly to?: SocketConnection;
}

export interface Delivery {
  readonly envelopeId: string;
  readonly connection: SocketConnection;
  /** Resolves with the client's acknowledgement; rejects when none came within 10 s. */
  readonly acked: Promise<Ack>;
}

export interface SocketModeStandIn {
  /** The app-level token apps.connections.open accepts. */
  readonly appToken: string;
  /** Every connection made so far, in order. */
  readonly connections: readonly SocketConnection[];
  /** The connections open now. */
  open(): SocketConnection[];
  /** Every acknowledgement received, in order. */
  readonly acks: readonly Ack[];
  /** apps.connections.open calls refused for a wrong token. */
  refusedTokens(): number;
  deliver(type: EnvelopeType, payload: Record<string, unknown>, options?: DeliverOptions): Delivery;
  refresh(connection: SocketConnection): void;
  drop(connection: SocketConnection): void;
  stall(connection: SocketConnection): void;
  close(): Promise<void>;
}

const ACK_TIMEOUT_MS = 10_000;

export async function startSocketModeStandIn(
  slack: SlackStandIn,
  options: { readonly appToken?: string } = {},
): Promise<SocketModeStandIn> {
  const appToken = options.appToken ?? 'xapp-1-A0APP-socket-stand-in';
  const tickets = new Set<string>();
  const connections: SocketConnection[] = [];
  const live = new Map<SocketConnection, { ws: WebSocket; socket: Socket; stalled: boolean }>();
  const acks: Ack[] = [];
  const waiting = new Map<string, (ack: Ack) => void>();
  let refused = 0;
  let next = 0;

  const server: Server = createServer((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  // Pongs are sent by hand, so that a stalled connection can stop answering pings.
  const wss = new WebSocketServer({ noServer: true, autoPong: false });
  server.on('upgrade', (req, socket: Socket, head) => {
    const url = new URL(req.url ?? '/', 'ws://stand-in');
    const ticket = url.searchParams.get('ticket') ?? '';
    if (url.pathname !== '/link/' || !tickets.delete(ticket)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const connection: SocketConnection = { id: connections.length + 1, open: true, envelopes: [] };
      const state = { ws, socket, stalled: false };
      connections.push(connection);
      live.set(connection, state);
      ws.on('ping', (data) => {
        if (!state.stalled) ws.pong(data);
      });
      ws.on('message', (data: Buffer) => {
        const message = JSON.parse(data.toString('utf8')) as { envelope_id?: string; payload?: unknown };
        if (typeof message.envelope_id !== 'string') return;
        const ack = { envelopeId: message.envelope_id, connection: connection.id, payload: message.payload };
        acks.push(ack);
        waiting.get(ack.envelopeId)?.(ack);
        waiting.delete(ack.envelopeId);
      });
      ws.on('close', () => {
        connection.open = false;
        live.delete(connection);
      });
      ws.on('error', () => undefined);
      ws.send(
        JSON.stringify({
          type: 'hello',
          num_connections: live.size,
          debug_info: { host: 'stand-in', approximate_connection_time: 18060 },
          connection_info: { app_id: 'A0APP' },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('Socket Mode stand-in has no port');

  slack.answerWith('apps.connections.open', (_args, token) => {
    if (token !== appToken) {
      refused += 1;
      return { ok: false, error: 'invalid_auth' };
    }
    const ticket = randomUUID();
    tickets.add(ticket);
    return { ok: true, url: `ws://127.0.0.1:${address.port}/link/?ticket=${ticket}&app_id=A0APP` };
  });

  const open = () => connections.filter((c) => c.open);
  const stateOf = (connection: SocketConnection) => {
    const state = live.get(connection);
    if (!state || !connection.open) throw new Error(`connection ${connection.id} is not open`);
    return state;
  };

  return {
    appToken,
    connections,
    open,
    acks,
    refusedTokens: () => refused,
    deliver(type, payload, deliverOptions = {}) {
      const candidates = open();
      if (candidates.length === 0) throw new Error('no Socket Mode connection is open');
      const connection = deliverOptions.to ?? candidates[next++ % candidates.length]!;
      const envelopeId = randomUUID();
      const acked = new Promise<Ack>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(envelopeId);
          reject(
            new Error(`envelope ${envelopeId} (${type}) was not acknowledged within ${ACK_TIMEOUT_MS} ms`),
          );
        }, ACK_TIMEOUT_MS);
        waiting.set(envelopeId, (ack) => {
          clearTimeout(timer);
          resolve(ack);
        });
      });
      const retryAttempt = deliverOptions.retryAttempt ?? 0;
      stateOf(connection).ws.send(
        JSON.stringify({
          envelope_id: envelopeId,
          type,
          payload,
          accepts_response_payload: type === 'slash_commands',
          retry_attempt: retryAttempt,
          retry_reason: retryAttempt > 0 ? 'timeout' : '',
        }),
      );
      connection.envelopes.push(envelopeId);
      return { envelopeId, connection, acked };
    },
    refresh(connection) {
      stateOf(connection).ws.send(
        JSON.stringify({
          type: 'disconnect',
          reason: 'refresh_requested',
          debug_info: { host: 'stand-in' },
        }),
      );
    },
    drop(connection) {
      const state = stateOf(connection);
      connection.open = false;
      // No close frame: the TCP connection just ends.
      state.socket.destroy();
    },
    stall(connection) {
      const state = stateOf(connection);
      connection.open = false;
      state.stalled = true;
      // Nothing more is read: no pongs, no close handshake, no acknowledgements.
      state.socket.pause();
    },
    async close() {
      for (const { socket } of live.values()) socket.destroy();
      live.clear();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
