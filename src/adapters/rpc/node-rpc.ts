/**
 * The NodeRpc port over what a Kaia node offers:
 * - Prometheus metrics (`:61001/metrics`, on by default): head block and peer gauges;
 * - HTTP JSON-RPC where the operator enabled it (RPC_ENABLE=1): `kaia_` methods, falling back to the
 *   `klay_` names (older Klaytn nodes) and `eth_blockNumber`;
 * - IPC through `kcn attach --exec` over the Shell port, for what HTTP does not serve by default or at all.
 *
 * Each public call has one deadline (`timeoutMs`) shared by all the requests it makes, combined with the
 * caller's signal. HTTP goes through src/adapters/rpc/http-client.ts (node:http with keep-alive, not fetch:
 * the monitor probes every node every interval, and the per-request cost decides what a large cell costs). Failures are ExternalErrors that name the node and the URL (credentials stripped).
 * A caller's abort rejects with the caller's reason, untouched.
 */
import { CellopsError, ExternalError } from '../../errors.js';
import type { Logger } from '../../ports/logger.js';
import type {
  BlockConsensusInfo,
  NodeEndpoint,
  NodeHealth,
  NodeRpc,
  ProbeOptions,
} from '../../ports/node-rpc.js';
import type { Shell } from '../../ports/shell.js';
import { shTemplate } from '../../ports/shell-command.js';
import { consoleErrorLine, consoleNodeAddress, lastConsoleString } from './console-output.js';
import { createHttpClient, fetchHttpClient, HttpTimeoutError, type HttpClient } from './http-client.js';
import {
  BadRpcResponseError,
  httpTarget,
  isMethodNotFound,
  JsonRpcError,
  jsonRpcCall,
  toHexQuantity,
  toQuantity,
} from './json-rpc.js';
import { parsePrometheusText, scanMetricValues } from './prometheus-text.js';

export interface NodeRpcDeps {
  readonly shell: Shell;
  /** ssh.attachCommand from the configuration: `{binary}`, `{js}` and `{dataDir}` are filled in, quoted. */
  readonly attachCommand: string;
  readonly logger: Logger;
  /** HTTP through this fetch instead of node:http (tests that must see no HTTP at all). */
  readonly fetch?: typeof fetch;
}

/** The metric names kcnd/kpnd export (prefix `klaytn_` even on Kaia). */
export const KAIA_METRICS = {
  height: 'klaytn_blockchain_head_blocknumber',
  cnPeers: 'klaytn_p2p_CNPeerCountGauge',
  pnPeers: 'klaytn_p2p_PNPeerCountGauge',
  totalPeers: 'klaytn_p2p_PeerCountGauge',
} as const;

const HEALTH_METRICS = [
  KAIA_METRICS.height,
  KAIA_METRICS.cnPeers,
  KAIA_METRICS.pnPeers,
  KAIA_METRICS.totalPeers,
] as const;

const BLOCK_NUMBER_METHODS = ['kaia_blockNumber', 'klay_blockNumber', 'eth_blockNumber'] as const;
const NODE_ADDRESS_METHODS = ['kaia_nodeAddress', 'klay_nodeAddress'] as const;
const RANGE_METHODS = [
  'kaia_getBlockWithConsensusInfoByNumberRange',
  'klay_getBlockWithConsensusInfoByNumberRange',
] as const;
const BLOCK_METHODS = [
  'kaia_getBlockWithConsensusInfoByNumber',
  'klay_getBlockWithConsensusInfoByNumber',
] as const;
/** kcnd refuses ranges longer than this. */
const MAX_RANGE = 50;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** The URL without user:password, for messages and logs. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}

/** The low-level reason (ECONNREFUSED, ENOTFOUND…), with any credentials in an echoed URL removed. */
function networkCause(error: unknown): string {
  // node:http puts the code on the error itself; fetch wraps it in `cause`.
  const own = (error as { code?: unknown } | undefined)?.code;
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const text =
    typeof own === 'string'
      ? own
      : typeof cause?.code === 'string'
        ? cause.code
        : typeof cause?.message === 'string'
          ? cause.message
          : error instanceof Error
            ? error.message
            : String(error);
  return text.replace(/\/\/[^@/\s]*@/g, '//');
}

/**
 * One call's time limit. HTTP requests get the time left and the caller's signal (no AbortSignal is made
 * for them: a health probe of every node every interval should not cost two signals each); the shell, which
 * takes a signal, gets one made on first use.
 */
class Deadline {
  private readonly endsAt: number;
  private combined: AbortSignal | undefined;

  constructor(
    readonly timeoutMs: number,
    readonly caller: AbortSignal | undefined,
  ) {
    this.endsAt = performance.now() + timeoutMs;
  }

