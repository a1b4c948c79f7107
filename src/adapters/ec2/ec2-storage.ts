/** The EBS half of the Cloud port over EC2: snapshots of volumes, volumes from snapshots, attachment. */
import {
  AttachVolumeCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  waitUntilSnapshotCompleted,
  waitUntilVolumeAvailable,
  waitUntilVolumeInUse,
} from '@aws-sdk/client-ec2';
import type { Cloud, CloudStorageCalls } from '../../ports/cloud.js';
import { call, callForId, requireRunTag, tagSpecs, type Ec2Context } from './ec2-context.js';
import { SNAPSHOTS, VOLUMES, describeOne } from './ec2-resources.js';
import { waitFor } from './ec2-wait.js';

export type StorageOps = CloudStorageCalls & Pick<Cloud, 'deleteVolume' | 'deleteSnapshot'>;

export function createStorageOps(ctx: Ec2Context): StorageOps {
  const { client, log } = ctx;
  return {
    deleteVolume: async (volumeId) => {
      log.info({ volumeId }, 'deleting volume');
      await call(ctx, 'DeleteVolume', `volume ${volumeId}`, () =>
        client.send(new DeleteVolumeCommand({ VolumeId: volumeId })),
      );
    },

    deleteSnapshot: async (snapshotId) => {
      log.info({ snapshotId }, 'deleting snapshot');
      await call(ctx, 'DeleteSnapshot', `snapshot ${snapshotId}`, () =>
        client.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })),
      );
    },

    createSnapshot: async (volumeId, description, tags) => {
      requireRunTag(ctx, 'CreateSnapshot', `volume ${volumeId}`, tags);
      log.info({ volumeId }, 'creating snapshot');
      const snapshotId = await callForId(ctx, {
        action: 'CreateSnapshot',
        resource: `volume ${volumeId}`,
        send: () =>
          client.send(
            new CreateSnapshotCommand({
              VolumeId: volumeId,
              Description: description,
              TagSpecifications: tagSpecs(tags, 'snapshot'),
            }),
          ),
        id: (out) => out.SnapshotId,
        noId: (region) => `CreateSnapshot of ${volumeId} in ${region} returned no snapshot id`,
      });
      log.info({ volumeId, snapshotId }, 'snapshot started');
      return { snapshotId };
    },

    describeSnapshot: (snapshotId) =>
      describeOne(ctx, SNAPSHOTS, snapshotId, (out) => {
        const snap = out.Snapshots?.find((s) => s.SnapshotId === snapshotId);
        if (!snap) return undefined;
        return {
          state: snap.State ?? 'unknown',
          ...(snap.Progress !== undefined ? { progress: snap.Progress } : {}),
        };
      }),

    waitSnapshotCompleted: (snapshotId, options) =>
      waitFor(ctx, SNAPSHOTS, snapshotId, 'completed', waitUntilSnapshotCompleted, options),

    createVolume: async (snapshotId, availabilityZone, tags) => {
      requireRunTag(ctx, 'CreateVolume', `snapshot ${snapshotId}`, tags);
      log.info({ snapshotId, availabilityZone }, 'creating volume');
      const volumeId = await callForId(ctx, {
        action: 'CreateVolume',
        resource: `a volume from snapshot ${snapshotId} in ${availabilityZone}`,
        send: () =>
          client.send(
            new CreateVolumeCommand({
              SnapshotId: snapshotId,
              AvailabilityZone: availabilityZone,
              TagSpecifications: tagSpecs(tags, 'volume'),
            }),
          ),
        id: (out) => out.VolumeId,
        noId: (region) => `CreateVolume from ${snapshotId} in ${region} returned no volume id`,
      });
      log.info({ snapshotId, volumeId }, 'volume created');
      return { volumeId };
    },

    waitVolumeAvailable: (volumeId, options) =>
      waitFor(ctx, VOLUMES, volumeId, 'available', waitUntilVolumeAvailable, options),

    attachVolume: async (volumeId, instanceId, device) => {
      log.info({ volumeId, instanceId, device }, 'attaching volume');
      await call(ctx, 'AttachVolume', `volume ${volumeId} (to instance ${instanceId} as ${device})`, () =>
        client.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: device })),
      );
    },

    waitVolumeInUse: (volumeId, options) =>
      waitFor(ctx, VOLUMES, volumeId, 'in use', waitUntilVolumeInUse, options),
  };
}
