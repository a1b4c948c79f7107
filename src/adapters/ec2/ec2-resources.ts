/**
 * The kinds of EC2 resource cellops looks up by id: the Describe call behind each and how one id becomes
 * its input. Describing one resource and waiting for one (ec2-wait.ts) both go through these.
 */
import {
  DescribeAddressesCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  type DescribeAddressesCommandInput,
  type DescribeAddressesCommandOutput,
  type DescribeImagesCommandInput,
  type DescribeImagesCommandOutput,
  type DescribeInstancesCommandInput,
  type DescribeInstancesCommandOutput,
  type DescribeSnapshotsCommandInput,
  type DescribeSnapshotsCommandOutput,
  type DescribeVolumesCommandInput,
  type DescribeVolumesCommandOutput,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import type { Ec2Context } from './ec2-context.js';
import { isEc2NotFound, translateEc2Error } from './ec2-errors.js';

export interface ResourceKind<I, O> {
  /** The Describe action, as IAM and error messages name it. */
  readonly action: string;
  /** The resource's name in messages, before its id. */
  readonly noun: string;
  readonly input: (id: string) => I;
  readonly describe: (client: EC2Client, input: I) => Promise<O>;
}

export const INSTANCES: ResourceKind<DescribeInstancesCommandInput, DescribeInstancesCommandOutput> = {
  action: 'DescribeInstances',
  noun: 'instance',
  input: (id) => ({ InstanceIds: [id] }),
  describe: (client, input) => client.send(new DescribeInstancesCommand(input)),
};

export const SNAPSHOTS: ResourceKind<DescribeSnapshotsCommandInput, DescribeSnapshotsCommandOutput> = {
  action: 'DescribeSnapshots',
  noun: 'snapshot',
  // Only the account's own: a snapshot id read back from a run could name someone else's public one.
  input: (id) => ({ SnapshotIds: [id], OwnerIds: ['self'] }),
  describe: (client, input) => client.send(new DescribeSnapshotsCommand(input)),
};

export const VOLUMES: ResourceKind<DescribeVolumesCommandInput, DescribeVolumesCommandOutput> = {
  action: 'DescribeVolumes',
  noun: 'volume',
  input: (id) => ({ VolumeIds: [id] }),
  describe: (client, input) => client.send(new DescribeVolumesCommand(input)),
};

export const IMAGES: ResourceKind<DescribeImagesCommandInput, DescribeImagesCommandOutput> = {
  action: 'DescribeImages',
  noun: 'image',
  // Only the account's own: an image id read back from a run or the cell state could name a public AMI.
  input: (id) => ({ ImageIds: [id], Owners: ['self'] }),
  describe: (client, input) => client.send(new DescribeImagesCommand(input)),
};

export const ADDRESSES: ResourceKind<DescribeAddressesCommandInput, DescribeAddressesCommandOutput> = {
  action: 'DescribeAddresses',
  noun: 'Elastic IP',
  input: (id) => ({ AllocationIds: [id] }),
  describe: (client, input) => client.send(new DescribeAddressesCommand(input)),
};

/**
 * Describes the resource `id` of `kind` and picks what the caller needs from the response; a resource
 * that does not exist (not in the response, or a not-found error) is `undefined`.
 */
export async function describeOne<I, O, T>(
  ctx: Ec2Context,
  kind: ResourceKind<I, O>,
  id: string,
  pick: (out: O) => T | undefined,
): Promise<T | undefined> {
  try {
    return pick(await kind.describe(ctx.client, kind.input(id)));
  } catch (error) {
    if (isEc2NotFound(error)) return undefined;
    throw translateEc2Error(error, {
      action: kind.action,
      resource: `${kind.noun} ${id}`,
      region: await ctx.region(),
    });
  }
}
