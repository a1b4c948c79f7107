/**
 * An in-memory EC2 behind the Cloud port, for runbook unit tests and the sandbox. It keeps EC2's rules
 * that runbooks trip over — a snapshot must complete before a volume is made from it, a volume attaches
 * only in its instance's zone, an Elastic IP moves off the instance that held it — and its slow parts take
 * simulated time on the injected Clock (states are computed from the clock when read, so a ManualClock
 * drives them without timers).
 *
 * Volumes have contents when `disks` says what is on them (the simulated hosts, for volumes mounted
 * there): a snapshot captures its volume's files when it is created (EBS snapshots are point-in-time),
 * a volume created from it carries them, an image captures its devices' files and an instance launched
 * from it gets the root device's as its root volume. sim-machines.ts links this to sim-hosts.ts.
 *
 * This module assembles the sim from its parts: the shared state and EC2 rules (sim-cloud-state.ts),
 * instances, snapshots and volumes, images, Elastic IPs, and network interfaces and clean-up
 * (sim-cloud-<part>.ts).
 */
import type { Clock } from '../ports/clock.js';
import {
  RUN_ID_TAG,
  type Cloud,
  type InstanceInfo,
  type InstanceState,
  type TaggedResource,
  type Tags,
} from '../ports/cloud.js';
import { createSimCloudAddresses } from './sim-cloud-addresses.js';
import { createSimCloudImages } from './sim-cloud-images.js';
import { createSimCloudConsole } from './sim-cloud-console.js';
import { createSimCloudNetwork } from './sim-cloud-network.js';
import { createSimCloudInstances } from './sim-cloud-instances.js';
import {
  createSimCloudState,
  DEFAULT_SIM_DELAYS,
  type InstanceRec,
  type SimCall,
  type SimCloudState,
  type SimDelays,
  type SimDisks,
} from './sim-cloud-state.js';
import { createSimCloudVolumes } from './sim-cloud-volumes.js';

export { DEFAULT_SIM_DELAYS } from './sim-cloud-state.js';
export type { SimCall, SimDelays, SimDisks } from './sim-cloud-state.js';

export interface SimInstanceSeed {
  readonly instanceId: string;
  readonly state?: 'running' | 'stopped';
  readonly availabilityZone?: string;
  readonly privateIp?: string;
  readonly publicIp?: string;
  readonly imageId?: string;
  readonly tags?: Tags;
  /** Secondary private IPs on its primary network interface. */
  readonly secondaryIps?: readonly string[];
  /** Volumes attached at start; each is created in the inventory too. */
  readonly volumes?: ReadonlyArray<{ readonly volumeId: string; readonly device: string }>;
}

export interface SimCloudSeed {
  readonly instances?: readonly SimInstanceSeed[];
  readonly addresses?: ReadonlyArray<{ allocationId: string; publicIp: string; instanceId?: string }>;
  readonly images?: ReadonlyArray<{
    imageId: string;
    name: string;
    creationDate?: string;
    tags?: Tags;
    /** The root device's (/dev/xvda) files, relative to `/`; an instance launched from the image starts with them. */
    rootFiles?: Readonly<Record<string, string>>;
  }>;
  /** Subnet id to availability zone, for launches; unknown subnets land in `<region>a`. */
  readonly subnets?: Readonly<Record<string, string>>;
}

export interface SimCloudOptions {
  readonly clock: Clock;
  /** Contents of mounted volumes, for snapshots and images. Default: volumes have no contents. */
  readonly disks?: SimDisks;
  readonly region?: string;
  readonly delays?: Partial<SimDelays>;
  /** How often waits look again, in simulated milliseconds. Default 1000. */
  readonly pollMs?: number;
  readonly seed?: SimCloudSeed;
}

export interface SimVolume {
  readonly volumeId: string;
  readonly availabilityZone: string;
  readonly state: 'creating' | 'available' | 'in-use';
  readonly snapshotId?: string;
  readonly attachment?: { readonly instanceId: string; readonly device: string };
  readonly tags: Tags;
}

