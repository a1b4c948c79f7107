/**
 * What NodeRpc asks over IPC, through `kcn attach --exec` over the Shell port: what HTTP does not serve by
 * default (kcnd has no HTTP JSON-RPC unless enabled) or at all.
 */
import { ExternalError } from '../../errors.js';
import type { BlockConsensusInfo, NodeEndpoint } from '../../ports/node-rpc.js';
import type { Shell } from '../../ports/shell.js';
import { shTemplate } from '../../ports/shell-command.js';
import { MAX_RANGE, toBlockInfo } from './block-info.js';
import { consoleErrorLine, consoleNodeAddress, lastConsoleString } from './console-output.js';
import type { Deadline } from './deadline.js';

export interface NodeIpcDeps {
  readonly shell: Shell;
  /** ssh.attachCommand from the configuration: `{binary}`, `{js}` and `{dataDir}` are filled in, quoted. */
  readonly attachCommand: string;
}

/** Where IPC calls go, for error messages. */
export function ipcUrl(node: NodeEndpoint): string {
  return `ipc://${node.host.address}${node.dataDir}/klay.ipc`;
}

/** Runs one console expression on the node over SSH and returns its stdout (exit status checked). */
async function ipc(
  deps: NodeIpcDeps,
  node: NodeEndpoint,
  js: string,
  what: string,
  dl: Deadline,
): Promise<string> {
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
}

export async function ipcNodeAddress(deps: NodeIpcDeps, node: NodeEndpoint, dl: Deadline): Promise<string> {
  const direct = await ipc(deps, node, 'kaia.nodeAddress', 'the node address', dl);
  const address = consoleNodeAddress(direct);
  if (address !== undefined) return address;
  // Older consoles have no `kaia` object; admin.nodeInfo carries nodeAddress on every Kaia release.
  const info = await ipc(deps, node, 'admin.nodeInfo', 'the node info', dl);
  const fromInfo = consoleNodeAddress(info);
  if (fromInfo !== undefined) return fromInfo;
  throw new ExternalError(
    'node_bad_response',
    `${node.binary} attach on ${node.name} (${node.host.address}) printed no node address for kaia.nodeAddress ` +
      `or admin.nodeInfo (${consoleErrorLine(direct, info)}).`,
    { retryable: true },
  );
}

export async function ipcRecentBlocks(
  deps: NodeIpcDeps,
  node: NodeEndpoint,
  count: number,
  dl: Deadline,
  upTo?: number,
): Promise<BlockConsensusInfo[]> {
  // One attach for all blocks: the console loops over ranges of at most 50 and prints one JSON string.
  const head = upTo === undefined ? 'kaia.blockNumber' : `Math.min(kaia.blockNumber,${upTo})`;
  const js =
    `(function(){var h=${head},o=[];for(var s=Math.max(0,h-${count}+1);s<=h;s+=${MAX_RANGE}){` +
    `var r=kaia.getBlockWithConsensusInfoRange(s,Math.min(h,s+${MAX_RANGE - 1}));for(var k in r){var b=r[k];` +
    `o.push({number:b.number,proposer:b.proposer,committers:b.committers,committee:b.committee,timestamp:b.timestamp})}}` +
    `return JSON.stringify(o)})()`;
  const stdout = await ipc(deps, node, js, 'recent blocks', dl);
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
}
