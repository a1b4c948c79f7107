/** `findTagged` over EC2: every instance, volume, snapshot and image carrying a run's tag. */
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  type EC2Client,
  type Filter,
} from '@aws-sdk/client-ec2';
import type { TaggedResource } from '../../ports/cloud.js';
import { call, type Ec2Context } from './ec2-context.js';

interface Page {
  readonly items: TaggedResource[];
  readonly next?: string | undefined;
}

/** One Describe call that lists a kind of resource by tag filter, a page at a time. */
interface TaggedLister {
  readonly action: string;
  readonly page: (client: EC2Client, filters: Filter[], nextToken: string | undefined) => Promise<Page>;
}

function tagged(
  kind: TaggedResource['kind'],
  id: string | undefined,
  state: string | undefined,
): TaggedResource {
  return { kind, id: id ?? '', state: state ?? 'unknown' };
}

/** In the order the report lists them: instances, volumes, snapshots, images. */
const LISTERS: readonly TaggedLister[] = [
  {
    action: 'DescribeInstances',
    page: async (client, Filters, NextToken) => {
      const out = await client.send(new DescribeInstancesCommand({ Filters, NextToken }));
      return {
        items: (out.Reservations ?? [])
          .flatMap((r) => r.Instances ?? [])
          .map((i) => tagged('instance', i.InstanceId, i.State?.Name)),
        next: out.NextToken,
      };
    },
  },
  {
    action: 'DescribeVolumes',
    page: async (client, Filters, NextToken) => {
      const out = await client.send(new DescribeVolumesCommand({ Filters, NextToken }));
      return {
        items: (out.Volumes ?? []).map((v) => tagged('volume', v.VolumeId, v.State)),
        next: out.NextToken,
      };
    },
  },
  {
    action: 'DescribeSnapshots',
    page: async (client, Filters, NextToken) => {
      const out = await client.send(new DescribeSnapshotsCommand({ Filters, OwnerIds: ['self'], NextToken }));
      return {
        items: (out.Snapshots ?? []).map((s) => tagged('snapshot', s.SnapshotId, s.State)),
        next: out.NextToken,
      };
    },
  },
  {
    action: 'DescribeImages',
    page: async (client, Filters, NextToken) => {
      const out = await client.send(new DescribeImagesCommand({ Filters, Owners: ['self'], NextToken }));
      return {
        items: (out.Images ?? []).map((i) => tagged('image', i.ImageId, i.State)),
        next: out.NextToken,
      };
    },
  },
];

/** Pages through a Describe call with a tag filter. */
async function pages(
  ctx: Ec2Context,
  action: string,
  fetchPage: (nextToken: string | undefined) => Promise<Page>,
): Promise<TaggedResource[]> {
  const all: TaggedResource[] = [];
  let token: string | undefined;
  do {
    const page = await call(ctx, action, `resources tagged ${ctx.runTag}`, () => fetchPage(token));
    all.push(...page.items);
    token = page.next;
  } while (token);
  return all;
}

export async function findTagged(ctx: Ec2Context, runId: string): Promise<readonly TaggedResource[]> {
  const filters = [{ Name: `tag:${ctx.runTag}`, Values: [runId] }];
  const lists = await Promise.all(
    LISTERS.map((lister) => pages(ctx, lister.action, (token) => lister.page(ctx.client, filters, token))),
  );
  return lists.flat();
}