  remainingMs(): number {
    return Math.max(0, this.endsAt - performance.now());
  }

  expired(): boolean {
    return performance.now() >= this.endsAt || (this.combined?.aborted === true && !this.caller?.aborted);
  }

  /** Limits for one HTTP request: the time left and the caller's signal. */
  http(): { timeoutMs: number; signal?: AbortSignal } {
    return { timeoutMs: this.remainingMs(), ...(this.caller ? { signal: this.caller } : {}) };
  }

  signal(): AbortSignal {
    if (!this.combined) {
      const timeout = AbortSignal.timeout(Math.ceil(this.remainingMs()));
      this.combined = this.caller ? AbortSignal.any([timeout, this.caller]) : timeout;
    }
    return this.combined;
  }
}

function deadline(options: ProbeOptions): Deadline {
  return new Deadline(options.timeoutMs, options.signal);
}

function normalizeAddress(value: unknown): string | undefined {
  return typeof value === 'string' && ADDRESS.test(value) ? value.toLowerCase() : undefined;
}

function addressList(value: unknown): string[] {
  return Array.isArray(value) ? value.flatMap((v) => normalizeAddress(v) ?? []) : [];
}

function toBlockInfo(raw: unknown): BlockConsensusInfo | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const b = raw as Record<string, unknown>;
  const number = toQuantity(b.number);
  if (number === undefined) return undefined;
  const proposer = normalizeAddress(b.proposer);
  return {
    number,
    ...(proposer !== undefined ? { proposer } : {}),
    committers: addressList(b.committers),
    committee: addressList(b.committee),
  };
}

