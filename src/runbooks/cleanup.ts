/**
 * `cleanup <run>` (docs/runbooks.md §cleanup): removes what a snapshot-mode failover (or an image run)
 * created and left behind — a replacement instance, restored volumes, the chaindata snapshot — with an
 * approval.
 *
 * Only resources tagged `cellops:run-id=<run>` are touched, found by that tag; never the instance that
 * serves a CN role now (a successful failover's replacement carries the tag too) nor a volume attached to
 * it. Machine images are listed and kept: they are what the next failover launches from. The failed CN's
 * own stopped instance carries no run tag and stays: it is the fenced machine, for a person to decide on.
 */
import { z } from 'zod';
import type { RunbookDefinition, StepContext, StepDefinition } from './types.js';
import type { TaggedResource } from '../ports/cloud.js';
import { RUN_ID_TAG } from '../ports/cloud.js';
import { CELL_LOCK } from './failover-params.js';
import { SafetyGateError, describeError } from '../errors.js';

export const cleanupParamsSchema = z
  .object({
    /** The run whose leftovers go. */
    runId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be a run id'),
    /** The CN that run was about: its serving instance is never removed. */
    cn: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
  })
  .strict();

export type CleanupParams = z.output<typeof cleanupParamsSchema>;
type CleanupStep = StepDefinition<CleanupParams>;
type CleanupContext = StepContext<CleanupParams>;

/** Facts: what the inventory found, as `kind:id` strings. */
const CLEANUP_FACTS = { remove: 'remove', kept: 'kept' } as const;

/** How long a terminated instance and a detached volume may take. */
const WAIT_MS = 10 * 60_000;

const GONE = new Set(['terminated', 'shutting-down', 'deleting', 'deleted']);

const key = (r: TaggedResource): string => `${r.kind}:${r.id}`;
function parseKey(entry: string): { kind: string; id: string } {
  const at = entry.indexOf(':');
  return { kind: entry.slice(0, at), id: entry.slice(at + 1) };
}

/** The run's live tagged resources, split into those cleanup removes and those it keeps (with why). */
async function sortLeftovers(ctx: CleanupContext): Promise<{ remove: string[]; kept: string[] }> {
  const { cloud, state } = ctx.ports;
  const tagged = (await cloud.findTagged(ctx.params.runId)).filter((r) => !GONE.has(r.state ?? ''));
  const serving = (await state.role(ctx.params.cn))?.instanceId;
  const servingVolumes = new Set(
    serving === undefined ? [] : (await cloud.describeInstanceVolumes(serving)).map((v) => v.volumeId),
  );
  const remove: string[] = [];
  const kept: string[] = [];
  for (const r of tagged) {
    if (r.kind === 'image') kept.push(`${key(r)} (machine images are kept)`);
    else if (r.kind === 'instance' && r.id === serving)
      kept.push(`${key(r)} (it serves ${ctx.params.cn} now)`);
    else if (r.kind === 'volume' && servingVolumes.has(r.id))
      kept.push(`${key(r)} (attached to ${serving}, which serves ${ctx.params.cn})`);
    else remove.push(key(r));
  }
  return { remove, kept };
}

const inventory: CleanupStep = {
  id: 'inventory',
  title: 'List what the run left',
  destructive: false,
  readOnly: true,
  timeoutMs: 60_000,
  describe: (ctx) =>
    `Read-only. EC2 Describe* of the resources tagged ${RUN_ID_TAG}=${ctx.params.runId}; keep the instance serving ${ctx.params.cn} now, its volumes, and machine images.`,
  run: async (ctx) => {
    const { remove, kept } = await sortLeftovers(ctx);
    ctx.setFact(CLEANUP_FACTS.remove, remove);
    ctx.setFact(CLEANUP_FACTS.kept, kept);
    ctx.output(remove.length > 0 ? `to remove: ${remove.join(', ')}` : 'nothing to remove');
    if (kept.length > 0) ctx.output(`kept: ${kept.join(', ')}`);
  },
  verify: async (ctx) => ctx.fact(CLEANUP_FACTS.remove) !== undefined,
};

async function removeOne(ctx: CleanupContext, entry: string, stillRemovable: Set<string>): Promise<void> {
  const { cloud } = ctx.ports;
  const { kind, id } = parseKey(entry);
  if (!stillRemovable.has(entry)) {
    ctx.output(`${kind} ${id}: gone already or kept now; left alone`);
    return;
  }
  if (kind === 'instance') {
    await cloud.terminateInstance(id);
    await cloud.waitInstanceTerminated(id, { timeoutMs: WAIT_MS, signal: ctx.signal });
    ctx.output(`terminated instance ${id}`);
  } else if (kind === 'volume') {
    await cloud.waitVolumeAvailable(id, { timeoutMs: WAIT_MS, signal: ctx.signal });
    await cloud.deleteVolume(id);
    ctx.output(`deleted volume ${id}`);
  } else if (kind === 'snapshot') {
    await cloud.deleteSnapshot(id);
    ctx.output(`deleted snapshot ${id}`);
  }
}

const removeLeftovers: CleanupStep = {
  id: 'remove',
  title: 'Terminate and delete what the run left',
  destructive: true,
  timeoutMs: 3 * WAIT_MS,
  describe: (ctx) => {
    const remove = ctx.fact<string[]>(CLEANUP_FACTS.remove);
    const listed =
      remove === undefined ? 'the resources the inventory lists' : remove.join(', ') || 'nothing';
    return `EC2 TerminateInstances (and wait until terminated), then DeleteVolume (once available) and DeleteSnapshot of ${listed} — only resources tagged ${RUN_ID_TAG}=${ctx.params.runId}, never the instance serving ${ctx.params.cn} or its volumes. Cannot be undone.`;
  },
  run: async (ctx) => {
    const planned = ctx.fact<string[]>(CLEANUP_FACTS.remove) ?? [];
    const order = ['instance', 'volume', 'snapshot'];
    const sorted = [...planned].sort(
      (a, b) => order.indexOf(parseKey(a).kind) - order.indexOf(parseKey(b).kind),
    );
    const errors: string[] = [];
    for (const entry of sorted) {
      try {
        // Looked at again right before each removal: a role may have moved to that instance since the
        // inventory, and terminating an instance deletes its root volume with it.
        await removeOne(ctx, entry, new Set((await sortLeftovers(ctx)).remove));
      } catch (error) {
        if (ctx.signal.aborted) throw error;
        errors.push(`${entry}: ${describeError(error)}`);
      }
    }
    if (errors.length > 0)
      throw new SafetyGateError(
        `could not remove ${errors.join('; ')}; the rest was removed. Run the cleanup again.`,
      );
  },
  verify: async (ctx) => {
    const planned = new Set(ctx.fact<string[]>(CLEANUP_FACTS.remove) ?? []);
    const live = (await ctx.ports.cloud.findTagged(ctx.params.runId)).filter((r) => !GONE.has(r.state ?? ''));
    return !live.some((r) => planned.has(key(r)));
  },
};

export const cleanupRunbook: RunbookDefinition<CleanupParams> = {
  id: 'cleanup',
  version: 1,
  title: "Clean up a run's leftovers",
  params: cleanupParamsSchema,
  lockKey: () => CELL_LOCK,
  node: (params) => params.cn,
  summary: (params) => `cleanup of run ${params.runId} (${params.cn})`,
  steps: () => [inventory, removeLeftovers],
};
