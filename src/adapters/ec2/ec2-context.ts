/**
 * What every EC2 operation module shares: the client, the run tag, the waiter delays and the helpers that
 * turn SDK failures into operator-facing errors. The operation modules (ec2-instances.ts, ec2-storage.ts,
 * ec2-images.ts, ec2-addresses.ts, ec2-tagged.ts) take this context explicitly instead of closing over
 * the factory's state.
 */
import type { EC2Client, ResourceType, Tag } from '@aws-sdk/client-ec2';
import { CellopsError, ExternalError } from '../../errors.js';
import type { Clock } from '../../ports/clock.js';
import type { Tags } from '../../ports/cloud.js';
import type { Logger } from '../../ports/logger.js';
import { translateEc2Error } from './ec2-errors.js';

export interface WaiterDelays {
  readonly minSeconds: number;
  readonly maxSeconds: number;
}

export interface Ec2Context {
  readonly client: EC2Client;
  /** Tag key that carries the run id. */
  readonly runTag: string;
  readonly delays: WaiterDelays;
  readonly clock: Clock;
  /** The adapter's logger (component ec2). */
  readonly log: Logger;
  /** The region for messages: resolved once from the client, never an error of its own. */
  readonly region: () => Promise<string>;
}

export function createEc2Context(deps: {
  readonly client: EC2Client;
  readonly configuredRegion: string | undefined;
  readonly runTag: string;
  readonly delays: WaiterDelays;
  readonly clock: Clock;
  readonly log: Logger;
}): Ec2Context {
  const { client, configuredRegion } = deps;
  let regionName: Promise<string> | undefined;
  const region = (): Promise<string> => {
    regionName ??= (async () => {
      try {
        return await client.config.region();
      } catch {
        return configuredRegion ?? 'an unresolved region';
      }
    })();
    return regionName;
  };
  return {
    client,
    runTag: deps.runTag,
    delays: deps.delays,
    clock: deps.clock,
    log: deps.log,
    region,
  };
}

/** Sends one command and translates any failure into an operator-facing ExternalError. */
export async function call<T>(
  ctx: Ec2Context,
  action: string,
  resource: string,
  send: () => Promise<T>,
): Promise<T> {
  try {
    return await send();
  } catch (error) {
    throw translateEc2Error(error, { action, resource, region: await ctx.region() });
  }
}

/**
 * Sends a create call and returns the id it answered with; its absence is EC2 misbehaving, reported with
 * the region so the operator knows where to look for what may have been created anyway.
 */
export async function callForId<O>(
  ctx: Ec2Context,
  create: {
    readonly action: string;
    readonly resource: string;
    readonly send: () => Promise<O>;
    readonly id: (out: O) => string | undefined;
    readonly noId: (region: string) => string;
  },
): Promise<string> {
  const out = await call(ctx, create.action, create.resource, create.send);
  const id = create.id(out);
  if (!id) throw new ExternalError('ec2_bad_response', create.noId(await ctx.region()));
  return id;
}

export function requireRunTag(ctx: Ec2Context, action: string, resource: string, tags: Tags): void {
  if (!tags[ctx.runTag])
    throw new CellopsError(
      'untagged_resource',
      `${action} for ${resource} was called without the ${ctx.runTag} tag; every resource cellops creates must ` +
        `carry its run id so a failed run can list what it left behind.`,
    );
}

export function toTagList(tags: Tags): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

export function fromTagList(tags: readonly Tag[] | undefined): Tags {
  const out: Record<string, string> = {};
  for (const tag of tags ?? []) if (tag.Key !== undefined) out[tag.Key] = tag.Value ?? '';
  return out;
}

/** TagSpecifications that tag each of `types` with `tags` from its creation. */
export function tagSpecs(tags: Tags, ...types: ResourceType[]) {
  return types.map((ResourceType) => ({ ResourceType, Tags: toTagList(tags) }));
}
