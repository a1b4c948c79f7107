/**
 * The simulated EC2's images: an image captures the files of its instance's devices (NoDevice ones left
 * out) when it is created and becomes available later; an instance launched from it starts with its root
 * device's files (sim-cloud-instances.ts).
 */
import type { Cloud } from '../ports/cloud.js';
import type { Files, SimCloudState } from './sim-cloud-state.js';

export type SimCloudImages = Pick<Cloud, 'createImage' | 'describeImage' | 'waitImageAvailable'>;

export function createSimCloudImages(state: SimCloudState): SimCloudImages {
  const { clock, delays } = state;
  return {
    createImage: async (spec) => {
      state.enter('createImage', [spec]);
      state.requireRunTag('CreateImage', spec.tags);
      const rec = state.getInstance(spec.instanceId);
      const imageId = state.newId('ami');
      const captured = new Map<string, Files>();
      for (const [device, volumeId] of rec.devices) {
        const files = spec.excludeDevices.includes(device) ? undefined : state.volumeFiles(volumeId);
        if (files !== undefined) captured.set(device, { ...files });
      }
      state.images.set(imageId, {
        imageId,
        name: spec.name,
        description: spec.description,
        status: { state: 'pending', next: { state: 'available', at: clock.now() + delays.image } },
        creationDate: new Date(clock.now()).toISOString(),
        sourceInstanceId: spec.instanceId,
        devices: [...rec.devices.keys()].filter((d) => !spec.excludeDevices.includes(d)),
        tags: { ...spec.tags },
        files: captured,
      });
      return { imageId };
    },

    describeImage: async (imageId) => {
      state.enter('describeImage', [imageId]);
      const image = state.images.get(imageId);
      if (!image) return undefined;
      return { state: state.current(image.status), creationDate: image.creationDate, name: image.name };
    },

    waitImageAvailable: async (imageId, wait) => {
      state.enter('waitImageAvailable', [imageId, { timeoutMs: wait.timeoutMs }]);
      const image = state.images.get(imageId);
      if (!image) throw state.notFound(`image ${imageId}`);
      await state.waitUntil(`image ${imageId}`, 'available', wait, image.status, 'available');
    },
  };
}