export interface SimSnapshot {
  readonly snapshotId: string;
  readonly volumeId: string;
  readonly description: string;
  readonly state: 'pending' | 'completed';
  readonly tags: Tags;
}

export interface SimImage {
  readonly imageId: string;
  readonly name: string;
  readonly state: 'pending' | 'available';
  readonly creationDate: string;
  readonly sourceInstanceId?: string;
  /** Devices of the source instance that went into the image (NoDevice ones left out). */
  readonly devices: readonly string[];
  readonly tags: Tags;
}

export interface SimInventory {
  readonly instances: readonly (InstanceInfo & {
    readonly volumes: readonly string[];
    readonly secondaryIps: readonly string[];
  })[];
  readonly volumes: readonly SimVolume[];
  readonly snapshots: readonly SimSnapshot[];
  readonly images: readonly SimImage[];
  readonly addresses: ReadonlyArray<{ allocationId: string; publicIp: string; instanceId?: string }>;
}

export interface SimCloud extends Cloud {
  /** A copy of everything the sim holds, with states as of the clock's now. */
  inventory(): SimInventory;
  /** Every port call made so far, in order. */
  readonly calls: readonly SimCall[];
  /** The next call of `op` rejects with `error` (for failure-midway tests and sandbox drills). */
  failNext(op: keyof Cloud, error: Error): void;
  /** Forces an instance's state, e.g. to simulate a host that died or was stopped out of band. */
  setInstanceState(instanceId: string, state: InstanceState): void;
  /**
   * The files on a volume, relative to its root: what `disks` reads while a host has it mounted, else
   * what it was made with (from a snapshot or an image); undefined when neither knows.
   */
  volumeFiles(volumeId: string): Readonly<Record<string, string>> | undefined;
  /** The SSH host keys a launched instance has (what its console prints once booted); none for seeded ones. */
  hostKeysOf(instanceId: string): readonly string[];
}

export function createSimCloud(options: SimCloudOptions): SimCloud {
  const state = createSimCloudState({
    clock: options.clock,
    region: options.region ?? 'sim-region-1',
    delays: { ...DEFAULT_SIM_DELAYS, ...options.delays },
    pollMs: options.pollMs ?? 1000,
    ...(options.disks === undefined ? {} : { disks: options.disks }),
    ...(options.seed?.subnets === undefined ? {} : { subnets: options.seed.subnets }),
  });
  if (options.seed) seedInventory(state, options.seed);

  return {
    calls: state.calls,

    failNext: (op, error) => {
      const queued = state.faults.get(op) ?? [];
      queued.push(error);
      state.faults.set(op, queued);
    },

    setInstanceState: (instanceId, instanceState) => {
      state.getInstance(instanceId).status = { state: instanceState };
    },

    volumeFiles: (volumeId) => {
      const files = state.volumeFiles(volumeId);
      return files === undefined ? undefined : { ...files };
    },

    inventory: () => inventoryOf(state),
    ...createSimCloudInstances(state),
    ...createSimCloudVolumes(state),
    ...createSimCloudAddresses(state),
    ...createSimCloudImages(state),
    ...createSimCloudConsole(state),

    hostKeysOf: (instanceId) => state.instances.get(instanceId)?.hostKeys ?? [],
    ...createSimCloudNetwork(state),

    findTagged: async (runId) => {
      state.enter('findTagged', [runId]);
      return taggedWith(state, runId);
    },
  };
}

