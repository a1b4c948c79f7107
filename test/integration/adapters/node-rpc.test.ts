import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import ganache from 'ganache';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRpc } from '../../../src/adapters/rpc/node-rpc.js';
import type { NodeEndpoint } from '../../../src/ports/node-rpc.js';
import { FakeShell } from '../../fakes/fake-shell.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';

const ADDRESS = '0x5A0043070275d9f6054307Ee7348bD660849D90f';
const OTHER = '0x' + 'Cd'.repeat(20);
const ATTACH = 'sudo -n {binary} attach --exec {js} {dataDir}/klay.ipc';

type Handler = (
  method: string,
  params: unknown[],
) => { result?: unknown; error?: { code: number; message: string } };

/** A loopback HTTP server; `handle` answers each request body. */
async function serve(
  handle: (body: string, url: string) => { status?: number; body: string; type?: string },
) {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const out = handle(Buffer.concat(chunks).toString(), req.url ?? '/');
      res.writeHead(out.status ?? 200, { 'content-type': out.type ?? 'application/json' });
      res.end(out.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function close(server: Server | undefined): Promise<void> {
  if (!server) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function jsonRpcServer(handler: Handler, seen: string[]) {
  return serve((body) => {
    const request = JSON.parse(body) as { id: number; method: string; params: unknown[] };
    seen.push(request.method);
    const out = handler(request.method, request.params);
    return { body: JSON.stringify({ jsonrpc: '2.0', id: request.id, ...out }) };
  });
}

function endpoint(overrides: Partial<NodeEndpoint>): NodeEndpoint {
  return {
    name: 'cn1',
    host: { name: 'cn1', address: '127.0.0.1' },
    metricsUrl: 'http://127.0.0.1:9/metrics',
    dataDir: '/var/kcnd/data',
    binary: 'kcn',
    ...overrides,
  };
}

const notFound = (method: string) => ({
  error: { code: -32601, message: `the method ${method} does not exist/is not available` },
});

/** A stand-in kcnd with HTTP RPC: head 120, consensus info for every block. */
function kaiaHandler(options: { range: boolean }): Handler {
  return (method, params) => {
    const block = (n: number) => ({
      number: `0x${n.toString(16)}`,
      proposer: n % 2 === 0 ? ADDRESS : OTHER,
      committers: n === 120 ? [OTHER] : [ADDRESS, OTHER],
      committee: [ADDRESS, OTHER],
      round: 0,
      timestamp: `0x${(1_800_000_000 + n).toString(16)}`,
    });
    switch (method) {
      case 'kaia_blockNumber':
        return { result: '0x78' };
      case 'kaia_nodeAddress':
        return { result: ADDRESS };
      case 'net_peerCountByType':
        return { result: { total: 5, pn: 2, en: 3 } };
      case 'kaia_getBlockWithConsensusInfoByNumberRange': {
        if (!options.range) return notFound(method);
        const [start, end] = (params as string[]).map((p) => Number.parseInt(p, 16)) as [number, number];
        if (end - start > 50)
          return { error: { code: -32000, message: 'number of requested blocks should be smaller than 50' } };
        const out: Record<string, unknown> = {};
        for (let n = start; n <= end; n++) out[`0x${n.toString(16)}`] = block(n);
        return { result: out };
      }
      case 'kaia_getBlockWithConsensusInfoByNumber':
        return { result: block(Number.parseInt((params as string[])[0] ?? '0', 16)) };
      default:
        return notFound(method);
    }
  };
}

describe('NodeRpc against real HTTP endpoints on loopback', () => {
  const logger = new RecordingLogger();
  const shell = new FakeShell();
  const rpc = createNodeRpc({ shell, attachCommand: ATTACH, logger });
  let chain: ReturnType<typeof ganache.server> | undefined;
  let chainUrl = '';
  const servers: Server[] = [];

  beforeAll(async () => {
    const options = {
      logging: { quiet: true },
      miner: { blockTime: 1 },
      wallet: { totalAccounts: 1 },
      chain: { chainId: 1001 },
    };
    // ganache's published option types resolve to `undefined` under NodeNext resolution; the options are
    // its documented ones (quiet logs, a block every second).
    chain = ganache.server(options as never);
    await chain.listen(0, '127.0.0.1');
    const address = chain.address();
    chainUrl = `http://127.0.0.1:${address.port}`;
  });

  afterAll(async () => {
    await chain?.close();
    for (const server of servers) await close(server);
  });

  it('falls back to eth_blockNumber on a node without kaia_/klay_ methods (ganache), following the chain', async () => {
    const node = endpoint({ rpcUrl: chainUrl });
    const first = await rpc.health(node, { timeoutMs: 5000 });
    expect(first.source).toBe('rpc');
    // ganache has no net_peerCountByType: the total comes from net_peerCount, the types stay unknown.
    expect(first).toMatchObject({ totalPeers: 0 });
    expect(first.cnPeers).toBeUndefined();

    let later = first;
    for (let i = 0; i < 50 && later.height <= first.height; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      later = await rpc.health(node, { timeoutMs: 5000 });
    }
    expect(later.height).toBeGreaterThan(first.height);
  });

  it('uses kaia_ methods where the node has them, with peers by type (missing cn means none)', async () => {
    const seen: string[] = [];
    const { server, url } = await jsonRpcServer(kaiaHandler({ range: true }), seen);
    servers.push(server);
    const node = endpoint({ rpcUrl: url });

    await expect(rpc.health(node, { timeoutMs: 5000 })).resolves.toEqual({
      height: 120,
      cnPeers: 0,
      pnPeers: 2,
      totalPeers: 5,
      source: 'rpc',
    });
    await expect(rpc.nodeAddress(node, { timeoutMs: 5000 })).resolves.toBe(ADDRESS.toLowerCase());
    expect(seen).toContain('kaia_blockNumber');
    expect(seen).not.toContain('eth_blockNumber');
  });

  it('reads recent blocks with the range method, newest last, addresses lower-cased', async () => {
    const seen: string[] = [];
    const { server, url } = await jsonRpcServer(kaiaHandler({ range: true }), seen);
    servers.push(server);

    const blocks = await rpc.recentBlocks(endpoint({ rpcUrl: url }), 3, { timeoutMs: 5000 });

    expect(blocks.map((b) => b.number)).toEqual([118, 119, 120]);
    expect(blocks[2]).toEqual({
      number: 120,
      proposer: ADDRESS.toLowerCase(),
      committers: [OTHER.toLowerCase()],
      committee: [ADDRESS.toLowerCase(), OTHER.toLowerCase()],
      timestamp: 1_800_000_120,
    });
    expect(seen.filter((m) => m.includes('Range'))).toHaveLength(1);
  });

  it('reads the blocks ending at a given block when the head is past it, ranged or one by one', async () => {
    const ranged = await jsonRpcServer(kaiaHandler({ range: true }), []);
    const single = await jsonRpcServer(kaiaHandler({ range: false }), []);
    servers.push(ranged.server, single.server);
    for (const url of [ranged.url, single.url]) {
      const window = await rpc.recentBlocks(endpoint({ rpcUrl: url }), 3, { timeoutMs: 5000, upTo: 60 });
      expect(window.map((b) => [b.number, b.timestamp])).toEqual([
        [58, 1_800_000_058],
        [59, 1_800_000_059],
        [60, 1_800_000_060],
      ]);
    }
    const past = await rpc.recentBlocks(endpoint({ rpcUrl: ranged.url }), 2, { timeoutMs: 5000, upTo: 500 });
    expect(past.map((b) => b.number)).toEqual([119, 120]);
  });

  it('asks for long histories in ranges kcnd accepts, and block by block where ranges are missing', async () => {
    const rangeSeen: string[] = [];
    const ranged = await jsonRpcServer(kaiaHandler({ range: true }), rangeSeen);
    const singleSeen: string[] = [];
    const single = await jsonRpcServer(kaiaHandler({ range: false }), singleSeen);
    servers.push(ranged.server, single.server);

    const many = await rpc.recentBlocks(endpoint({ rpcUrl: ranged.url }), 120, { timeoutMs: 5000 });
    expect(many.map((b) => b.number)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    expect(rangeSeen.filter((m) => m === 'kaia_getBlockWithConsensusInfoByNumberRange')).toHaveLength(3);

    const few = await rpc.recentBlocks(endpoint({ rpcUrl: single.url }), 4, { timeoutMs: 5000 });
    expect(few.map((b) => b.number)).toEqual([117, 118, 119, 120]);
    expect(singleSeen.filter((m) => m === 'kaia_getBlockWithConsensusInfoByNumber')).toHaveLength(4);
  });

  it('probes the Prometheus endpoint when the node has no RPC configured', async () => {
    const { server, url } = await serve(() => ({
      type: 'text/plain; version=0.0.4',
      body:
        '# TYPE klaytn_blockchain_head_blocknumber gauge\nklaytn_blockchain_head_blocknumber 4242\n' +
        'klaytn_p2p_CNPeerCountGauge 6\nklaytn_p2p_PNPeerCountGauge 2\nklaytn_p2p_PeerCountGauge 8\n',
    }));
    servers.push(server);

    await expect(
      rpc.health(endpoint({ metricsUrl: `${url}/metrics` }), { timeoutMs: 5000 }),
    ).resolves.toEqual({
      height: 4242,
      cnPeers: 6,
      pnPeers: 2,
      totalPeers: 8,
      source: 'metrics',
    });
  });

  it('names the node and the metrics URL when the head gauge is missing', async () => {
    const { server, url } = await serve(() => ({ type: 'text/plain', body: 'go_goroutines 12\n' }));
    servers.push(server);

    await expect(
      rpc.health(endpoint({ name: 'pn1', metricsUrl: `${url}/metrics` }), { timeoutMs: 5000 }),
    ).rejects.toMatchObject({
      code: 'node_metrics_missing',
      retryable: true,
      message: expect.stringContaining(`pn1 at ${url}/metrics`) as string,
    });
  });

  it('reports an unreachable node as retryable, naming it and the URL without credentials', async () => {
    const { server, url } = await serve(() => ({ body: '' }));
    await close(server); // nothing listens on this port any more
    const withUser = url.replace('http://', 'http://ops:hunter2@');

    const error = await rpc
      .health(endpoint({ name: 'cn2', rpcUrl: withUser }), { timeoutMs: 5000 })
      .catch((e: unknown) => e);

    expect(error).toMatchObject({ code: 'node_unreachable', retryable: true });
    expect((error as Error).message).toContain(`cn2 at ${url}/`);
    expect((error as Error).message).toContain('ECONNREFUSED');
    expect((error as Error).message).not.toContain('hunter2');
  });

  it('sends credentials written in the URL as Basic authorization, never in the URL itself', async () => {
    const seen: Array<{ url: string; authorization: string | undefined }> = [];
    const server = createServer((req, res) => {
      seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('klaytn_blockchain_head_blocknumber 7\n');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    const port = (server.address() as AddressInfo).port;

    const health = await rpc.health(endpoint({ metricsUrl: `http://ops:s3cret@127.0.0.1:${port}/metrics` }), {
      timeoutMs: 5000,
    });

    expect(health.height).toBe(7);
    expect(seen).toEqual([
      { url: '/metrics', authorization: `Basic ${Buffer.from('ops:s3cret').toString('base64')}` },
    ]);
  });

  it('times out a node that accepts the connection but never answers', async () => {
    const hanging = createServer(() => undefined);
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    servers.push(hanging);
    const url = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;

    await expect(rpc.health(endpoint({ rpcUrl: url }), { timeoutMs: 300 })).rejects.toMatchObject({
      code: 'node_timeout',
      retryable: true,
      message: expect.stringContaining('within 300 ms') as string,
    });
  });

  it('asks over IPC when the HTTP endpoint does not serve kaia_nodeAddress', async () => {
    const ipcShell = new FakeShell().on('kaia.nodeAddress', { stdout: `"${ADDRESS}"\n` });
    const viaIpc = createNodeRpc({ shell: ipcShell, attachCommand: ATTACH, logger });

    await expect(viaIpc.nodeAddress(endpoint({ rpcUrl: chainUrl }), { timeoutMs: 5000 })).resolves.toBe(
      ADDRESS.toLowerCase(),
    );
    expect(ipcShell.commands()).toHaveLength(1);
  });
});
