/**
 * The Cloud port over @aws-sdk/client-ec2.
 *
 * - Region: `deps.region` (the configuration's aws.region) or the SDK's chain (AWS_REGION, profile).
 * - Credentials: the SDK's standard chain (env, SSO/profile, web identity, instance role).
 * - Endpoint: the SDK itself honours AWS_ENDPOINT_URL_EC2 (and AWS_ENDPOINT_URL), read per request;
 *   tests point it at a loopback server.
 * - Every create call carries its tags in TagSpecifications, so the resource is tagged from its first
 *   instant, and a create without the `cellops:run-id` tag is refused before any call is made.
 * - Waits use the SDK's waiters, bounded by `timeoutMs` and the caller's abort signal. One Describe call
 *   goes first so that a permission or region error surfaces at once instead of being retried by the waiter
 *   until the timeout.
 */
import {
  AssociateAddressCommand,
  AttachVolumeCommand,
  CreateImageCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DescribeAddressesCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  EC2Client,
  RunInstancesCommand,
  StopInstancesCommand,
  waitUntilImageAvailable,
  waitUntilInstanceRunning,
  waitUntilInstanceStopped,
  waitUntilSnapshotCompleted,
  waitUntilVolumeAvailable,
  waitUntilVolumeInUse,
  type Instance,
  type _InstanceType,
  type ResourceType,
  type Tag,
} from '@aws-sdk/client-ec2';
import { CellopsError, ExternalError, StepTimeoutError } from '../../errors.js';
import type { Clock } from '../../ports/clock.js';
import {
  RUN_ID_TAG,
  type Cloud,
  type InstanceInfo,
  type InstanceState,
  type TaggedResource,
  type Tags,
  type WaitOptions,
} from '../../ports/cloud.js';
import type { Logger } from '../../ports/logger.js';
import { ec2ErrorCode, isEc2NotFound, translateEc2Error } from './ec2-errors.js';

export interface Ec2CloudDeps {
  /** A ready client (tests pass a mocked one). Default: a new EC2Client for `region`. */
  readonly client?: EC2Client;
  /** aws.region from the configuration; undefined leaves it to the SDK's chain (AWS_REGION). */
  readonly region?: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Tag key that carries the run id. Default `cellops:run-id` (RUN_ID_TAG). */
  readonly runTag?: string;
  /**
   * Waiter polling, in seconds. The SDK's defaults (15 s, backing off to 120 s) suit batch jobs; a
   * failover wants to notice a running instance within seconds. Default min 5, max 15.
   */
  readonly waiterDelays?: { readonly minSeconds: number; readonly maxSeconds: number };
}

type WaiterParams = Parameters<typeof waitUntilInstanceRunning>[0];
type WaitUntil<I> = (params: WaiterParams, input: I) => Promise<unknown>;

const INSTANCE_STATES: readonly InstanceState[] = [
  'pending',
  'running',
  'shutting-down',
  'terminated',
  'stopping',
  'stopped',
];

function toTagList(tags: Tags): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

function fromTagList(tags: readonly Tag[] | undefined): Tags {
  const out: Record<string, string> = {};
  for (const tag of tags ?? []) if (tag.Key !== undefined) out[tag.Key] = tag.Value ?? '';
  return out;
}

function toInstanceInfo(instance: Instance): InstanceInfo {
  const state = instance.State?.Name;
  return {
    instanceId: instance.InstanceId ?? '',
    state: state !== undefined && INSTANCE_STATES.includes(state) ? state : 'pending',
    availabilityZone: instance.Placement?.AvailabilityZone ?? '',
    ...(instance.PrivateIpAddress !== undefined ? { privateIp: instance.PrivateIpAddress } : {}),
    ...(instance.PublicIpAddress !== undefined ? { publicIp: instance.PublicIpAddress } : {}),
    ...(instance.ImageId !== undefined ? { imageId: instance.ImageId } : {}),
    tags: fromTagList(instance.Tags),
  };
}

