/**
 * Node stand-ins for the monitor's integration tests and benchmarks: one loopback HTTP server that serves
 * kcnd-style Prometheus text for any number of nodes, routed by path (`/<name>/metrics`). Each node's
 * height follows a source (a real JSON-RPC chain, or a clock) minus its own lag, and can be stalled,
 * taken down or cut off from its CN peers.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StandInState {
  /** Blocks behind the source. */
  behind: number;
  /** Height frozen here while stalled. */
  frozenAt: number | undefined;
  /** Answers 503 while down. */
  down: boolean;
  cnPeers: number;
}

export interface StandInNode {
  readonly name: string;
  readonly url: string;
  readonly state: StandInState;
  /** Freezes the height where it is now. */
  stall(): Promise<void>;
  /** Moves again, caught up with the source minus `behind`. */
  resume(): void;
}

export interface StandIns {
  readonly baseUrl: string;
  add(name: string, state?: Partial<StandInState>): StandInNode;
  node(name: string): StandInNode;
  /** Requests served so far. */
  readonly served: number;
  close(): Promise<void>;
}

export async function startStandIns(source: () => Promise<number> | number): Promise<StandIns> {
  const nodes = new Map<string, StandInNode>();
  let served = 0;
  const heightOf = async (node: StandInNode): Promise<number> => {
    if (node.state.frozenAt !== undefined) return node.state.frozenAt;
    return Math.max(0, (await source()) - node.state.behind);
  };
  const server: Server = createServer((req, res) => {
    served++;
    const name = /^\/([^/]+)\/metrics$/.exec(req.url ?? '')?.[1];
    const node = name === undefined ? undefined : nodes.get(name);
    if (!node) {
      res.writeHead(404).end('no such node\n');
      return;
    }
    if (node.state.down) {
      res.writeHead(503).end('down\n');
      return;
    }
    heightOf(node).then(
      (height) => {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(
          '# TYPE klaytn_blockchain_head_blocknumber gauge\n' +
            `klaytn_blockchain_head_blocknumber ${height}\n` +
            '# TYPE klaytn_p2p_CNPeerCountGauge gauge\n' +
            `klaytn_p2p_CNPeerCountGauge ${node.state.cnPeers}\n` +
            '# TYPE klaytn_p2p_PNPeerCountGauge gauge\n' +
            'klaytn_p2p_PNPeerCountGauge 2\n',
        );
      },
      (error: unknown) => {
        res.writeHead(502).end(`source failed: ${String(error)}\n`);
      },
    );
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;

  return {
    baseUrl,
    get served() {
      return served;
    },
    add(name, state = {}) {
      const node: StandInNode = {
        name,
        url: `${baseUrl}/${name}/metrics`,
        state: { behind: 0, frozenAt: undefined, down: false, cnPeers: 4, ...state },
        async stall() {
          node.state.frozenAt = await heightOf(node);
        },
        resume() {
          node.state.frozenAt = undefined;
        },
      };
      nodes.set(name, node);
      return node;
    },
    node(name) {
      const node = nodes.get(name);
      if (!node) throw new Error(`no stand-in ${name}`);
      return node;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What a hostile metrics endpoint serves: a head value of 10 MB of digits, or a 16 MiB body. */
export type HostileBody = 'digits' | 'huge';

export interface HostileMetrics {
  /** `/<kind>/metrics` on this server. */
  url(kind: HostileBody): string;
  /** Requests received so far for each kind. */
  served(kind: HostileBody): number;
  /** Bodies sent to their end: a bounded reader hangs up before, so this stays 0. */
  readonly completed: number;
  close(): Promise<void>;
}

const DIGITS_BYTES = 10_000_000;
const HUGE_BYTES = 16 * 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;

/**
 * A node that wants to stall whoever reads its metrics: bodies are streamed in chunks with backpressure,
 * and a reader that hangs up stops the stream, so what a bounded reader costs is what it chose to read.
 */
export async function startHostileMetrics(): Promise<HostileMetrics> {
  const served: Record<HostileBody, number> = { digits: 0, huge: 0 };
  let completed = 0;
  const server: Server = createServer((req, res) => {
    const kind = /^\/(digits|huge)\/metrics$/.exec(req.url ?? '')?.[1] as HostileBody | undefined;
    if (kind === undefined) {
      res.writeHead(404).end('no such endpoint\n');
      return;
    }
    served[kind]++;
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    let closed = false;
    res.on('close', () => (closed = true));
    const pieces = hostilePieces(kind);
    const pump = (): void => {
      for (;;) {
        if (closed) return;
        const next = pieces.next();
        if (next.done === true) {
          res.end(() => (completed += 1));
          return;
        }
        if (!res.write(next.value)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (kind) => `http://127.0.0.1:${port}/${kind}/metrics`,
    served: (kind) => served[kind],
    get completed() {
      return completed;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The body in chunks: `digits` is one head line whose value runs 10 MB; `huge` is 16 MiB of samples. */
function* hostilePieces(kind: HostileBody): Generator<string> {
  const header = '# TYPE klaytn_blockchain_head_blocknumber gauge\n';
  if (kind === 'digits') {
    yield `${header}klaytn_blockchain_head_blocknumber 1`;
    const digits = '9'.repeat(CHUNK_BYTES);
    for (let sent = 0; sent < DIGITS_BYTES; sent += CHUNK_BYTES) yield digits;
    yield '\nklaytn_p2p_CNPeerCountGauge 4\n';
    return;
  }
  const line = 'klaytn_filler_total{a="aaaaaaaaaaaaaaaa",b="bbbbbbbbbbbbbbbb"} 12345678901234567890\n';
  const chunk = line.repeat(Math.floor(CHUNK_BYTES / line.length));
  yield header;
  for (let sent = 0; sent < HUGE_BYTES; sent += chunk.length) yield chunk;
  yield 'klaytn_blockchain_head_blocknumber 5000\nklaytn_p2p_CNPeerCountGauge 4\n';
}
