/** The AMI part of the Cloud port over EC2: create an image of an instance and wait for it. */
import { CreateImageCommand, waitUntilImageAvailable } from '@aws-sdk/client-ec2';
import type { Cloud } from '../../ports/cloud.js';
import { callForId, requireRunTag, tagSpecs, type Ec2Context } from './ec2-context.js';
import { IMAGES, describeOne } from './ec2-resources.js';
import { waitFor } from './ec2-wait.js';

export type ImageOps = Pick<Cloud, 'createImage' | 'describeImage' | 'waitImageAvailable'>;

export function createImageOps(ctx: Ec2Context): ImageOps {
  const { client, log } = ctx;
  return {
    createImage: async (spec) => {
      requireRunTag(ctx, 'CreateImage', `instance ${spec.instanceId}`, spec.tags);
      log.info(
        { instanceId: spec.instanceId, name: spec.name, excludeDevices: spec.excludeDevices },
        'creating image',
      );
      const imageId = await callForId(ctx, {
        action: 'CreateImage',
        resource: `instance ${spec.instanceId}`,
        send: () =>
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
        id: (out) => out.ImageId,
        noId: (region) => `CreateImage of ${spec.instanceId} in ${region} returned no image id`,
      });
      log.info({ instanceId: spec.instanceId, imageId }, 'image creation started');
      return { imageId };
    },

    describeImage: (imageId) =>
      describeOne(ctx, IMAGES, imageId, (out) => {
        const image = out.Images?.find((i) => i.ImageId === imageId);
        if (!image) return undefined;
        return {
          state: image.State ?? 'unknown',
          ...(image.CreationDate !== undefined ? { creationDate: image.CreationDate } : {}),
          ...(image.Name !== undefined ? { name: image.Name } : {}),
        };
      }),

    waitImageAvailable: (imageId, options) =>
      waitFor(ctx, IMAGES, imageId, 'available', waitUntilImageAvailable, options),
  };
}
