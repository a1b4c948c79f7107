/**
 * A stand-in for kcnd/kpnd in the test lab. It is started by the lab's `systemctl` shim (never imported):
 *
 *   node --import tsx test/lab/node-standin.ts <host root>
 *
 * It reads `<host root>/lab/host.json` (written by lab.ts) and behaves like the parts of a Kaia node that
 * cellops looks at:
 * - loads its nodekey at start as kcn does: `$DATA_DIR/nodekey` (legacy spot) wins over
 *   `$DATA_DIR/klay/nodekey`; a missing or malformed file makes it generate a fresh random key, save it
 *   at `$DATA_DIR/klay/nodekey` (0600, no newline) and log `WARN Generated nodekey`;
 * - serves Prometheus text on :61001/metrics and HTTP JSON-RPC on :8551 (ports from host.json);
 * - answers `kcn attach --exec` through a Unix socket at `$DATA_DIR/klay.ipc` (the lab's kcn shim);
 * - follows the lab's shared chain height (`<lab root>/chain.json`) unless a fault freezes it
 *   (`<host root>/lab/faults.json`: stalledAt, isolated).
 * It never prints its key.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { nodeAddressFromKey, nodeIdFromKey, nodekeyProblem } from '../../src/runbooks/nodekey.js';
import {
  chainHeight,
  readJson,
  type ChainState,
  type HostFaults,
  type HostSpec,
  writeJsonAtomic,
  type RunningRecord,
  type SigningRecord,
} from './lab-state.js';

const hostRoot = process.argv[2];
if (!hostRoot) {
  process.stderr.write('usage: node-standin.ts <host root>\n');
  process.exit(2);
}
const spec = readJson<HostSpec>(join(hostRoot, 'lab', 'host.json'));
if (!spec) {
  process.stderr.write(`no ${join(hostRoot, 'lab', 'host.json')}\n`);
  process.exit(2);
}

function log(level: string, message: string): void {
  process.stdout.write(`${level} [${new Date().toISOString()}] ${message}\n`);
}

/** EIP-55 mixed-case checksum, as kcnd reports addresses. */
function checksumAddress(address: string): string {
  const hex = address.slice(2).toLowerCase();
  const hash = bytesToHex(keccak_256(new TextEncoder().encode(hex)));
  let out = '0x';
  for (let i = 0; i < hex.length; i++) {
    const c = hex[i] ?? '';
    out += parseInt(hash[i] ?? '0', 16) >= 8 ? c.toUpperCase() : c;
  }
  return out;
}

/** kcn's NodeKey(): the legacy file if present, else klay/nodekey; anything unloadable → a new key. */
function loadNodekey(dataDir: string): string {
  const legacy = join(dataDir, 'nodekey');
  const instance = join(dataDir, 'klay', 'nodekey');
  const path = existsSync(legacy) ? legacy : instance;
  let content: string | undefined;
  try {
    content = readFileSync(path, 'utf8');
  } catch {
    content = undefined;
  }
  if (content !== undefined && nodekeyProblem(content) === undefined) {
    log('INFO', `Loaded nodekey file=${path}`);
    return content.replace(/\r?\n$/, '');
  }
  let key: string;
  do key = randomBytes(32).toString('hex');
  while (nodekeyProblem(key) !== undefined);
  mkdirSync(join(dataDir, 'klay'), { recursive: true });
  writeFileSync(instance, key, { mode: 0o600 });
  chmodSync(instance, 0o600);
  log('WARN', `Generated nodekey file=${instance}`);
  return key;
}

