/**
 * static-nodes.json for a standby being rebuilt (rebuild-standby.ts): a standby with its own key is
 * nobody's CN peer, so it syncs only through the PNs it dials (Kaia HA guide). The file kcnd reads is kept
 * when it lists every PN; otherwise the missing PNs' kni URLs are read from the PNs themselves and added.
 */
import type { RebuildContext, RebuildTarget } from './rebuild-target.js';
import type { RebuildOps } from './rebuild-ops.js';
import { kniAt } from './rebuild-ops.js';
import { proxyNodes } from './cell-nodes.js';
import { staticNodesPaths } from './check-conditions.js';
import { freeAsidePath } from './key-files.js';
import type { NodeOps } from './node-ops.js';
import { SafetyGateError, describeError } from '../errors.js';

const FACTS = {
  path: 'staticNodesPath',
  aside: 'staticNodesAside',
  created: 'staticNodesCreated',
} as const;

function urlsOf(content: string): string[] | undefined {
  try {
    const parsed: unknown = JSON.parse(content);
    return Array.isArray(parsed) && parsed.every((e) => typeof e === 'string') ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** The file kcnd reads (the one directly in DATA_DIR wins) and what it lists; the first location when none. */
async function currentFile(
  ops: NodeOps,
  t: RebuildTarget,
): Promise<{ path: string; exists: boolean; urls: string[] | undefined }> {
  const paths = staticNodesPaths(t.host.dataDir);
  for (const path of paths) {
    const content = await ops.readFile(t.host.host, path);
    if (content !== undefined) return { path, exists: true, urls: urlsOf(content) };
  }
  return { path: paths[0] ?? `${t.host.dataDir}/static-nodes.json`, exists: false, urls: [] };
}

export async function writeStaticNodes(
  ctx: RebuildContext,
  ops: NodeOps,
  rebuild: RebuildOps,
  t: RebuildTarget,
): Promise<void> {
  const file = await currentFile(ops, t);
  const listed = file.urls ?? [];
  if (file.urls === undefined)
    ctx.output(`${t.host.name}:${file.path} is not a JSON list of URLs; it is replaced`);
  const missing = proxyNodes(ctx.config).filter(
    (pn) => !listed.some((url) => url.includes(`@${pn.host.address}:`)),
  );
  if (missing.length === 0) {
    ctx.setFact(FACTS.path, file.path);
    ctx.output(`${t.host.name}:${file.path} already lists every PN; kept`);
    return;
  }
  const added: string[] = [];
  for (const pn of missing) {
    try {
      added.push(kniAt(await rebuild.kni(pn), pn.host.address));
    } catch (error) {
      if (ctx.signal.aborted) throw error;
      ctx.output(`could not read ${pn.name}'s kni URL (${describeError(error)}): it is not listed`);
    }
  }
  if (added.length === 0 && listed.length === 0)
    throw new SafetyGateError(
      `No PN's kni URL could be read and ${t.host.name} lists none: as a standby it would have no peer to sync from. Check the PNs, or write ${file.path} on ${t.host.name} by hand, and resume.`,
    );
  if (file.exists) {
    const aside = await freeAsidePath(ops, t.host.host, file.path, ctx.runId);
    await ops.move(t.host.host, file.path, aside);
    ctx.setFact(FACTS.aside, aside);
  } else ctx.setFact(FACTS.created, true);
  await ops.writeFile(t.host.host, file.path, `${JSON.stringify([...listed, ...added], null, 2)}\n`);
  ctx.setFact(FACTS.path, file.path);
  ctx.output(
    `wrote ${t.host.name}:${file.path} with ${added.length} more PN${added.length === 1 ? '' : 's'} (${missing.map((pn) => pn.name).join(', ')})`,
  );
}

export async function staticNodesWritten(
  ctx: RebuildContext,
  ops: NodeOps,
  t: RebuildTarget,
): Promise<boolean> {
  const path = ctx.fact<string>(FACTS.path);
  return path !== undefined && (await ops.exists(t.host.host, path));
}

export async function restoreStaticNodes(ctx: RebuildContext, ops: NodeOps, t: RebuildTarget): Promise<void> {
  const path = ctx.fact<string>(FACTS.path);
  const aside = ctx.fact<string>(FACTS.aside);
  if (path === undefined) return;
  if (aside !== undefined && (await ops.exists(t.host.host, aside))) {
    await ops.move(t.host.host, aside, path);
    ctx.output(`put the former ${path} back on ${t.host.name}`);
  } else if (ctx.fact<boolean>(FACTS.created) === true && (await ops.exists(t.host.host, path))) {
    await ops.remove(t.host.host, path, t.host.dataDir);
    ctx.output(`removed ${path} from ${t.host.name}, which had none`);
  }
}