function seedInventory(state: SimCloudState, seed: SimCloudSeed): void {
  const { clock, region } = state;
  for (const instance of seed.instances ?? []) {
    const rec: InstanceRec = {
      instanceId: instance.instanceId,
      status: { state: instance.state ?? 'running' },
      availabilityZone: instance.availabilityZone ?? `${region}a`,
      ...(instance.privateIp !== undefined ? { privateIp: instance.privateIp } : {}),
      ...(instance.publicIp !== undefined ? { publicIp: instance.publicIp } : {}),
      ...(instance.imageId !== undefined ? { imageId: instance.imageId } : {}),
      tags: { ...instance.tags },
      devices: new Map(),
      ...(instance.secondaryIps === undefined ? {} : { secondaryIps: [...instance.secondaryIps] }),
    };
    for (const v of instance.volumes ?? []) {
      rec.devices.set(v.device, v.volumeId);
      state.volumes.set(v.volumeId, {
        volumeId: v.volumeId,
        availabilityZone: rec.availabilityZone,
        status: { state: 'in-use' },
        attachment: { instanceId: rec.instanceId, device: v.device },
        tags: {},
      });
    }
    state.instances.set(rec.instanceId, rec);
  }
  for (const a of seed.addresses ?? []) {
    state.addresses.set(a.allocationId, { ...a });
    if (a.instanceId) {
      const holder = state.instances.get(a.instanceId);
      if (holder) holder.publicIp = a.publicIp;
    }
  }
  for (const image of seed.images ?? []) {
    state.images.set(image.imageId, {
      imageId: image.imageId,
      name: image.name,
      description: image.name,
      status: { state: 'available' },
      creationDate: image.creationDate ?? new Date(clock.now()).toISOString(),
      devices: ['/dev/xvda'],
      tags: { ...image.tags },
      files: new Map(image.rootFiles === undefined ? [] : [['/dev/xvda', { ...image.rootFiles }]]),
    });
  }
}

function inventoryOf(state: SimCloudState): SimInventory {
  return {
    instances: [...state.instances.values()].map((rec) => ({
      ...state.info(rec),
      volumes: [...rec.devices.values()],
      secondaryIps: [...(rec.secondaryIps ?? [])],
    })),
    volumes: [...state.volumes.values()].map((v) => ({
      volumeId: v.volumeId,
      availabilityZone: v.availabilityZone,
      state: state.current(v.status),
      ...(v.snapshotId !== undefined ? { snapshotId: v.snapshotId } : {}),
      ...(v.attachment ? { attachment: { ...v.attachment } } : {}),
      tags: { ...v.tags },
    })),
    snapshots: [...state.snapshots.values()].map((s) => ({
      snapshotId: s.snapshotId,
      volumeId: s.volumeId,
      description: s.description,
      state: state.current(s.status),
      tags: { ...s.tags },
    })),
    images: [...state.images.values()].map((i) => ({
      imageId: i.imageId,
      name: i.name,
      state: state.current(i.status),
      creationDate: i.creationDate,
      ...(i.sourceInstanceId !== undefined ? { sourceInstanceId: i.sourceInstanceId } : {}),
      devices: [...i.devices],
      tags: { ...i.tags },
    })),
    addresses: [...state.addresses.values()].map((a) => ({ ...a })),
  };
}

/** The resources that carry the run's id tag, whatever their state. */
function taggedWith(state: SimCloudState, runId: string): TaggedResource[] {
  const found: TaggedResource[] = [];
  for (const rec of state.instances.values())
    if (rec.tags[RUN_ID_TAG] === runId)
      found.push({ kind: 'instance', id: rec.instanceId, state: state.current(rec.status) });
  for (const vol of state.volumes.values())
    if (vol.tags[RUN_ID_TAG] === runId)
      found.push({ kind: 'volume', id: vol.volumeId, state: state.current(vol.status) });
  for (const snap of state.snapshots.values())
    if (snap.tags[RUN_ID_TAG] === runId)
      found.push({ kind: 'snapshot', id: snap.snapshotId, state: state.current(snap.status) });
  for (const image of state.images.values())
    if (image.tags[RUN_ID_TAG] === runId)
      found.push({ kind: 'image', id: image.imageId, state: state.current(image.status) });
  return found;
}
