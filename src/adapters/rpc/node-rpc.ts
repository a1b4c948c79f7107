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
import type { Logger } from '../../ports/logger.js';
import type { NodeRpc } from '../../ports/node-rpc.js';
import { deadline } from './deadline.js';
import { createHttpClient, fetchHttpClient } from './http-client.js';
import { isMethodNotFound } from './json-rpc.js';
import { metricsHealth } from './metrics-health.js';
import { nodeFailure } from './node-failure.js';
import { ipcNodeAddress, ipcRecentBlocks, ipcUrl, type NodeIpcDeps } from './node-ipc.js';
import { rpcHeight, rpcNodeAddress, rpcPeers, rpcRecentBlocks, type NodeJsonRpc } from './node-json-rpc.js';

export interface NodeRpcDeps extends NodeIpcDeps {
  readonly logger: Logger;
  /** HTTP through this fetch instead of node:http (tests that must see no HTTP at all). */
  readonly fetch?: typeof fetch;
}

export function createNodeRpc(deps: NodeRpcDeps): NodeRpc {
  const http = deps.fetch ? fetchHttpClient(deps.fetch) : createHttpClient();
  const rpc: NodeJsonRpc = { http, preferred: new Map() };
  const log = deps.logger.child({ component: 'node-rpc' });

  return {
    health: async (node, options) => {
      const dl = deadline(options);
      const url = node.rpcUrl ?? node.metricsUrl;
      try {
        if (node.rpcUrl === undefined) return await metricsHealth(http, node, dl);
        const [height, peers] = await Promise.all([
          rpcHeight(rpc, node.rpcUrl, dl),
          rpcPeers(rpc, node.rpcUrl, dl),
        ]);
        return { height, ...peers, source: 'rpc' };
      } catch (error) {
        return nodeFailure(
          node,
          url,
          node.rpcUrl === undefined ? 'the metrics' : 'the block height',
          dl,
          error,
        );
      }
    },

    nodeAddress: async (node, options) => {
      const dl = deadline(options);
      if (node.rpcUrl !== undefined) {
        try {
          return await rpcNodeAddress(rpc, node.rpcUrl, dl);
        } catch (error) {
          if (!isMethodNotFound(error)) return nodeFailure(node, node.rpcUrl, 'the node address', dl, error);
          log.info({ node: node.name }, 'kaia_nodeAddress is not served over HTTP; asking over IPC');
        }
      }
      try {
        return await ipcNodeAddress(deps, node, dl);
      } catch (error) {
        return nodeFailure(node, ipcUrl(node), 'the node address', dl, error);
      }
    },

    recentBlocks: async (node, count, options) => {
      const dl = deadline(options);
      const n = Math.max(1, Math.floor(count));
      const upTo = options.upTo === undefined ? undefined : Math.max(0, Math.floor(options.upTo));
      if (node.rpcUrl !== undefined) {
        try {
          return await rpcRecentBlocks(rpc, node.rpcUrl, n, dl, upTo);
        } catch (error) {
          if (!isMethodNotFound(error)) return nodeFailure(node, node.rpcUrl, 'recent blocks', dl, error);
          log.info({ node: node.name }, 'consensus info is not served over HTTP; asking over IPC');
        }
      }
      try {
        return await ipcRecentBlocks(deps, node, n, dl, upTo);
      } catch (error) {
        return nodeFailure(node, ipcUrl(node), 'recent blocks', dl, error);
      }
    },
  };
}
