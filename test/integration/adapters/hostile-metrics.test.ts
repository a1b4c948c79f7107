/**
 * A node that serves hostile metrics over real loopback HTTP: ten megabytes of digits as the head value,
 * with and without a Content-Length, and a value just under the body cap that used to send the value
 * pattern into quadratic backtracking. The probe must fail cleanly, naming the node, and the event loop
 * must stay free while it does (everything else the bot does, acking Slack first, shares that loop).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { createNodeRpc } from '../../../src/adapters/rpc/node-rpc.js';
import { DEFAULT_MAX_BODY_BYTES } from '../../../src/adapters/rpc/http-client.js';
import type { NodeEndpoint } from '../../../src/ports/node-rpc.js';
import { FakeShell } from '../../fakes/fake-shell.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';

const HEAD = 'klaytn_blockchain_head_blocknumber';
const TEN_MB = 10 * 1024 * 1024;
/** Far above any pause a healthy loop shows, far below what a backtracking parse of megabytes takes. */
const LOOP_DELAY_BOUND_MS = 1_000;

const servers: Server[] = [];

async function serve(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://ops:s3cret@127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** Writes `total` bytes of `9` after `prefix`, in 64 kB chunks, honouring back-pressure. */
function streamDigits(res: ServerResponse, prefix: string, total: number): void {
  const chunk = '9'.repeat(64 * 1024);
  let sent = 0;
  res.write(prefix);
  const pump = (): void => {
    while (sent < total && !res.destroyed) {
      sent += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    if (!res.destroyed) res.end('\n');
  };
  res.on('error', () => undefined); // the client hangs up part-way: that is the point
  pump();
}

function endpoint(metricsUrl: string): NodeEndpoint {
  return {
    name: 'cn1',
    host: { name: 'cn1', address: '127.0.0.1' },
    metricsUrl,
    dataDir: '/var/kcnd/data',
    binary: 'kcn',
  };
}

/** Runs `probe` and reports the longest event-loop delay seen meanwhile, in milliseconds. */
async function withLoopDelay(
  probe: () => Promise<unknown>,
): Promise<{ outcome: unknown; maxDelayMs: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  let outcome: unknown;
  try {
    await probe();
  } catch (error) {
    outcome = error;
  } finally {
    histogram.disable();
  }
  return { outcome, maxDelayMs: histogram.max / 1e6 };
}

describe('a node serving hostile metrics', () => {
  const rpc = createNodeRpc({
    shell: new FakeShell(),
    attachCommand: 'sudo -n {binary} attach --exec {js} {dataDir}/klay.ipc',
    logger: new RecordingLogger(),
  });

  it('a 10 MB run of digits streamed without a length is cut at the cap, naming the node but no password', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      streamDigits(res, `${HEAD} `, TEN_MB);
    });

    const { outcome, maxDelayMs } = await withLoopDelay(() =>
      rpc.health(endpoint(url), { timeoutMs: 30_000 }),
    );

    expect(outcome).toMatchObject({ code: 'node_bad_response', retryable: true });
    const message = (outcome as Error).message;
    expect(message).toContain(`larger than ${DEFAULT_MAX_BODY_BYTES} bytes`);
    expect(message).toContain(`cn1 at ${url.replace('ops:s3cret@', '')}`);
    expect(message).not.toContain('s3cret');
    expect(maxDelayMs).toBeLessThan(LOOP_DELAY_BOUND_MS);
  });

  it('a declared 10 MB body is refused before it is read', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, {
        'content-type': 'text/plain',
        'content-length': String(TEN_MB + HEAD.length + 2),
      });
      streamDigits(res, `${HEAD} `, TEN_MB);
    });

    const { outcome, maxDelayMs } = await withLoopDelay(() =>
      rpc.health(endpoint(url), { timeoutMs: 30_000 }),
    );

    expect(outcome).toMatchObject({ code: 'node_bad_response' });
    expect(maxDelayMs).toBeLessThan(LOOP_DELAY_BOUND_MS);
  });

  it('a value of almost a megabyte of digits ending in a stray character fails as a missing gauge, quickly', async () => {
    const value = `${'9'.repeat(DEFAULT_MAX_BODY_BYTES - HEAD.length - 10)}x`;
    const url = await serve((_req, res) => res.end(`${HEAD} ${value}\n`));

    const { outcome, maxDelayMs } = await withLoopDelay(() =>
      rpc.health(endpoint(url), { timeoutMs: 30_000 }),
    );

    expect(outcome).toMatchObject({ code: 'node_metrics_missing', retryable: true });
    expect((outcome as Error).message.length).toBeLessThan(1_000);
    expect(maxDelayMs).toBeLessThan(LOOP_DELAY_BOUND_MS);
  });
});