/** DATA_DIR as the init script gets it: the last assignment in the host's conf file, when it has one. */
function confDataDir(confFile: string | undefined): string | undefined {
  if (confFile === undefined || !existsSync(confFile)) return undefined;
  let value: string | undefined;
  for (const line of readFileSync(confFile, 'utf8').split('\n')) {
    const match = /^\s*(?:export\s+)?DATA_DIR=(.*)$/.exec(line);
    if (match) value = (match[1] ?? '').trim().replace(/^(['"])(.*)\1$/, '$2');
  }
  return value || undefined;
}

const dataDir = confDataDir(spec.confFile) ?? spec.dataDir;
const nodekey = loadNodekey(dataDir);
/** Lower-case, as JSON-RPC marshals addresses; admin.nodeInfo reports the checksummed form. */
const address = nodeAddressFromKey(nodekey);
const nodeId = nodeIdFromKey(nodekey);
const runningPath = join(spec.labRoot, 'running', `${spec.name}.json`);
const chainPath = join(spec.labRoot, 'chain.json');

function chain(): ChainState {
  const state = readJson<ChainState>(chainPath);
  if (!state) throw new Error(`no chain state at ${chainPath}`);
  return state;
}

function faultsOf(hostRootDir: string): HostFaults {
  return readJson<HostFaults>(join(hostRootDir, 'lab', 'faults.json')) ?? {};
}

function myHeight(state: ChainState): number {
  const height = chainHeight(state, Date.now());
  const faults = faultsOf(hostRoot!);
  return faults.stalledAt === undefined ? height : Math.min(height, faults.stalledAt);
}

function inCouncil(state: ChainState, candidate: string): boolean {
  return state.council.some((a) => a.toLowerCase() === candidate.toLowerCase());
}

function peers(state: ChainState): { cn: number; pn: number; en: number } {
  if (faultsOf(hostRoot!).isolated) return { cn: 0, pn: 0, en: 0 };
  if (spec!.role === 'pn') return { cn: state.externalCnPeers, pn: 1, en: 0 };
  // A CN admits a CN peer only if the peer's address is in the council: a standby with its own key
  // cannot join the CN mesh and syncs through the PNs.
  return { cn: inCouncil(state, address) ? state.externalCnPeers : 0, pn: 2, en: 0 };
}

/** A process that exists and is not a zombie (the lab's stand-ins may outlive a parent that reaps). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const signingDir = join(spec.labRoot, 'signing');
const signingPath = join(signingDir, `${spec.name}-${process.pid}.json`);
/** When this run started signing: once it serves (set in main). */
let signingFrom = Date.now();

/** When block `n` was made, on the chain's current timeline (1 block per blockMs since `at`). */
function blockTime(state: ChainState, n: number): number {
  return state.at + (n - state.height) * state.blockMs;
}

/**
 * Addresses that signed block `n`: council members whose stand-in ran while the block was agreed on — from
 * its making until the next block's, so a node that just started signs the newest block — according to
 * the signing records (a stopped node keeps its past signatures), not cut off, and not stalled before it.
 */
function signers(state: ChainState, n: number): string[] {
  const at = blockTime(state, n);
  const out: string[] = [];
  let files: string[];
  try {
    files = readdirSync(signingDir);
  } catch {
    files = [];
  }
  for (const file of files) {
    const record = readJson<SigningRecord>(join(signingDir, file));
    if (!record || !inCouncil(state, record.address)) continue;
    const end = record.to ?? (alive(record.pid) ? Date.now() : record.beat);
    if (at + state.blockMs <= record.from || at > end) continue;
    const faults = faultsOf(record.hostRoot);
    if (faults.isolated || (faults.stalledAt !== undefined && n > faults.stalledAt)) continue;
    if (!out.some((a) => a.toLowerCase() === record.address.toLowerCase())) out.push(record.address);
  }
  return out.sort();
}

function writeSigning(to?: number): void {
  const record: SigningRecord = {
    address,
    hostRoot: hostRoot!,
    pid: process.pid,
    from: signingFrom,
    beat: Date.now(),
    ...(to === undefined ? {} : { to }),
  };
  writeJsonAtomic(signingPath, record);
}

const hex = (n: number): string => `0x${n.toString(16)}`;
const blockHash = (n: number): string => `0x${bytesToHex(keccak_256(new TextEncoder().encode(`lab-${n}`)))}`;

function blockNumberParam(param: unknown, head: number): number | undefined {
  if (param === 'latest' || param === undefined) return head;
  if (typeof param === 'number') return param;
  if (typeof param === 'string' && /^0x[0-9a-f]+$/i.test(param)) return parseInt(param, 16);
  return undefined;
}

function block(n: number, withConsensus: boolean, state: ChainState): Record<string, unknown> {
  const committers = signers(state, n);
  const base: Record<string, unknown> = {
    number: hex(n),
    hash: blockHash(n),
    parentHash: blockHash(n - 1),
    timestamp: hex(1_700_000_000 + n),
    transactions: [],
  };
  if (!withConsensus) return base;
  const proposer = committers.length > 0 ? committers[n % committers.length] : undefined;
  return {
    ...base,
    committee: state.council,
    committers,
    proposer: proposer ?? '0x0000000000000000000000000000000000000000',
    originProposer: proposer ?? '0x0000000000000000000000000000000000000000',
    round: 0,
  };
}

class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function callRpc(method: string, params: readonly unknown[]): unknown {
  const state = chain();
  const head = myHeight(state);
  const p = peers(state);
  switch (method) {
    case 'kaia_blockNumber':
    case 'klay_blockNumber':
    case 'eth_blockNumber':
      return hex(head);
    case 'kaia_nodeAddress':
    case 'klay_nodeAddress':
    case 'governance_nodeAddress':
      return address;
    case 'kaia_syncing':
    case 'klay_syncing':
    case 'eth_syncing':
      return false;
    case 'net_peerCount':
      return hex(p.cn + p.pn + p.en);
    case 'net_peerCountByType': {
      const out: Record<string, number> = { total: p.cn + p.pn + p.en };
      if (p.cn > 0) out.cn = p.cn;
      if (p.pn > 0) out.pn = p.pn;
      if (p.en > 0) out.en = p.en;
      return out;
    }
    case 'kaia_getCouncil':
    case 'klay_getCouncil':
    case 'kaia_getCommittee':
    case 'klay_getCommittee':
      return state.council;
    case 'kaia_getBlockWithConsensusInfoByNumber':
    case 'klay_getBlockWithConsensusInfoByNumber':
    case 'kaia_getBlockByNumber':
    case 'klay_getBlockByNumber':
    case 'eth_getBlockByNumber': {
      const n = blockNumberParam(params[0], head);
      if (n === undefined) throw new RpcError(-32602, 'invalid argument 0: hex string without 0x prefix');
      if (n > head) return null;
      return block(n, method.includes('ConsensusInfo'), state);
    }
    default:
      throw new RpcError(-32601, `the method ${method} does not exist/is not available`);
  }
}

interface RpcRequest {
  readonly id?: unknown;
  readonly method?: unknown;
  readonly params?: unknown;
}

function answer(request: RpcRequest): Record<string, unknown> {
  const id = request.id ?? null;
  try {
    if (typeof request.method !== 'string') throw new RpcError(-32600, 'invalid request');
    const params = Array.isArray(request.params) ? (request.params as unknown[]) : [];
    return { jsonrpc: '2.0', id, result: callRpc(request.method, params) };
  } catch (error) {
    const code = error instanceof RpcError ? error.code : -32000;
    return { jsonrpc: '2.0', id, error: { code, message: (error as Error).message } };
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type });
  res.end(body);
}

const metricsServer = createHttpServer((req, res) => {
  if (req.url !== '/metrics') return send(res, 404, 'text/plain', '404 page not found\n');
  const state = chain();
  const p = peers(state);
  const lines = [
    ['klaytn_blockchain_head_blocknumber', myHeight(state)],
    ['klaytn_p2p_CNPeerCountGauge', p.cn],
    ['klaytn_p2p_PNPeerCountGauge', p.pn],
    ['klaytn_p2p_ENPeerCountGauge', p.en],
    ['klaytn_p2p_PeerCountGauge', p.cn + p.pn + p.en],
  ].flatMap(([name, value]) => [`# HELP ${name} ${name}`, `# TYPE ${name} gauge`, `${name} ${value}`]);
  send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', `${lines.join('\n')}\n`);
});

const rpcServer = createHttpServer((req, res) => {
  if (req.method !== 'POST') return send(res, 405, 'text/plain', 'method not allowed\n');
  readBody(req).then(
    (body) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        return send(
          res,
          200,
          'application/json',
          JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } }),
        );
      }
      const out = Array.isArray(parsed) ? (parsed as RpcRequest[]).map(answer) : answer(parsed as RpcRequest);
      send(res, 200, 'application/json', JSON.stringify(out));
    },
    () => send(res, 400, 'text/plain', 'bad request\n'),
  );
});

