/**
 * The simulated EC2's snapshots and volumes. A snapshot captures its volume's files when it is created
 * (EBS snapshots are point-in-time) and completes later; a volume is made only from a completed snapshot
 * and carries its files; it attaches only in its instance's zone, to a free device.
 */
import { ExternalError } from '../errors.js';
import type { CloudStorageCalls } from '../ports/cloud.js';
import { copyFiles, type SimCloudState } from './sim-cloud-state.js';

export type SimCloudVolumes = CloudStorageCalls;

export function createSimCloudVolumes(state: SimCloudState): SimCloudVolumes {
  const { clock, delays } = state;
  return {
    createSnapshot: async (volumeId, description, tags) => {
      state.enter('createSnapshot', [volumeId, description, tags]);
      state.requireRunTag('CreateSnapshot', tags);
      if (!state.volumes.has(volumeId)) throw state.notFound(`volume ${volumeId}`);
      const snapshotId = state.newId('snap');
      state.snapshots.set(snapshotId, {
        snapshotId,
        volumeId,
        description,
        startedAt: clock.now(),
        status: { state: 'pending', next: { state: 'completed', at: clock.now() + delays.snapshot } },
        tags: { ...tags },
        // Point-in-time: what is on the volume now, whatever happens to it while the copy completes.
        ...copyFiles(state.volumeFiles(volumeId)),
      });
      return { snapshotId };
    },

    describeSnapshot: async (snapshotId) => {
      state.enter('describeSnapshot', [snapshotId]);
      const snap = state.snapshots.get(snapshotId);
      if (!snap) return undefined;
      const status = state.current(snap.status);
      const elapsed = clock.now() - snap.startedAt;
      const pct = status === 'completed' ? 100 : Math.min(99, Math.floor((elapsed / delays.snapshot) * 100));
      return { state: status, progress: `${pct}%` };
    },

    waitSnapshotCompleted: async (snapshotId, wait) => {
      state.enter('waitSnapshotCompleted', [snapshotId, { timeoutMs: wait.timeoutMs }]);
      const snap = state.snapshots.get(snapshotId);
      if (!snap) throw state.notFound(`snapshot ${snapshotId}`);
      await state.waitUntil(`snapshot ${snapshotId}`, 'completed', wait, snap.status, 'completed');
    },

    createVolume: async (snapshotId, availabilityZone, tags) => {
      state.enter('createVolume', [snapshotId, availabilityZone, tags]);
      state.requireRunTag('CreateVolume', tags);
      const snap = state.snapshots.get(snapshotId);
      if (!snap) throw state.notFound(`snapshot ${snapshotId}`);
      if (state.current(snap.status) !== 'completed')
        throw state.incorrectState(`snapshot ${snapshotId} is still pending; wait for it to complete first`);
      const volumeId = state.newId('vol');
      state.volumes.set(volumeId, {
        volumeId,
        availabilityZone,
        status: { state: 'creating', next: { state: 'available', at: clock.now() + delays.volumeCreate } },
        snapshotId,
        tags: { ...tags },
        ...copyFiles(snap.files),
      });
      return { volumeId };
    },

    waitVolumeAvailable: async (volumeId, wait) => {
      state.enter('waitVolumeAvailable', [volumeId, { timeoutMs: wait.timeoutMs }]);
      const vol = state.volumes.get(volumeId);
      if (!vol) throw state.notFound(`volume ${volumeId}`);
      await state.waitUntil(`volume ${volumeId}`, 'available', wait, vol.status, 'available');
    },

    attachVolume: async (volumeId, instanceId, device) => {
      state.enter('attachVolume', [volumeId, instanceId, device]);
      const vol = state.volumes.get(volumeId);
      if (!vol) throw state.notFound(`volume ${volumeId}`);
      const rec = state.getInstance(instanceId);
      if (state.current(vol.status) !== 'available')
        throw state.incorrectState(`volume ${volumeId} is ${state.current(vol.status)}, not available`);
      if (vol.availabilityZone !== rec.availabilityZone)
        throw new ExternalError(
          'ec2_bad_request',
          `volume ${volumeId} is in ${vol.availabilityZone} but instance ${instanceId} is in ${rec.availabilityZone}`,
        );
      if (rec.devices.has(device))
        throw new ExternalError('ec2_bad_request', `device ${device} is already in use on ${instanceId}`);
      vol.attachment = { instanceId, device };
      vol.status = { state: 'available', next: { state: 'in-use', at: clock.now() + delays.volumeAttach } };
      rec.devices.set(device, volumeId);
    },

    waitVolumeInUse: async (volumeId, wait) => {
      state.enter('waitVolumeInUse', [volumeId, { timeoutMs: wait.timeoutMs }]);
      const vol = state.volumes.get(volumeId);
      if (!vol) throw state.notFound(`volume ${volumeId}`);
      await state.waitUntil(`volume ${volumeId}`, 'in use', wait, vol.status, 'in-use');
    },
  };
}
