/**
 * Holds the work that follows a Slack acknowledgement until the HTTP receiver has answered every request
 * it has received, so that a burst (50 clicks at once) is acknowledged at the speed of a bare Bolt app
 * and its deduplication, handlers and response_url posts run after.
 *
 * One event-loop turn (setImmediate) is not enough: a request's body and Bolt's processing span several
 * turns, so work deferred by one turn still runs between the later requests' stages. The gate counts the
 * requests in flight on the receiver's server and lets work go when none has been left for `quietMs`
 * (the requests of a burst do not all arrive in the same instant), or after `maxDeferMs` at the latest,
 * so that a steady stream of requests cannot starve the work. Without a server to watch
 * (Socket Mode acknowledges over its WebSocket), the work waits one turn.
 */
import type { Server } from 'node:http';
import { setImmediate as nextTurn } from 'node:timers/promises';

export interface AckGate {
  /** Counts the server's requests from arrival until their response is finished or aborted. */
  watch(server: Server): void;
  /** Resolves once no request is in flight (at least one turn from now), or after maxDeferMs. */
  afterAcks(): Promise<void>;
}

export function createAckGate(options: { readonly maxDeferMs: number; readonly quietMs: number }): AckGate {
  let inFlight = 0;
  let waiting: (() => void)[] = [];
  let quiet: NodeJS.Timeout | undefined;

  const releaseWhenIdle = (): void => {
    if (inFlight > 0 || waiting.length === 0) return;
    const ready = waiting;
    waiting = [];
    for (const release of ready) release();
  };

  return {
    watch(server) {
      server.on('request', (_request, response) => {
        inFlight += 1;
        clearTimeout(quiet);
        let done = false;
        const finished = () => {
          if (done) return;
          done = true;
          inFlight -= 1;
          // Held work runs once no request has come for quietMs: the rest of a burst is acked first.
          if (inFlight === 0) {
            clearTimeout(quiet);
            quiet = setTimeout(releaseWhenIdle, options.quietMs);
          }
        };
        response.once('finish', finished);
        response.once('close', finished);
      });
    },
    async afterAcks() {
      await nextTurn();
      if (inFlight === 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          waiting = waiting.filter((r) => r !== release);
          resolve();
        }, options.maxDeferMs);
        const release = () => {
          clearTimeout(timer);
          resolve();
        };
        waiting.push(release);
      });
    },
  };
}
