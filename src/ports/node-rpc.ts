/**
 * Asking a node about itself. Real adapter: src/adapters/rpc (Prometheus metrics, HTTP JSON-RPC, and IPC
 * through `kcn attach --exec` over the Shell port); fakes in test/fakes.
 */
import type { HostRef } from './shell.js';

/** How to reach one node, resolved from the inventory. */
export interface NodeEndpoint {
  /** Inventory name, e.g. `cn1`. */
  readonly name: string;
  readonly host: HostRef;
  /** Prometheus endpoint, default `http://<host>:61001/metrics`. */
  readonly metricsUrl: string;
  /** HTTP JSON-RPC endpoint when the node has it enabled (off by default on kcnd). */
  readonly rpcUrl?: string;
  readonly dataDir: string;
  /** `kcn` for CNs and standbys, `kpn` for PNs: the binary for `attach`. */
  readonly binary: 'kcn' | 'kpn';
}

export interface ProbeOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

export interface NodeHealth {
  readonly height: number;
  /** Peers that are CNs; undefined when the source does not report it. */
  readonly cnPeers?: number;
  readonly pnPeers?: number;
  readonly totalPeers?: number;
  readonly source: 'metrics' | 'rpc';
}

export interface BlockConsensusInfo {
  readonly number: number;
  readonly proposer?: string;
  /** Addresses (lower-case 0x…) whose committed seals are in the block. */
  readonly committers: readonly string[];
  readonly committee: readonly string[];
  /** Block time in epoch seconds, when the source gives it (kaia's blocks do). */
  readonly timestamp?: number;
}

/** Where a window of blocks ends: at the head (default), or at block `upTo` when the head is past it. */
export interface BlockWindowOptions extends ProbeOptions {
  readonly upTo?: number;
}

export interface NodeRpc {
  /** Height and peer counts: JSON-RPC where the endpoint has `rpcUrl`, Prometheus metrics otherwise. */
  health(node: NodeEndpoint, options: ProbeOptions): Promise<NodeHealth>;
  /** The address derived from the nodekey the running node loaded (kaia_nodeAddress, or IPC over SSH). */
  nodeAddress(node: NodeEndpoint, options: ProbeOptions): Promise<string>;
  /** Consensus info of recent blocks, newest last: `count` blocks ending at the head (or at `upTo`). */
  recentBlocks(
    node: NodeEndpoint,
    count: number,
    options: BlockWindowOptions,
  ): Promise<readonly BlockConsensusInfo[]>;
}