/** The console expressions the lab's kcn shim can evaluate. Output is JSON (see lab.ts, kcn shim). */
function evaluate(expression: string): unknown {
  const stringify = /^JSON\.stringify\((.*)\)$/s.exec(expression);
  if (stringify?.[1] !== undefined) return JSON.stringify(evaluate(stringify[1].trim()));
  const state = chain();
  const p = peers(state);
  const ip = spec!.address;
  switch (expression.replace(/;$/, '').trim()) {
    case 'admin.nodeInfo':
      return {
        id: nodeId,
        name: `${spec!.role === 'pn' ? 'Kpn' : 'Kcn'}/v2.2.1-lab/linux-amd64/go1.23.0`,
        kni: `kni://${nodeId}@${ip}:32323?discport=0&subport=32324&ntype=${spec!.role === 'pn' ? 'pn' : 'cn'}`,
        ip,
        ports: { discovery: 0, listener: 32323 },
        listenAddr: '[::]:32323',
        nodeAddress: checksumAddress(address),
        protocols: { istanbul: { network: state.networkId, blockNumber: myHeight(state) } },
      };
    case 'kaia.nodeAddress':
    case 'klay.nodeAddress':
    case 'governance.nodeAddress':
      return address;
    case 'kaia.blockNumber':
    case 'klay.blockNumber':
    case 'eth.blockNumber':
      return myHeight(state);
    case 'net.peerCount':
      return p.cn + p.pn + p.en;
    case 'admin.datadir':
      return dataDir;
    default:
      throw new Error(`ReferenceError: ${expression} is not supported by the lab's node stand-in`);
  }
}

