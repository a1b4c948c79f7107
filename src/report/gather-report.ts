/**
 * Gathers what a run's report needs (build-report.ts): the run record and its audit stream from the run
 * store, and the blocks of the outage window from a PN through the NodeRpc port. Reading the chain is
 * bounded (`maxBlocks`, read backwards in pages from the window's end) and may fail or be impossible
 * (no inventory at hand): the report then says why the missed blocks are unknown, and is still built.
 */
import type { CellopsConfig, NodeInventoryEntry } from '../config/config.js';
import type { Clock } from '../ports/clock.js';
import type { BlockConsensusInfo, NodeRpc } from '../ports/node-rpc.js';
import type { RunStore } from '../runbooks/engine/run-store.js';
import { describeError } from '../errors.js';
import {
  buildReport,
  outageWindow,
  type ChainReading,
  type OutageWindow,
  type RunReport,
} from './build-report.js';

/** About an hour of 1-second blocks: enough for an incident, few enough to read in seconds. */
export const DEFAULT_REPORT_MAX_BLOCKS = 3_600;
const DEFAULT_PAGE_BLOCKS = 300;
const DEFAULT_TIMEOUT_MS = 15_000;

export interface ReportSourceDeps {
  readonly store: Pick<RunStore, 'loadRun' | 'readAudit'>;
  readonly clock: Clock;
  /** Where the blocks come from: the inventory's PNs. Absent: the missed blocks are not counted. */
  readonly chain?: { readonly config: CellopsConfig; readonly rpc: NodeRpc };
  /** Why there is no chain, said in the report when `chain` is absent. */
  readonly noChainReason?: string;
  /** Most blocks read for one report. Default DEFAULT_REPORT_MAX_BLOCKS. */
  readonly maxBlocks?: number;
  /** Blocks per call. Default 300. */
  readonly pageBlocks?: number;
  /** Per call, ms. Default 15 s. */
  readonly timeoutMs?: number;
}

export interface ReportSource {
  /** The run's report; undefined when there is no such run. */
  report(runId: string): Promise<RunReport | undefined>;
}

/** PNs with HTTP JSON-RPC first (no SSH needed), then the others (IPC over SSH). */
function blockSources(config: CellopsConfig): NodeInventoryEntry[] {
  const pns = Object.values(config.nodes).filter((n) => n.role === 'pn');
  return [...pns.filter((n) => n.endpoint.rpcUrl), ...pns.filter((n) => !n.endpoint.rpcUrl)];
}

interface ReadOptions {
  readonly max: number;
  readonly page: number;
  readonly timeoutMs: number;
}

/** Reads backwards from the window's end until a block older than its start, the chain's start or `max`. */
async function readWindow(
  rpc: NodeRpc,
  source: NodeInventoryEntry,
  window: OutageWindow,
  options: ReadOptions,
): Promise<ChainReading> {
  const startSec = window.startAt / 1000;
  let blocks: BlockConsensusInfo[] = [];
  let upTo = window.endBlock;
  for (;;) {
    const want = Math.min(options.page, options.max - blocks.length);
    if (want <= 0) break;
    const page = await rpc.recentBlocks(source.endpoint, want, {
      timeoutMs: options.timeoutMs,
      ...(upTo === undefined ? {} : { upTo }),
    });
    const older = page.filter((b) => blocks.length === 0 || b.number < (blocks[0]?.number ?? Infinity));
    if (older.length === 0) break;
    blocks = [...older, ...blocks];
    const oldest = older[0];
    if (!oldest || oldest.number === 0 || oldest.timestamp === undefined || oldest.timestamp < startSec)
      break;
    upTo = oldest.number - 1;
  }
  const oldest = blocks[0];
  const reached =
    oldest === undefined ||
    oldest.number === 0 ||
    (oldest.timestamp !== undefined && oldest.timestamp < startSec);
  return { kind: 'read', source: source.name, blocks, truncated: !reached, limit: options.max };
}

async function readChain(deps: ReportSourceDeps, window: OutageWindow): Promise<ChainReading> {
  if (!deps.chain) return { kind: 'unavailable', reason: deps.noChainReason ?? 'no node inventory at hand' };
  if (window.address === undefined)
    return { kind: 'unavailable', reason: "the run did not learn the CN's node address" };
  const sources = blockSources(deps.chain.config);
  if (sources.length === 0)
    return { kind: 'unavailable', reason: 'the inventory has no PN to read blocks from' };
  const options: ReadOptions = {
    max: Math.max(1, deps.maxBlocks ?? DEFAULT_REPORT_MAX_BLOCKS),
    page: Math.max(1, deps.pageBlocks ?? DEFAULT_PAGE_BLOCKS),
    timeoutMs: deps.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  };
  const problems: string[] = [];
  for (const source of sources) {
    try {
      return await readWindow(deps.chain.rpc, source, window, options);
    } catch (error) {
      problems.push(`${source.name}: ${describeError(error)}`);
    }
  }
  return { kind: 'unavailable', reason: `no PN gave the blocks (${problems.join('; ')})` };
}

export function createReportSource(deps: ReportSourceDeps): ReportSource {
  return {
    async report(runId) {
      const run = await deps.store.loadRun(runId);
      if (run === undefined) return undefined;
      const audit = await deps.store.readAudit(runId);
      const chain = await readChain(deps, outageWindow(run));
      return buildReport({ run, audit, chain, now: deps.clock.now() });
    },
  };
}
