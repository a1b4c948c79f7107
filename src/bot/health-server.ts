/**
 * A small HTTP server for the probes and /metrics alone (./health-routes.ts). Socket Mode has no HTTP
 * receiver, so it always serves them here; in HTTP mode, HEALTH_PORT moves them off the Slack port, so
 * Prometheus and the kubelet need not reach the port Slack posts to (and /slack/events need not be
 * exposed to them). Only GET and HEAD on the exact paths; everything else is 404 or 405.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../ports/logger.js';
import { HEALTH_PATHS, healthHandlers, type HealthRoutesDeps } from './health-routes.js';

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

function isHealthPath(path: string): path is (typeof HEALTH_PATHS)[number] {
  return (HEALTH_PATHS as readonly string[]).includes(path);
}

export async function startHealthServer(options: {
  readonly deps: HealthRoutesDeps;
  readonly port: number;
  /** Default: all interfaces. */
  readonly host?: string | undefined;
  readonly logger: Logger;
}): Promise<HealthServer> {
  const handlers = healthHandlers(options.deps);
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://health').pathname;
    if (!isHealthPath(path)) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' });
      res.end('method not allowed\n');
      return;
    }
    handlers[path](res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => options.logger.error({ err: error }, 'health server error'));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