const ipcPath = join(dataDir, 'klay.ipc');
const ipcServer = createNetServer((socket) => {
  let input = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    input += chunk;
    const newline = input.indexOf('\n');
    if (newline < 0) return;
    const expression = input.slice(0, newline).trim();
    let reply: { ok: boolean; output: string };
    try {
      reply = { ok: true, output: JSON.stringify(evaluate(expression), null, 2) };
    } catch (error) {
      reply = { ok: false, output: (error as Error).message };
    }
    socket.end(`${JSON.stringify(reply)}\n`);
  });
  socket.on('error', () => undefined);
});

function listen(server: ReturnType<typeof createHttpServer>, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, spec!.bind, () => resolve());
  });
}

async function main(): Promise<void> {
  rmSync(ipcPath, { force: true });
  await listen(metricsServer, spec!.metricsPort);
  await listen(rpcServer, spec!.rpcPort);
  await new Promise<void>((resolve, reject) => {
    ipcServer.once('error', reject);
    ipcServer.listen(ipcPath, () => resolve());
  });
  const record: RunningRecord = { pid: process.pid, address, hostRoot: hostRoot! };
  mkdirSync(join(spec!.labRoot, 'running'), { recursive: true });
  writeFileSync(runningPath, JSON.stringify(record));
  mkdirSync(signingDir, { recursive: true });
  signingFrom = Date.now();
  writeSigning();
  // The heartbeat is the end of this run's signatures if it dies without a word (SIGKILL).
  setInterval(() => writeSigning(), 100).unref();
  writeFileSync(join(hostRoot!, 'lab', 'ready'), String(process.pid));
  log('INFO', `Started ${spec!.service} stand-in nodeAddress=${address} datadir=${dataDir}`);
}

function shutdown(): void {
  log('INFO', 'Stopping on signal');
  if (existsSync(signingPath)) writeSigning(Date.now());
  rmSync(runningPath, { force: true });
  rmSync(join(hostRoot!, 'lab', 'ready'), { force: true });
  rmSync(ipcPath, { force: true });
  metricsServer.close();
  rpcServer.close();
  ipcServer.close();
  process.exit(0);
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
main().catch((error: unknown) => {
  log('ERROR', `could not start: ${(error as Error).message}`);
  process.exit(1);
});
