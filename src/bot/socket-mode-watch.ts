/**
 * Keeps Bolt's Socket Mode client connected and says how it is: its state for /readyz and the
 * `cellops_slack_socket_connected` gauge, reconnections for `cellops_slack_socket_reconnects_total`.
 *
 * The client is built with its own reconnection off and reconnected from here. @slack/socket-mode 3.x
 * reconnects by itself after Slack's `disconnect` and after a dead connection, but when
 * `apps.connections.open` fails with a network or HTTP error during a reconnect it treats that as
 * unrecoverable: the reconnect promise rejects with nobody listening and the client stays down for good,
 * a bot that looks alive and hears nothing. Here every `disconnected` is followed by `start()` after a
 * bounded backoff, and a failed start is retried the same way, until it connects or the bot stops.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { SocketHealth } from './health-routes.js';

/** What the watch needs of @slack/socket-mode's SocketModeClient (an EventEmitter). */
export interface SocketModeClientLike {
  on(event: string, listener: () => void): unknown;
  off(event: string, listener: () => void): unknown;
  start(): Promise<unknown>;
}

export interface SocketModeWatch {
  health(): SocketHealth;
  /** Stops reconnecting (before the client is disconnected on purpose). */
  stop(): void;
}

/** Waits before the 1st, 2nd, … reconnection attempt in a row; the last one repeats. */
export const RECONNECT_DELAYS_MS = [1_000, 2_000, 5_000, 10_000, 30_000] as const;

/** The client's state events (SocketModeClient's `State` values) other than `connected`. */
const NOT_CONNECTED = ['connecting', 'authenticated', 'disconnecting', 'disconnected'] as const;

export function watchSocketMode(deps: {
  readonly client: SocketModeClientLike;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry?: Registry | undefined;
  readonly reconnectDelaysMs?: readonly number[] | undefined;
}): SocketModeWatch {
  const { client, clock, logger } = deps;
  const delays = deps.reconnectDelaysMs ?? RECONNECT_DELAYS_MS;
  const registers = deps.registry ? [deps.registry] : [];
  const gauge = new Gauge({
    name: 'cellops_slack_socket_connected',
    help: 'Socket Mode: 1 while the WebSocket to Slack is connected (hello received), else 0',
    registers,
  });
  const reconnects = new Counter({
    name: 'cellops_slack_socket_reconnects_total',
    help: 'Socket Mode: connections established after the first one (refreshes, drops, restarts)',
    registers,
  });
  const controller = new AbortController();
  let state: string = 'connecting';
  let since = clock.now();
  let connections = 0;
  let attempt = 0;
  let reconnecting = false;

  const reconnect = async (): Promise<void> => {
    if (reconnecting) return;
    reconnecting = true;
    try {
      while (!controller.signal.aborted && state !== 'connected') {
        const delay = delays[Math.min(attempt, delays.length - 1)] ?? 1_000;
        attempt += 1;
        await clock.sleep(delay, controller.signal).catch(() => undefined);
        if (controller.signal.aborted) return;
        try {
          await client.start();
        } catch (error) {
          logger.warn({ err: error, attempt }, 'Slack Socket Mode reconnection failed; will try again');
        }
      }
    } finally {
      reconnecting = false;
    }
  };

  const listeners: [string, () => void][] = [
    [
      'connected',
      () => {
        if (connections++ > 0) {
          reconnects.inc();
          logger.info({ downForMs: clock.now() - since }, 'Slack Socket Mode reconnected');
        }
        state = 'connected';
        since = clock.now();
        attempt = 0;
        gauge.set(1);
      },
    ],
    ...NOT_CONNECTED.map((event): [string, () => void] => [
      event,
      () => {
        if (state === 'connected') {
          since = clock.now();
          logger.warn({ event }, 'Slack Socket Mode connection lost; reconnecting');
        }
        state = event;
        gauge.set(0);
        if (event === 'disconnected' && !controller.signal.aborted) void reconnect();
      },
    ]),
  ];
  for (const [event, listener] of listeners) client.on(event, listener);
  gauge.set(0);

  return {
    health: () => ({
      connected: state === 'connected',
      detail:
        state === 'connected'
          ? 'connected'
          : `Socket Mode not connected (${state} for ${Math.round((clock.now() - since) / 1000)} s)`,
    }),
    stop() {
      controller.abort();
      for (const [event, listener] of listeners) client.off(event, listener);
    },
  };
}
