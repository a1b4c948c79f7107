/**
 * The NodeRpc port over the simulated hosts: a node answers only while it is reachable, powered and its
 * daemon runs; its peers are the other running daemons (a CN admits CN peers only when it is in the
 * council, an isolated one none), and recent blocks are committed by the external validators plus every
 * CN that signs: in the council, with its registered BLS key, not isolated, started before the block.
 */
import { ExternalError } from '../errors.js';
import type {
  BlockConsensusInfo,
  NodeEndpoint,
  NodeHealth,
  NodeRpc,
  ProbeOptions,
} from '../ports/node-rpc.js';
import type { SimHostRec } from './sim-host.js';

export interface SimNodeRpcDeps {
  /** The host a probe reaches (by address, else by name). */
  hostOf(ref: { name: string; address?: string }): SimHostRec;
  /** Every host, the launched ones included. */
  hosts(): readonly SimHostRec[];
  /** Addresses of the council. */
  readonly council: readonly string[];
  /** Validators outside the simulated hosts, always signing. */
  readonly externals: readonly string[];
  /** Council address → its registered BLS key. */
  readonly registeredBls: ReadonlyMap<string, string>;
}

export function createSimNodeRpc(deps: SimNodeRpcDeps): NodeRpc {
  const { council, externals } = deps;

  const answering = (endpoint: NodeEndpoint, probe: ProbeOptions): SimHostRec => {
    if (probe.signal?.aborted) throw probe.signal.reason;
    const host = deps.hostOf({ name: endpoint.name, address: endpoint.host.address });
    if (!host.reachable || !host.powered || !host.daemon)
      throw new ExternalError(
        'rpc_unreachable',
        `${host.name} does not answer at ${endpoint.rpcUrl ?? endpoint.metricsUrl}: connection refused (simulated)`,
        { retryable: true },
      );
    return host;
  };

  const signs = (host: SimHostRec): boolean =>
    host.kind === 'cn' &&
    host.daemon !== undefined &&
    !host.isolated &&
    council.includes(host.daemon.address) &&
    deps.registeredBls.get(host.daemon.address) === host.daemon.bls;

  return {
    async health(endpoint, probe): Promise<NodeHealth> {
      const host = answering(endpoint, probe);
      const running = deps.hosts().filter((h) => h !== host && h.daemon);
      const pnPeers = running.filter((h) => h.kind === 'pn').length;
      let cnPeers: number;
      if (host.isolated) cnPeers = 0;
      else if (host.kind === 'pn') cnPeers = running.filter((h) => h.kind === 'cn').length;
      // A CN admits CN peers only when its own address is in the council.
      else if (host.daemon && council.includes(host.daemon.address))
        cnPeers =
          externals.length +
          running.filter(
            (h) => h.kind === 'cn' && h.daemon && !h.isolated && council.includes(h.daemon.address),
          ).length;
      else cnPeers = 0;
      return {
        height: host.height(),
        cnPeers,
        pnPeers,
        totalPeers: cnPeers + pnPeers,
        source: endpoint.rpcUrl ? 'rpc' : 'metrics',
      };
    },
    async nodeAddress(endpoint, probe) {
      const host = answering(endpoint, probe);
      if (!host.daemon) throw new ExternalError('rpc_unreachable', `${host.name} is not running`);
      return host.daemon.address;
    },
    async recentBlocks(endpoint, count, probe): Promise<readonly BlockConsensusInfo[]> {
      const host = answering(endpoint, probe);
      if (!endpoint.rpcUrl)
        throw new ExternalError('rpc_unavailable', `${host.name} has no JSON-RPC endpoint configured`);
      const head = Math.min(host.height(), probe.upTo ?? Infinity);
      const signers = deps.hosts().filter(signs);
      const blocks: BlockConsensusInfo[] = [];
      for (let n = Math.max(0, head - count + 1); n <= head; n++) {
        const committers = [
          ...externals,
          ...signers
            .filter((h) => h.height() >= n && (h.daemon?.since ?? Infinity) < n)
            .map((h) => h.daemon?.address ?? ''),
        ];
        blocks.push({
          number: n,
          proposer: committers[n % committers.length],
          committers,
          committee: [...council],
        });
      }
      return blocks;
    },
  };
}