export function createNodeRpc(deps: NodeRpcDeps): NodeRpc {
  const http: HttpClient = deps.fetch ? fetchHttpClient(deps.fetch) : createHttpClient();
  const log = deps.logger.child({ component: 'node-rpc' });
  /** Per RPC URL, the first method name that worked, so a probe every few seconds does not retry dead names. */
  const preferred = new Map<string, string>();

  /** Translates any failure of `what` against `url` into an operator-facing error. */
  const fail = (node: NodeEndpoint, url: string, what: string, dl: Deadline, error: unknown): never => {
    if (dl.caller?.aborted) throw dl.caller.reason;
    if (error instanceof CellopsError) throw error;
    const where = `${node.name} at ${displayUrl(url)}`;
    if (error instanceof HttpTimeoutError || dl.expired())
      throw new ExternalError(
        'node_timeout',
        `${what} from ${where} got no answer within ${dl.timeoutMs} ms: the node may be overloaded or ` +
          `unreachable from the bot.`,
        { retryable: true, cause: error },
      );
    if (error instanceof JsonRpcError)
      throw new ExternalError(
        'node_rpc_error',
        `${where} answered ${error.method} with an error (${error.rpcCode ?? 'no code'}: ${error.message.slice(0, 200)})` +
          (isMethodNotFound(error)
            ? `: add the module to RPC_API in the node's conf, or remove rpc from its configuration.`
            : '.'),
        { retryable: true, cause: error },
      );
    if (error instanceof BadRpcResponseError)
      throw new ExternalError(
        'node_bad_response',
        `${what} from ${where} failed: ${error.message}; check that the URL points at the node itself.`,
        { retryable: true, cause: error },
      );
    throw new ExternalError(
      'node_unreachable',
      `${what} from ${where} failed (${networkCause(error)}): check that the node runs and that its port is ` +
        `reachable from the bot (firewall, security group).`,
      { retryable: true, cause: error },
    );
  };

  /** Calls the first of `methods` the node serves (remembering it); method-not-found moves to the next. */
  const callFirst = async (
    url: string,
    methods: readonly string[],
    params: readonly unknown[],
    dl: Deadline,
  ): Promise<{ method: string; result: unknown }> => {
    const key = `${url} ${methods[0] ?? ''}`;
    const known = preferred.get(key);
    const order = known !== undefined ? [known, ...methods.filter((m) => m !== known)] : methods;
    let lastError: unknown;
    for (const method of order) {
      try {
        const result = await jsonRpcCall(http, url, method, params, dl.http());
        if (known !== method) preferred.set(key, method);
        return { method, result };
      } catch (error) {
        if (!isMethodNotFound(error)) throw error;
        lastError = error;
      }
    }
    throw lastError;
  };

  const rpcHeight = async (url: string, dl: Deadline): Promise<number> => {
    const { method, result } = await callFirst(url, BLOCK_NUMBER_METHODS, [], dl);
    const height = toQuantity(result);
    if (height === undefined)
      throw new BadRpcResponseError(
        method,
        `${method} returned ${JSON.stringify(result)}, not a block number`,
      );
    return height;
  };

  const rpcPeers = async (
    url: string,
    dl: Deadline,
  ): Promise<Pick<NodeHealth, 'cnPeers' | 'pnPeers' | 'totalPeers'>> => {
    try {
      const result = await jsonRpcCall(http, url, 'net_peerCountByType', [], dl.http());
      if (typeof result === 'object' && result !== null) {
        const byType = result as Record<string, unknown>;
        // Only the types present appear besides total: a missing `cn` means no CN peers, not "unknown".
        const total = toQuantity(byType.total);
        return {
          cnPeers: toQuantity(byType.cn) ?? 0,
          pnPeers: toQuantity(byType.pn) ?? 0,
          ...(total !== undefined ? { totalPeers: total } : {}),
        };
      }
      return {};
    } catch (error) {
      if (!isMethodNotFound(error)) throw error;
    }
    try {
      const total = toQuantity(await jsonRpcCall(http, url, 'net_peerCount', [], dl.http()));
      return total !== undefined ? { totalPeers: total } : {};
    } catch (error) {
      if (!isMethodNotFound(error)) throw error;
      return {};
    }
  };

  const metricsHealth = async (node: NodeEndpoint, dl: Deadline): Promise<NodeHealth> => {
    const target = httpTarget(node.metricsUrl);
    const response = await http({
      method: 'GET',
      url: target.url,
      headers: { ...target.headers, accept: 'text/plain;version=0.0.4' },
      ...dl.http(),
    });
    const { text } = response;
    if (!response.ok)
      throw new BadRpcResponseError(
        'GET metrics',
        `HTTP ${response.status} ${response.statusText}`,
        response.status,
      );
    const values = scanMetricValues(text, HEALTH_METRICS);
    const height = values[KAIA_METRICS.height];
    if (height === undefined || !Number.isFinite(height) || height < 0)
      throw new ExternalError(
        'node_metrics_missing',
        `${node.name} at ${displayUrl(node.metricsUrl)} serves no usable ${KAIA_METRICS.height} ` +
          `(${parsePrometheusText(text).samples.length} samples read): check METRICS=1 and PROMETHEUS=1 in the node's conf and ` +
          `that the URL is its Prometheus port (default 61001).`,
        { retryable: true },
      );
    const gauge = (name: (typeof HEALTH_METRICS)[number]): number | undefined => {
      const v = values[name];
      return v !== undefined && Number.isFinite(v) ? v : undefined;
    };
    const cnPeers = gauge(KAIA_METRICS.cnPeers);
    const pnPeers = gauge(KAIA_METRICS.pnPeers);
    const totalPeers = gauge(KAIA_METRICS.totalPeers);
    return {
      height,
      ...(cnPeers !== undefined ? { cnPeers } : {}),
      ...(pnPeers !== undefined ? { pnPeers } : {}),
      ...(totalPeers !== undefined ? { totalPeers } : {}),
      source: 'metrics',
    };
  };

  /** Runs one console expression on the node over SSH and returns its stdout (exit status checked). */
  const ipc = async (node: NodeEndpoint, js: string, what: string, dl: Deadline): Promise<string> => {
    const command = shTemplate(deps.attachCommand, { binary: node.binary, js, dataDir: node.dataDir });
    const result = await deps.shell.exec(node.host, command, {
      timeoutMs: dl.timeoutMs,
      signal: dl.signal(),
    });
    if (result.exitCode !== 0)
      throw new ExternalError(
        'node_ipc_failed',
        `${node.binary} attach on ${node.name} (${node.host.address}) for ${what} exited with ${result.exitCode}: ` +
          `${consoleErrorLine(result.stdout, result.stderr)}. Check that the node is running and that ` +
          `${node.dataDir}/klay.ipc exists.`,
        { retryable: true },
      );
    return result.stdout;
  };

  const ipcNodeAddress = async (node: NodeEndpoint, dl: Deadline): Promise<string> => {
    const direct = await ipc(node, 'kaia.nodeAddress', 'the node address', dl);
    const address = consoleNodeAddress(direct);
    if (address !== undefined) return address;
    // Older consoles have no `kaia` object; admin.nodeInfo carries nodeAddress on every Kaia release.
    const info = await ipc(node, 'admin.nodeInfo', 'the node info', dl);
    const fromInfo = consoleNodeAddress(info);
    if (fromInfo !== undefined) return fromInfo;
    throw new ExternalError(
      'node_bad_response',
      `${node.binary} attach on ${node.name} (${node.host.address}) printed no node address for kaia.nodeAddress ` +
        `or admin.nodeInfo (${consoleErrorLine(direct, info)}).`,
      { retryable: true },
    );
  };

  const rpcRecentBlocks = async (url: string, count: number, dl: Deadline): Promise<BlockConsensusInfo[]> => {
    const head = await rpcHeight(url, dl);
    const from = Math.max(0, head - count + 1);
    const blocks: BlockConsensusInfo[] = [];
    let rangeWorks = true;
    for (let start = from; start <= head; start += MAX_RANGE) {
      const end = Math.min(head, start + MAX_RANGE - 1);
      if (rangeWorks) {
        try {
          const { result } = await callFirst(
            url,
            RANGE_METHODS,
            [toHexQuantity(start), toHexQuantity(end)],
            dl,
          );
          if (typeof result === 'object' && result !== null) {
            blocks.push(...Object.values(result).flatMap((raw) => toBlockInfo(raw) ?? []));
            continue;
          }
        } catch (error) {
          if (!isMethodNotFound(error)) throw error;
        }
        rangeWorks = false;
      }
      for (let n = start; n <= end; n++) {
        const { result } = await callFirst(url, BLOCK_METHODS, [toHexQuantity(n)], dl);
        const info = toBlockInfo(result);
        if (info) blocks.push(info);
      }
    }
    return blocks.sort((a, b) => a.number - b.number);
  };

  const ipcRecentBlocks = async (
    node: NodeEndpoint,
    count: number,
    dl: Deadline,
  ): Promise<BlockConsensusInfo[]> => {
    // One attach for all blocks: the console loops over ranges of at most 50 and prints one JSON string.
    const js =
      `(function(){var h=kaia.blockNumber,o=[];for(var s=Math.max(0,h-${count}+1);s<=h;s+=${MAX_RANGE}){` +
      `var r=kaia.getBlockWithConsensusInfoRange(s,Math.min(h,s+${MAX_RANGE - 1}));for(var k in r){var b=r[k];` +
      `o.push({number:b.number,proposer:b.proposer,committers:b.committers,committee:b.committee})}}` +
      `return JSON.stringify(o)})()`;
    const stdout = await ipc(node, js, 'recent blocks', dl);
    const printed = lastConsoleString(stdout);
    let parsed: unknown;
    try {
      parsed = printed === undefined ? undefined : JSON.parse(printed);
    } catch {
      parsed = undefined;
    }
    if (!Array.isArray(parsed))
      throw new ExternalError(
        'node_bad_response',
        `${node.binary} attach on ${node.name} (${node.host.address}) did not print the recent blocks ` +
          `(${consoleErrorLine(stdout, '')}).`,
        { retryable: true },
      );
    return parsed.flatMap((raw) => toBlockInfo(raw) ?? []).sort((a, b) => a.number - b.number);
  };

  return {
    health: async (node, options) => {
      const dl = deadline(options);
      const url = node.rpcUrl ?? node.metricsUrl;
      try {
        if (node.rpcUrl === undefined) return await metricsHealth(node, dl);
        const [height, peers] = await Promise.all([rpcHeight(node.rpcUrl, dl), rpcPeers(node.rpcUrl, dl)]);
        return { height, ...peers, source: 'rpc' };
      } catch (error) {
        return fail(node, url, node.rpcUrl === undefined ? 'the metrics' : 'the block height', dl, error);
      }
    },

    nodeAddress: async (node, options) => {
      const dl = deadline(options);
      if (node.rpcUrl !== undefined) {
        try {
          const { method, result } = await callFirst(node.rpcUrl, NODE_ADDRESS_METHODS, [], dl);
          const address = normalizeAddress(result);
          if (address === undefined)
            throw new BadRpcResponseError(
              method,
              `${method} returned ${JSON.stringify(result)}, not an address`,
            );
          return address;
        } catch (error) {
          if (!isMethodNotFound(error)) return fail(node, node.rpcUrl, 'the node address', dl, error);
          log.info({ node: node.name }, 'kaia_nodeAddress is not served over HTTP; asking over IPC');
        }
      }
      try {
        return await ipcNodeAddress(node, dl);
      } catch (error) {
        return fail(
          node,
          `ipc://${node.host.address}${node.dataDir}/klay.ipc`,
          'the node address',
          dl,
          error,
        );
      }
    },

    recentBlocks: async (node, count, options) => {
      const dl = deadline(options);
      const n = Math.max(1, Math.floor(count));
      if (node.rpcUrl !== undefined) {
        try {
          return await rpcRecentBlocks(node.rpcUrl, n, dl);
        } catch (error) {
          if (!isMethodNotFound(error)) return fail(node, node.rpcUrl, 'recent blocks', dl, error);
          log.info({ node: node.name }, 'consensus info is not served over HTTP; asking over IPC');
        }
      }
      try {
        return await ipcRecentBlocks(node, n, dl);
      } catch (error) {
        return fail(node, `ipc://${node.host.address}${node.dataDir}/klay.ipc`, 'recent blocks', dl, error);
      }
    },
  };
}
