import type {
  BlockConsensusInfo,
  NodeEndpoint,
  BlockWindowOptions,
  NodeHealth,
  NodeRpc,
  ProbeOptions,
} from '../../src/ports/node-rpc.js';

/** What a fake node answers to a health probe. */
export type FakeNodeState =
  | { readonly kind: 'ok'; readonly height: number; readonly cnPeers?: number; readonly pnPeers?: number }
  | { readonly kind: 'error'; readonly message: string }
  /** Never answers until the probe's signal aborts (then rejects with the abort reason). */
  | { readonly kind: 'hang' };

/**
 * A NodeRpc whose nodes are set by the test, by endpoint name. Unknown nodes fail like an unreachable
 * host. `calls` records every health probe, `maxConcurrent` the most probes that ran at once.
 */
export class FakeNodeRpc implements NodeRpc {
  readonly nodes = new Map<string, FakeNodeState>();
  readonly addresses = new Map<string, string>();
  readonly blocks = new Map<string, readonly BlockConsensusInfo[]>();
  readonly calls: { readonly node: string; readonly timeoutMs: number }[] = [];
  running = 0;
  maxConcurrent = 0;
  /** Awaited inside every health probe when set: lets a test keep probes in flight for a moment. */
  gate: (() => Promise<void>) | undefined;

  /** Sets a healthy answer. */
  ok(name: string, height: number, extra: { cnPeers?: number; pnPeers?: number } = {}): this {
    this.nodes.set(name, { kind: 'ok', height, ...extra });
    return this;
  }

  fail(name: string, message = `connect ECONNREFUSED ${name}:61001`): this {
    this.nodes.set(name, { kind: 'error', message });
    return this;
  }

  hang(name: string): this {
    this.nodes.set(name, { kind: 'hang' });
    return this;
  }

  /** Moves a healthy node's height by `blocks`. */
  advance(name: string, blocks = 1): this {
    const state = this.nodes.get(name);
    if (state?.kind !== 'ok') throw new Error(`fake node ${name} is not answering; cannot advance it`);
    this.nodes.set(name, { ...state, height: state.height + blocks });
    return this;
  }

  heightOf(name: string): number {
    const state = this.nodes.get(name);
    if (state?.kind !== 'ok') throw new Error(`fake node ${name} is not answering`);
    return state.height;
  }

  async health(node: NodeEndpoint, options: ProbeOptions): Promise<NodeHealth> {
    this.calls.push({ node: node.name, timeoutMs: options.timeoutMs });
    this.running++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.running);
    try {
      await this.gate?.();
      const state = this.nodes.get(node.name);
      if (!state) throw new Error(`connect ECONNREFUSED ${node.host.address}:61001`);
      if (state.kind === 'error') throw new Error(state.message);
      if (state.kind === 'hang') {
        await new Promise<never>((_, reject) => {
          const signal = options.signal;
          if (!signal) return;
          if (signal.aborted) reject(signal.reason as Error);
          signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
        });
      }
      if (state.kind !== 'ok') throw new Error('unreachable');
      return {
        height: state.height,
        source: 'metrics',
        ...(state.cnPeers === undefined ? {} : { cnPeers: state.cnPeers }),
        ...(state.pnPeers === undefined ? {} : { pnPeers: state.pnPeers }),
      };
    } finally {
      this.running--;
    }
  }

  async nodeAddress(node: NodeEndpoint): Promise<string> {
    const address = this.addresses.get(node.name);
    if (!address) throw new Error(`no address for ${node.name}`);
    return address;
  }

  async recentBlocks(
    node: NodeEndpoint,
    count: number,
    options?: BlockWindowOptions,
  ): Promise<readonly BlockConsensusInfo[]> {
    const upTo = options?.upTo ?? Infinity;
    return (this.blocks.get(node.name) ?? []).filter((b) => b.number <= upTo).slice(-count);
  }
}