export function createEc2Cloud(deps: Ec2CloudDeps): Cloud {
  const client = deps.client ?? new EC2Client(deps.region !== undefined ? { region: deps.region } : {});
  const runTag = deps.runTag ?? RUN_ID_TAG;
  const delays = deps.waiterDelays ?? { minSeconds: 5, maxSeconds: 15 };
  const log = deps.logger.child({ component: 'ec2' });
  let regionName: Promise<string> | undefined;

  /** The region for messages: resolved once from the client, never an error of its own. */
  const region = (): Promise<string> => {
    regionName ??= (async () => {
      try {
        return await client.config.region();
      } catch {
        return deps.region ?? 'an unresolved region';
      }
    })();
    return regionName;
  };

  /** Sends one command and translates any failure into an operator-facing ExternalError. */
  const call = async <T>(action: string, resource: string, send: () => Promise<T>): Promise<T> => {
    try {
      return await send();
    } catch (error) {
      throw translateEc2Error(error, { action, resource, region: await region() });
    }
  };

  const requireRunTag = (action: string, resource: string, tags: Tags): void => {
    if (!tags[runTag])
      throw new CellopsError(
        'untagged_resource',
        `${action} for ${resource} was called without the ${runTag} tag; every resource cellops creates must ` +
          `carry its run id so a failed run can list what it left behind.`,
      );
  };

  const tagSpecs = (tags: Tags, ...types: ResourceType[]) =>
    types.map((ResourceType) => ({ ResourceType, Tags: toTagList(tags) }));

  /**
   * Runs an SDK waiter within `options`. `precheck` is one plain Describe call: errors that no amount of
   * waiting fixes (permissions, credentials, region) are thrown at once; not-found is left to the waiter,
   * because a resource just created can take a moment to become visible.
   */
  const wait = async <I>(
    what: { action: string; resource: string; target: string },
    waiter: WaitUntil<I>,
    input: I,
    options: WaitOptions,
    precheck: () => Promise<unknown>,
  ): Promise<void> => {
    options.signal?.throwIfAborted();
    const started = deps.clock.now();
    try {
      await precheck();
    } catch (error) {
      if (!isEc2NotFound(error)) throw translateEc2Error(error, { ...what, region: await region() });
    }
    const maxWaitTime = Math.max(options.timeoutMs / 1000, 0.002);
    // The waiter requires minDelay < maxWaitTime; short timeouts poll proportionally faster.
    const minDelay = Math.min(delays.minSeconds, maxWaitTime / 4);
    const maxDelay = Math.max(minDelay, Math.min(delays.maxSeconds, maxWaitTime / 2));
    try {
      await waiter(
        {
          client,
          maxWaitTime,
          minDelay,
          maxDelay,
          ...(options.signal ? { abortSignal: options.signal } : {}),
        },
        input,
      );
      log.debug({ resource: what.resource, waitedMs: deps.clock.now() - started }, `${what.target}`);
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      const name = ec2ErrorCode(error);
      const reg = await region();
      if (name === 'TimeoutError')
        throw new StepTimeoutError(
          `${what.resource} in ${reg} was not ${what.target} after ${Math.round(options.timeoutMs / 1000)} s; ` +
            `check it in the EC2 console, then resume the run to wait again.`,
        );
      if (name === 'AbortError')
        throw new CellopsError('aborted', `waiting for ${what.resource} was aborted`);
      if (error instanceof Error && error.message.startsWith('{'))
        throw new ExternalError(
          'ec2_wait_failed',
          `${what.resource} in ${reg} reached a state from which it cannot become ${what.target}: ` +
            `${summarizeWaiterFailure(error.message)}. Inspect it in the EC2 console.`,
          { cause: error },
        );
      throw translateEc2Error(error, { ...what, region: reg });
    }
  };

  const describeInstanceRaw = async (instanceId: string): Promise<Instance | undefined> => {
    try {
      const out = await client.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
      return out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId);
    } catch (error) {
      if (isEc2NotFound(error)) return undefined;
      throw translateEc2Error(error, {
        action: 'DescribeInstances',
        resource: `instance ${instanceId}`,
        region: await region(),
      });
    }
  };

  /** Pages through a Describe call with a tag filter. */
  const pages = async <T>(
    action: string,
    fetchPage: (nextToken: string | undefined) => Promise<{ items: T[]; next?: string | undefined }>,
  ): Promise<T[]> => {
    const all: T[] = [];
    let token: string | undefined;
    do {
      const page = await call(action, `resources tagged ${runTag}`, () => fetchPage(token));
      all.push(...page.items);
      token = page.next;
    } while (token);
    return all;
  };

  return {
    describeInstance: async (instanceId) => {
      const instance = await describeInstanceRaw(instanceId);
      return instance ? toInstanceInfo(instance) : undefined;
    },

    describeInstanceVolumes: async (instanceId) => {
      const instance = await describeInstanceRaw(instanceId);
      if (!instance)
        throw new ExternalError(
          'ec2_not_found',
          `EC2 says instance ${instanceId} does not exist in ${await region()}: check nodes.*.instanceId and aws.region.`,
        );
      return (instance.BlockDeviceMappings ?? []).flatMap((m) =>
        m.Ebs?.VolumeId !== undefined && m.DeviceName !== undefined
          ? [{ volumeId: m.Ebs.VolumeId, device: m.DeviceName }]
          : [],
      );
    },

    stopInstance: async (instanceId, options = {}) => {
      log.info({ instanceId, force: options.force ?? false }, 'stopping instance');
      await call('StopInstances', `instance ${instanceId}`, () =>
        client.send(new StopInstancesCommand({ InstanceIds: [instanceId], Force: options.force ?? false })),
      );
    },

    waitInstanceStopped: (instanceId, options) =>
      wait(
        { action: 'DescribeInstances', resource: `instance ${instanceId}`, target: 'stopped' },
        waitUntilInstanceStopped,
        { InstanceIds: [instanceId] },
        options,
        () => client.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })),
      ),

    runInstance: async (spec) => {
      requireRunTag('RunInstances', `an instance from ${spec.imageId}`, spec.tags);
      log.info(
        { imageId: spec.imageId, instanceType: spec.instanceType, subnetId: spec.subnetId },
        'launching instance',
      );
      const out = await call('RunInstances', `an instance from image ${spec.imageId}`, () =>
        client.send(
          new RunInstancesCommand({
            ImageId: spec.imageId,
            // The configuration validates the name loosely; EC2 is the authority on instance types.
            InstanceType: spec.instanceType as _InstanceType,
            SubnetId: spec.subnetId,
            SecurityGroupIds: [...spec.securityGroupIds],
            ...(spec.keyName !== undefined ? { KeyName: spec.keyName } : {}),
            ...(spec.clientToken !== undefined ? { ClientToken: spec.clientToken } : {}),
            MinCount: 1,
            MaxCount: 1,
            TagSpecifications: tagSpecs(spec.tags, 'instance', 'volume'),
          }),
        ),
      );
      const instance = out.Instances?.[0];
      if (!instance?.InstanceId)
        throw new ExternalError(
          'ec2_bad_response',
          `RunInstances from ${spec.imageId} in ${await region()} returned no instance; check the EC2 console ` +
            `for an instance tagged ${runTag}=${spec.tags[runTag]}.`,
        );
      log.info({ instanceId: instance.InstanceId }, 'instance launched');
      return toInstanceInfo(instance);
    },

    waitInstanceRunning: async (instanceId, options) => {
      await wait(
        { action: 'DescribeInstances', resource: `instance ${instanceId}`, target: 'running' },
        waitUntilInstanceRunning,
        { InstanceIds: [instanceId] },
        options,
        () => client.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })),
      );
      const instance = await describeInstanceRaw(instanceId);
      if (!instance)
        throw new ExternalError(
          'ec2_not_found',
          `instance ${instanceId} was running but then vanished from ${await region()}`,
        );
      return toInstanceInfo(instance);
    },

    createSnapshot: async (volumeId, description, tags) => {
      requireRunTag('CreateSnapshot', `volume ${volumeId}`, tags);
      log.info({ volumeId }, 'creating snapshot');
      const out = await call('CreateSnapshot', `volume ${volumeId}`, () =>
        client.send(
          new CreateSnapshotCommand({
            VolumeId: volumeId,
            Description: description,
            TagSpecifications: tagSpecs(tags, 'snapshot'),
          }),
        ),
      );
      if (!out.SnapshotId)
        throw new ExternalError(
          'ec2_bad_response',
          `CreateSnapshot of ${volumeId} in ${await region()} returned no snapshot id`,
        );
      log.info({ volumeId, snapshotId: out.SnapshotId }, 'snapshot started');
      return { snapshotId: out.SnapshotId };
    },

    describeSnapshot: async (snapshotId) => {
      try {
        const out = await client.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }));
        const snap = out.Snapshots?.find((s) => s.SnapshotId === snapshotId);
        if (!snap) return undefined;
        return {
          state: snap.State ?? 'unknown',
          ...(snap.Progress !== undefined ? { progress: snap.Progress } : {}),
        };
      } catch (error) {
        if (isEc2NotFound(error)) return undefined;
        throw translateEc2Error(error, {
          action: 'DescribeSnapshots',
          resource: `snapshot ${snapshotId}`,
          region: await region(),
        });
      }
    },

    waitSnapshotCompleted: (snapshotId, options) =>
      wait(
        { action: 'DescribeSnapshots', resource: `snapshot ${snapshotId}`, target: 'completed' },
        waitUntilSnapshotCompleted,
        { SnapshotIds: [snapshotId] },
        options,
        () => client.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] })),
      ),

    createVolume: async (snapshotId, availabilityZone, tags) => {
      requireRunTag('CreateVolume', `snapshot ${snapshotId}`, tags);
      log.info({ snapshotId, availabilityZone }, 'creating volume');
      const out = await call(
        'CreateVolume',
        `a volume from snapshot ${snapshotId} in ${availabilityZone}`,
        () =>
          client.send(
            new CreateVolumeCommand({
              SnapshotId: snapshotId,
              AvailabilityZone: availabilityZone,
              TagSpecifications: tagSpecs(tags, 'volume'),
            }),
          ),
      );
      if (!out.VolumeId)
        throw new ExternalError(
          'ec2_bad_response',
          `CreateVolume from ${snapshotId} in ${await region()} returned no volume id`,
        );
      log.info({ snapshotId, volumeId: out.VolumeId }, 'volume created');
      return { volumeId: out.VolumeId };
    },

    waitVolumeAvailable: (volumeId, options) =>
      wait(
        { action: 'DescribeVolumes', resource: `volume ${volumeId}`, target: 'available' },
        waitUntilVolumeAvailable,
        { VolumeIds: [volumeId] },
        options,
        () => client.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] })),
      ),

    attachVolume: async (volumeId, instanceId, device) => {
      log.info({ volumeId, instanceId, device }, 'attaching volume');
      await call('AttachVolume', `volume ${volumeId} (to instance ${instanceId} as ${device})`, () =>
        client.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: device })),
      );
    },

    waitVolumeInUse: (volumeId, options) =>
      wait(
        { action: 'DescribeVolumes', resource: `volume ${volumeId}`, target: 'in use' },
        waitUntilVolumeInUse,
        { VolumeIds: [volumeId] },
        options,
        () => client.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] })),
      ),

    associateAddress: async (allocationId, instanceId) => {
      log.info({ allocationId, instanceId }, 'moving Elastic IP');
      const out = await call(
        'AssociateAddress',
        `Elastic IP ${allocationId} (to instance ${instanceId})`,
        () =>
          client.send(
            new AssociateAddressCommand({
              AllocationId: allocationId,
              InstanceId: instanceId,
              // The address is still on the failed CN: taking it from there is the point.
              AllowReassociation: true,
            }),
          ),
      );
      return out.AssociationId !== undefined ? { associationId: out.AssociationId } : {};
    },

    describeAddress: async (allocationId) => {
      try {
        const out = await client.send(new DescribeAddressesCommand({ AllocationIds: [allocationId] }));
        const address = out.Addresses?.find((a) => a.AllocationId === allocationId);
        if (!address) return undefined;
        return {
          ...(address.PublicIp !== undefined ? { publicIp: address.PublicIp } : {}),
          ...(address.InstanceId !== undefined ? { instanceId: address.InstanceId } : {}),
        };
      } catch (error) {
        if (isEc2NotFound(error)) return undefined;
        throw translateEc2Error(error, {
          action: 'DescribeAddresses',
          resource: `Elastic IP ${allocationId}`,
          region: await region(),
        });
      }
    },

    createImage: async (spec) => {
      requireRunTag('CreateImage', `instance ${spec.instanceId}`, spec.tags);
      log.info(
        { instanceId: spec.instanceId, name: spec.name, excludeDevices: spec.excludeDevices },
        'creating image',
      );
      const out = await call('CreateImage', `instance ${spec.instanceId}`, () =>
        client.send(
          new CreateImageCommand({
            InstanceId: spec.instanceId,
            Name: spec.name,
            Description: spec.description,
            NoReboot: !(spec.reboot ?? false),
            // NoDevice leaves the volume out of the image: the chaindata must never be baked into an AMI.
            BlockDeviceMappings: spec.excludeDevices.map((DeviceName) => ({ DeviceName, NoDevice: '' })),
            TagSpecifications: tagSpecs(spec.tags, 'image', 'snapshot'),
          }),
        ),
      );
      if (!out.ImageId)
        throw new ExternalError(
          'ec2_bad_response',
          `CreateImage of ${spec.instanceId} in ${await region()} returned no image id`,
        );
      log.info({ instanceId: spec.instanceId, imageId: out.ImageId }, 'image creation started');
      return { imageId: out.ImageId };
    },

    describeImage: async (imageId) => {
      try {
        const out = await client.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
        const image = out.Images?.find((i) => i.ImageId === imageId);
        if (!image) return undefined;
        return {
          state: image.State ?? 'unknown',
          ...(image.CreationDate !== undefined ? { creationDate: image.CreationDate } : {}),
          ...(image.Name !== undefined ? { name: image.Name } : {}),
        };
      } catch (error) {
        if (isEc2NotFound(error)) return undefined;
        throw translateEc2Error(error, {
          action: 'DescribeImages',
          resource: `image ${imageId}`,
          region: await region(),
        });
      }
    },

    waitImageAvailable: (imageId, options) =>
      wait(
        { action: 'DescribeImages', resource: `image ${imageId}`, target: 'available' },
        waitUntilImageAvailable,
        { ImageIds: [imageId] },
        options,
        () => client.send(new DescribeImagesCommand({ ImageIds: [imageId] })),
      ),

    findTagged: async (runId) => {
      const Filters = [{ Name: `tag:${runTag}`, Values: [runId] }];
      const [instances, volumes, snapshots, images] = await Promise.all([
        pages<TaggedResource>('DescribeInstances', async (NextToken) => {
          const out = await client.send(new DescribeInstancesCommand({ Filters, NextToken }));
          return {
            items: (out.Reservations ?? [])
              .flatMap((r) => r.Instances ?? [])
              .map((i) => ({ kind: 'instance', id: i.InstanceId ?? '', state: i.State?.Name ?? 'unknown' })),
            next: out.NextToken,
          };
        }),
        pages<TaggedResource>('DescribeVolumes', async (NextToken) => {
          const out = await client.send(new DescribeVolumesCommand({ Filters, NextToken }));
          return {
            items: (out.Volumes ?? []).map((v) => ({
              kind: 'volume',
              id: v.VolumeId ?? '',
              state: v.State ?? 'unknown',
            })),
            next: out.NextToken,
          };
        }),
        pages<TaggedResource>('DescribeSnapshots', async (NextToken) => {
          const out = await client.send(
            new DescribeSnapshotsCommand({ Filters, OwnerIds: ['self'], NextToken }),
          );
          return {
            items: (out.Snapshots ?? []).map((s) => ({
              kind: 'snapshot',
              id: s.SnapshotId ?? '',
              state: s.State ?? 'unknown',
            })),
            next: out.NextToken,
          };
        }),
        pages<TaggedResource>('DescribeImages', async (NextToken) => {
          const out = await client.send(new DescribeImagesCommand({ Filters, Owners: ['self'], NextToken }));
          return {
            items: (out.Images ?? []).map((i) => ({
              kind: 'image',
              id: i.ImageId ?? '',
              state: i.State ?? 'unknown',
            })),
            next: out.NextToken,
          };
        }),
      ]);
      return [...instances, ...volumes, ...snapshots, ...images];
    },
  };
}

/** The waiter's failure message is a JSON dump of the last response; keep only the states it saw. */
function summarizeWaiterFailure(message: string): string {
  const states = [...message.matchAll(/"(?:State|Name)":"([a-z-]+)"/g)].map((m) => m[1]);
  const unique = [...new Set(states)];
  return unique.length > 0 ? `last state seen: ${unique.join(', ')}` : 'the waiter reported a failure';
}
