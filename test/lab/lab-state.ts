/**
 * Files shared by the lab (test process) and its node stand-ins (separate processes, possibly in other
 * network namespaces, same filesystem). Small JSON files, written whole by rename so a reader never sees
 * half of one.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

/** `<lab root>/chain.json`: the shared chain every running node follows. */
export interface ChainState {
  /** Height at `at` (ms since the epoch). */
  readonly height: number;
  readonly at: number;
  /** One block per this many milliseconds while not stalled. */
  readonly blockMs: number;
  /** The whole chain stops (every node's height freezes). */
  readonly stalled: boolean;
  /** Validator addresses (0x…): a running node with one of these keys signs blocks and has CN peers. */
  readonly council: readonly string[];
  /** CN peers a council member reports (the other Core Cells' CNs, which the lab does not run). */
  readonly externalCnPeers: number;
  readonly networkId: number;
}

/** `<host root>/lab/faults.json`: faults of one node. */
export interface HostFaults {
  /** The node's height stays at this value (a stuck node) while the chain goes on. */
  readonly stalledAt?: number;
  /** The node has no peers (cut off from the network): CN peers 0, not signing. */
  readonly isolated?: boolean;
}

/** `<host root>/lab/host.json`: what the stand-in needs to know about its host. */
export interface HostSpec {
  readonly name: string;
  readonly role: 'cn' | 'standby' | 'pn';
  readonly service: 'kcnd' | 'kpnd';
  readonly dataDir: string;
  readonly labRoot: string;
  /** The host's own address, reported in admin.nodeInfo. */
  readonly address: string;
  /** Address the stand-in's HTTP servers bind (0.0.0.0 inside a namespace, the host's loopback else). */
  readonly bind: string;
  readonly metricsPort: number;
  readonly rpcPort: number;
  /** The service's conf file the stand-in reads DATA_DIR from, like the init script (hosts with own /etc). */
  readonly confFile?: string;
}

/** `<lab root>/running/<host>.json`: written by a running stand-in, removed when it stops. */
export interface RunningRecord {
  readonly pid: number;
  readonly address: string;
  readonly hostRoot: string;
}

/**
 * `<lab root>/signing/<host>-<pid>.json`: one run of a stand-in, kept after it stops, so that blocks keep
 * the committers they had (the switchover counts the blocks a CN missed). `beat` is refreshed while it
 * runs; `to` is written when it stops on a signal (a SIGKILL leaves the last beat as its end).
 */
export interface SigningRecord {
  readonly address: string;
  readonly hostRoot: string;
  readonly pid: number;
  /** ms since the epoch. */
  readonly from: number;
  readonly beat: number;
  readonly to?: number;
}

export function chainHeight(state: ChainState, now: number): number {
  if (state.stalled) return state.height;
  return state.height + Math.max(0, Math.floor((now - state.at) / state.blockMs));
}

export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value), { mode: 0o644 });
  renameSync(tmp, path);
}
