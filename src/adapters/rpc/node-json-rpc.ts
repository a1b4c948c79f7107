/**
 * What NodeRpc asks over HTTP JSON-RPC where the operator enabled it (RPC_ENABLE=1): `kaia_` methods,
 * falling back to the `klay_` names (older Klaytn nodes) and `eth_blockNumber`. Per RPC URL, the first
 * method name that worked is remembered, so a probe every few seconds does not retry dead names.
 */
import type { BlockConsensusInfo, NodeHealth } from '../../ports/node-rpc.js';
import { MAX_RANGE, normalizeAddress, toBlockInfo } from './block-info.js';
import type { Deadline } from './deadline.js';
import type { HttpClient } from './http-client.js';
import { BadRpcResponseError, isMethodNotFound, jsonRpcCall, toHexQuantity, toQuantity } from './json-rpc.js';

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

/** The HTTP client and, by URL and first method name, the name that worked; one per NodeRpc. */
export interface NodeJsonRpc {
  readonly http: HttpClient;
  readonly preferred: Map<string, string>;
}

/** Calls the first of `methods` the node serves (remembering it); method-not-found moves to the next. */
async function callFirst(
  rpc: NodeJsonRpc,
  url: string,
  methods: readonly string[],
  params: readonly unknown[],
  dl: Deadline,
): Promise<{ method: string; result: unknown }> {
  const key = `${url} ${methods[0] ?? ''}`;
  const known = rpc.preferred.get(key);
  const order = known !== undefined ? [known, ...methods.filter((m) => m !== known)] : methods;
  let lastError: unknown;
  for (const method of order) {
    try {
      const result = await jsonRpcCall(rpc.http, url, method, params, dl.http());
      if (known !== method) rpc.preferred.set(key, method);
      return { method, result };
    } catch (error) {
      if (!isMethodNotFound(error)) throw error;
      lastError = error;
    }
  }
  throw lastError;
}

export async function rpcHeight(rpc: NodeJsonRpc, url: string, dl: Deadline): Promise<number> {
  const { method, result } = await callFirst(rpc, url, BLOCK_NUMBER_METHODS, [], dl);
  const height = toQuantity(result);
  if (height === undefined)
    throw new BadRpcResponseError(method, `${method} returned ${JSON.stringify(result)}, not a block number`);
  return height;
}

export async function rpcPeers(
  rpc: NodeJsonRpc,
  url: string,
  dl: Deadline,
): Promise<Pick<NodeHealth, 'cnPeers' | 'pnPeers' | 'totalPeers'>> {
  try {
    const result = await jsonRpcCall(rpc.http, url, 'net_peerCountByType', [], dl.http());
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
    const total = toQuantity(await jsonRpcCall(rpc.http, url, 'net_peerCount', [], dl.http()));
    return total !== undefined ? { totalPeers: total } : {};
  } catch (error) {
    if (!isMethodNotFound(error)) throw error;
    return {};
  }
}

export async function rpcNodeAddress(rpc: NodeJsonRpc, url: string, dl: Deadline): Promise<string> {
  const { method, result } = await callFirst(rpc, url, NODE_ADDRESS_METHODS, [], dl);
  const address = normalizeAddress(result);
  if (address === undefined)
    throw new BadRpcResponseError(method, `${method} returned ${JSON.stringify(result)}, not an address`);
  return address;
}

/**
 * The last `count` blocks up to the head (or `upTo` when the head is past it), by ranges of at most
 * MAX_RANGE, block by block where ranges are not served.
 */
export async function rpcRecentBlocks(
  rpc: NodeJsonRpc,
  url: string,
  count: number,
  dl: Deadline,
  upTo?: number,
): Promise<BlockConsensusInfo[]> {
  const chainHead = await rpcHeight(rpc, url, dl);
  const head = upTo === undefined ? chainHead : Math.min(chainHead, upTo);
  const from = Math.max(0, head - count + 1);
  const blocks: BlockConsensusInfo[] = [];
  let rangeWorks = true;
  for (let start = from; start <= head; start += MAX_RANGE) {
    const end = Math.min(head, start + MAX_RANGE - 1);
    if (rangeWorks) {
      try {
        const { result } = await callFirst(
          rpc,
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
      const { result } = await callFirst(rpc, url, BLOCK_METHODS, [toHexQuantity(n)], dl);
      const info = toBlockInfo(result);
      if (info) blocks.push(info);
    }
  }
  return blocks.sort((a, b) => a.number - b.number);
}
