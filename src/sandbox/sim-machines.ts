/**
 * Links the simulated EC2 (sim-cloud.ts) and the simulated hosts (sim-hosts.ts) into one world, each
 * seeing the other only through a narrow interface, both computed when asked (no timers, no events):
 * - the hosts ask which instances run (a stopped instance's host runs nothing and answers nothing), which
 *   were launched (each becomes a host at its private IP, booting its root volume, which came from its
 *   image), and what is on a volume attached to them (what `cellops-mount-data` mounts);
 * - the cloud asks the hosts what is on a volume they have mounted, when it snapshots or images it.
 *
 * What a launched machine runs (kcnd or kpnd, where, whether it starts at boot) is not on a disk in the
 * simulation, so `imageMachine` says it per image.
 */
import type { InstanceState } from '../ports/cloud.js';
import type { SimCloud, SimDisks, SimImage } from './sim-cloud.js';
import type { SimCell, SimLaunchedMachine, SimMachineImage, SimMachines } from './sim-hosts.js';

export interface SimWorldLinks {
  /** For createSimCell's `machines`. */
  readonly machines: SimMachines;
  /** For createSimCloud's `disks`. */
  readonly disks: SimDisks;
  /** Connects the two once both exist (each is created with the other's side of the link). */
  connect(parts: { cloud: SimCloud; cell: SimCell }): void;
}

const BOOTING_OR_UP: ReadonlySet<InstanceState> = new Set<InstanceState>(['pending', 'running']);

/**
 * The two sides of the link. `imageMachine` says what a machine launched from an image runs, or undefined
 * for an image the simulation cannot boot (its instances stay unreachable).
 */
export function createSimWorldLinks(
  imageMachine: (image: SimImage) => SimMachineImage | undefined,
): SimWorldLinks {
  let cloud: SimCloud | undefined;
  let cell: SimCell | undefined;

  const machines: SimMachines = {
    isRunning: (instanceId) => {
      const instance = cloud?.inventory().instances.find((i) => i.instanceId === instanceId);
      return instance === undefined ? undefined : instance.state === 'running';
    },
    launched: () => {
      if (!cloud) return [];
      const inventory = cloud.inventory();
      const out: SimLaunchedMachine[] = [];
      for (const instance of inventory.instances) {
        if (!BOOTING_OR_UP.has(instance.state) || instance.privateIp === undefined) continue;
        const image = inventory.images.find((i) => i.imageId === instance.imageId);
        const machine = image === undefined ? undefined : imageMachine(image);
        if (machine === undefined) continue;
        const root = inventory.volumes.find(
          (v) => v.attachment?.instanceId === instance.instanceId && v.attachment.device === '/dev/xvda',
        );
        const from = cloud;
        out.push({
          instanceId: instance.instanceId,
          privateIp: instance.privateIp,
          image: machine,
          ...(root === undefined
            ? {}
            : {
                rootVolumeId: root.volumeId,
                // The root volume holds what the image captured; the template only says what runs.
                rootFiles: () => from.volumeFiles(root.volumeId),
              }),
        });
      }
      return out;
    },
    attachedVolume: (instanceId, volumeId) => {
      if (!cloud) return undefined;
      const volume = cloud.inventory().volumes.find((v) => v.volumeId === volumeId);
      // The block device shows up once the attachment is complete.
      if (volume?.state !== 'in-use' || volume.attachment?.instanceId !== instanceId) return undefined;
      return cloud.volumeFiles(volumeId) ?? {};
    },
  };

  const disks: SimDisks = { read: (volumeId) => cell?.volumeFiles(volumeId) };

  return {
    machines,
    disks,
    connect(parts) {
      cloud = parts.cloud;
      cell = parts.cell;
    },
  };
}
