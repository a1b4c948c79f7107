/**
 * The cloud resources a run creates (a snapshot, an instance, a volume, an image) and how a run finds them
 * again: every one is tagged with the run's id, so a crash between the create call and the checkpoint
 * loses a fact, never the resource. Shared by the snapshot failover and the image runbook.
 */
import { RUN_ID_TAG, type Tags, type TaggedResource } from '../ports/cloud.js';
import { SafetyGateError } from '../errors.js';
import type { StepContext } from './types.js';
import { factOf } from './shaped-facts.js';

/** Tags every resource a run creates carries besides RUN_ID_TAG (ports/cloud.ts). */
export const CELL_TAG = 'cellops:cell';
export const ROLE_TAG = 'cellops:role';

/** The tags of a resource this run creates for the CN of its parameters. */
export function runTags(ctx: StepContext<{ readonly cn: string }>, name: string): Tags {
  return { [RUN_ID_TAG]: ctx.runId, [CELL_TAG]: ctx.config.cell, Name: name, [ROLE_TAG]: ctx.params.cn };
}

/** The shape of each kind's id, checked when it is read back from the run's facts. */
const ID_SHAPE = {
  instance: 'instanceId',
  volume: 'volumeId',
  snapshot: 'snapshotId',
  image: 'imageId',
} as const satisfies Record<TaggedResource['kind'], string>;

const GONE_STATES = new Set(['terminated', 'shutting-down', 'deleting', 'deleted', 'error']);

/**
 * The run's resource of one kind: from the facts, else found by its run-id tag (a crash between the create
 * call and the checkpoint loses the fact, not the resource).
 */
export async function runResource(
  ctx: StepContext<unknown>,
  kind: TaggedResource['kind'],
  factKey: string,
): Promise<string | undefined> {
  const known = factOf(ctx, factKey, ID_SHAPE[kind]);
  if (known !== undefined) return known;
  const found = (await ctx.ports.cloud.findTagged(ctx.runId)).filter(
    (r) => r.kind === kind && !GONE_STATES.has(r.state ?? ''),
  );
  if (found.length > 1)
    throw new SafetyGateError(
      `run ${ctx.runId} has ${found.length} ${kind}s tagged ${RUN_ID_TAG}=${ctx.runId} (${found.map((r) => r.id).join(', ')}); expected one — remove the extra ones and resume`,
    );
  const id = found[0]?.id;
  if (id !== undefined) ctx.setFact(factKey, id);
  return id;
}

/**
 * The restored data volume: from the facts, else among the run's tagged volumes. RunInstances tags the
 * replacement's root volume with the run id too, so volumes attached to the replacement at another device
 * are not it.
 */
export async function dataVolumeOf(
  ctx: StepContext<unknown>,
  factKey: string,
  instanceId: string,
  dataDevice: string,
): Promise<string | undefined> {
  const known = factOf(ctx, factKey, 'volumeId');
  if (known !== undefined) return known;
  const tagged = (await ctx.ports.cloud.findTagged(ctx.runId)).filter(
    (r) => r.kind === 'volume' && !GONE_STATES.has(r.state ?? ''),
  );
  const attached = await ctx.ports.cloud.describeInstanceVolumes(instanceId);
  const candidates = tagged.filter((r) => {
    const at = attached.find((a) => a.volumeId === r.id);
    return at === undefined || at.device === dataDevice;
  });
  if (candidates.length > 1)
    throw new SafetyGateError(
      `run ${ctx.runId} has several candidate data volumes (${candidates.map((r) => r.id).join(', ')}); expected one — remove the extra ones and resume`,
    );
  const id = candidates[0]?.id;
  if (id !== undefined) ctx.setFact(factKey, id);
  return id;
}

/** AMI names allow letters, digits, spaces and ()[] ./-'@_, 3 to 128 characters; we keep to dashes. */
export function imageName(cell: string, cn: string, at: number): string {
  const stamp = new Date(at)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `cellops-${cell}-${cn}-${stamp}`.replace(/[^A-Za-z0-9()[\]./'@_-]/g, '-').slice(0, 128);
}

/** The run's image: from the facts, else found by its run-id tag (a crash can lose the fact). */
export async function runImage(ctx: StepContext<unknown>, factKey: string): Promise<string | undefined> {
  const known = factOf(ctx, factKey, 'imageId');
  if (known !== undefined) return known;
  const images = (await ctx.ports.cloud.findTagged(ctx.runId)).filter(
    (r) => r.kind === 'image' && r.state !== 'failed' && r.state !== 'deregistered',
  );
  const id = images[0]?.id;
  if (id !== undefined) ctx.setFact(factKey, id);
  return id;
}
