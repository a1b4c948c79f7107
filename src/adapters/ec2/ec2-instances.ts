/** The instance half of the Cloud port over EC2: describe, stop, launch and wait for an instance. */
import {
  RunInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  waitUntilInstanceRunning,
  waitUntilInstanceStopped,
  waitUntilInstanceTerminated,
  type Instance,
  type _InstanceType,
} from '@aws-sdk/client-ec2';
import { ExternalError } from '../../errors.js';
import type {
  Cloud,
  CloudInstanceCalls,
  InstanceInfo,
  InstanceState,
  LaunchSpec,
} from '../../ports/cloud.js';
import { call, fromTagList, requireRunTag, tagSpecs, type Ec2Context } from './ec2-context.js';
import { INSTANCES, describeOne } from './ec2-resources.js';
import { waitFor } from './ec2-wait.js';

export type InstanceOps = CloudInstanceCalls & Pick<Cloud, 'terminateInstance' | 'waitInstanceTerminated'>;

const INSTANCE_STATES: readonly InstanceState[] = [
  'pending',
  'running',
  'shutting-down',
  'terminated',
  'stopping',
  'stopped',
];

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

function describeInstanceRaw(ctx: Ec2Context, instanceId: string): Promise<Instance | undefined> {
  return describeOne(ctx, INSTANCES, instanceId, (out) =>
    out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId),
  );
}

async function runInstance(ctx: Ec2Context, spec: LaunchSpec): Promise<InstanceInfo> {
  const { runTag } = ctx;
  requireRunTag(ctx, 'RunInstances', `an instance from ${spec.imageId}`, spec.tags);
  ctx.log.info(
    { imageId: spec.imageId, instanceType: spec.instanceType, subnetId: spec.subnetId },
    'launching instance',
  );
  const out = await call(ctx, 'RunInstances', `an instance from image ${spec.imageId}`, () =>
    ctx.client.send(
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
      `RunInstances from ${spec.imageId} in ${await ctx.region()} returned no instance; check the EC2 console ` +
        `for an instance tagged ${runTag}=${spec.tags[runTag]}.`,
    );
  ctx.log.info({ instanceId: instance.InstanceId }, 'instance launched');
  return toInstanceInfo(instance);
}

export function createInstanceOps(ctx: Ec2Context): InstanceOps {
  const { client, log } = ctx;
  return {
    describeInstance: async (instanceId) => {
      const instance = await describeInstanceRaw(ctx, instanceId);
      return instance ? toInstanceInfo(instance) : undefined;
    },

    describeInstanceVolumes: async (instanceId) => {
      const instance = await describeInstanceRaw(ctx, instanceId);
      if (!instance)
        throw new ExternalError(
          'ec2_not_found',
          `EC2 says instance ${instanceId} does not exist in ${await ctx.region()}: check nodes.*.instanceId and aws.region.`,
        );
      return (instance.BlockDeviceMappings ?? []).flatMap((m) =>
        m.Ebs?.VolumeId !== undefined && m.DeviceName !== undefined
          ? [{ volumeId: m.Ebs.VolumeId, device: m.DeviceName }]
          : [],
      );
    },

    stopInstance: async (instanceId, options = {}) => {
      log.info({ instanceId, force: options.force ?? false }, 'stopping instance');
      await call(ctx, 'StopInstances', `instance ${instanceId}`, () =>
        client.send(new StopInstancesCommand({ InstanceIds: [instanceId], Force: options.force ?? false })),
      );
    },

    waitInstanceStopped: (instanceId, options) =>
      waitFor(ctx, INSTANCES, instanceId, 'stopped', waitUntilInstanceStopped, options),

    runInstance: (spec) => runInstance(ctx, spec),

    terminateInstance: async (instanceId) => {
      log.info({ instanceId }, 'terminating instance');
      await call(ctx, 'TerminateInstances', `instance ${instanceId}`, () =>
        client.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] })),
      );
    },

    waitInstanceTerminated: (instanceId, options) =>
      waitFor(ctx, INSTANCES, instanceId, 'terminated', waitUntilInstanceTerminated, options),

    waitInstanceRunning: async (instanceId, options) => {
      await waitFor(ctx, INSTANCES, instanceId, 'running', waitUntilInstanceRunning, options);
      const instance = await describeInstanceRaw(ctx, instanceId);
      if (!instance)
        throw new ExternalError(
          'ec2_not_found',
          `instance ${instanceId} was running but then vanished from ${await ctx.region()}`,
        );
      return toInstanceInfo(instance);
    },
  };
}
