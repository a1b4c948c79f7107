/**
 * The simulated EC2's instances: describe, stop and launch them and wait for their states. A launch needs
 * an available image, is idempotent by client token, and gets a root volume carrying the image's root
 * device files.
 */
import type { CloudInstanceCalls } from '../ports/cloud.js';
import { newHostKey } from './sim-cloud-console.js';
import { copyFiles, type InstanceRec, type SimCloudState } from './sim-cloud-state.js';

export type SimCloudInstances = CloudInstanceCalls;

export function createSimCloudInstances(state: SimCloudState): SimCloudInstances {
  const { clock, delays } = state;
  return {
    describeInstance: async (instanceId) => {
      state.enter('describeInstance', [instanceId]);
      const rec = state.instances.get(instanceId);
      return rec ? state.info(rec) : undefined;
    },

    describeInstanceVolumes: async (instanceId) => {
      state.enter('describeInstanceVolumes', [instanceId]);
      const rec = state.getInstance(instanceId);
      return [...rec.devices.entries()].map(([device, volumeId]) => ({ volumeId, device }));
    },

    stopInstance: async (instanceId, opts = {}) => {
      state.enter('stopInstance', [instanceId, opts]);
      const rec = state.getInstance(instanceId);
      const status = state.current(rec.status);
      if (status === 'terminated' || status === 'shutting-down')
        throw state.incorrectState(`instance ${instanceId} is ${status} and cannot be stopped`);
      if (status === 'stopped' || status === 'stopping') return;
      rec.status = { state: 'stopping', next: { state: 'stopped', at: clock.now() + delays.instanceStop } };
    },

    waitInstanceStopped: async (instanceId, wait) => {
      state.enter('waitInstanceStopped', [instanceId, { timeoutMs: wait.timeoutMs }]);
      const rec = state.getInstance(instanceId);
      await state.waitFor(
        `instance ${instanceId}`,
        'stopped',
        wait,
        () => state.current(rec.status) === 'stopped',
        () => {
          const s = state.current(rec.status);
          return s === 'pending' || s === 'terminated' ? s : undefined;
        },
      );
    },

    runInstance: async (spec) => {
      state.enter('runInstance', [spec]);
      state.requireRunTag('RunInstances', spec.tags);
      const image = state.images.get(spec.imageId);
      if (!image) throw state.notFound(`image ${spec.imageId}`);
      if (state.current(image.status) !== 'available')
        throw state.incorrectState(`image ${spec.imageId} is still pending; wait for it to become available`);
      if (spec.clientToken !== undefined) {
        const earlier = [...state.instances.values()].find(
          (i) => i.tags['cellops:client-token'] === spec.clientToken,
        );
        if (earlier) return state.info(earlier);
      }
      const instanceId = state.newId('i');
      const az = state.subnets?.[spec.subnetId] ?? `${state.region}a`;
      const rootVolume = state.newId('vol');
      const counter = state.counter();
      const rec: InstanceRec = {
        instanceId,
        status: { state: 'pending', next: { state: 'running', at: clock.now() + delays.instanceStart } },
        availabilityZone: az,
        privateIp: `10.0.${Math.floor(counter / 250) % 250}.${(counter % 250) + 2}`,
        imageId: spec.imageId,
        tags: {
          ...spec.tags,
          ...(spec.clientToken !== undefined ? { 'cellops:client-token': spec.clientToken } : {}),
        },
        devices: new Map([['/dev/xvda', rootVolume]]),
        hostKeys: [newHostKey()],
        bootAt: clock.now() + delays.instanceStart,
      };
      state.instances.set(instanceId, rec);
      state.volumes.set(rootVolume, {
        volumeId: rootVolume,
        availabilityZone: az,
        status: { state: 'in-use' },
        attachment: { instanceId, device: '/dev/xvda' },
        tags: { ...spec.tags },
        ...copyFiles(image.files.get('/dev/xvda')),
      });
      return state.info(rec);
    },

    waitInstanceRunning: async (instanceId, wait) => {
      state.enter('waitInstanceRunning', [instanceId, { timeoutMs: wait.timeoutMs }]);
      const rec = state.getInstance(instanceId);
      await state.waitFor(
        `instance ${instanceId}`,
        'running',
        wait,
        () => state.current(rec.status) === 'running',
        () => {
          const s = state.current(rec.status);
          return s === 'terminated' || s === 'shutting-down' || s === 'stopping' ? s : undefined;
        },
      );
      return state.info(rec);
    },
  };
}
