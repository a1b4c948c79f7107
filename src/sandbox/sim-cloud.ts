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
 */
import { CellopsError, ExternalError, StepTimeoutError } from '../errors.js';
import type { Clock } from '../ports/clock.js';
import {
  RUN_ID_TAG,
  type Cloud,
  type InstanceInfo,
  type InstanceState,
  type TaggedResource,
  type Tags,
  type WaitOptions,
} from '../ports/cloud.js';

/** Simulated durations in milliseconds. */
export interface SimDelays {
  readonly instanceStart: number;
  readonly instanceStop: number;
  readonly snapshot: number;
  readonly volumeCreate: number;
  readonly volumeAttach: number;
  readonly image: number;
}

export const DEFAULT_SIM_DELAYS: SimDelays = {
  instanceStart: 20_000,
  instanceStop: 10_000,
  snapshot: 30_000,
  volumeCreate: 5_000,
  volumeAttach: 2_000,
  image: 45_000,
};

export interface SimInstanceSeed {
  readonly instanceId: string;
  readonly state?: 'running' | 'stopped';
  readonly availabilityZone?: string;
  readonly privateIp?: string;
  readonly publicIp?: string;
  readonly imageId?: string;
  readonly tags?: Tags;
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

/** What is on the volumes the sim does not hold the contents of (mounted on simulated hosts). */
export interface SimDisks {
  /** The files on a volume now, relative to its root, or undefined when no one has it mounted. */
  read(volumeId: string): Readonly<Record<string, string>> | undefined;
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

/** One call made on the sim, for tests that assert order and arguments. */
export interface SimCall {
  readonly op: keyof Cloud;
  readonly args: readonly unknown[];
  readonly at: number;
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
  readonly instances: readonly (InstanceInfo & { readonly volumes: readonly string[] })[];
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
}

type Files = Readonly<Record<string, string>>;

/** A state that becomes `next` at time `at`. */
interface Timed<S extends string> {
  state: S;
  next?: { state: S; at: number };
}

interface InstanceRec {
  instanceId: string;
  status: Timed<InstanceState>;
  availabilityZone: string;
  privateIp?: string;
  publicIp?: string;
  imageId?: string;
  tags: Tags;
  devices: Map<string, string>; // device -> volumeId
}

interface VolumeRec {
  volumeId: string;
  availabilityZone: string;
  status: Timed<'creating' | 'available' | 'in-use'>;
  snapshotId?: string;
  attachment?: { instanceId: string; device: string };
  tags: Tags;
  /** What it was made with; a mounted volume's files are the host's (`disks`). */
  files?: Files;
}

interface SnapshotRec {
  snapshotId: string;
  volumeId: string;
  description: string;
  startedAt: number;
  status: Timed<'pending' | 'completed'>;
  tags: Tags;
  /** The volume's files at creation. */
  files?: Files;
}

interface ImageRec {
  imageId: string;
  name: string;
  description: string;
  status: Timed<'pending' | 'available'>;
  creationDate: string;
  sourceInstanceId?: string;
  devices: string[];
  tags: Tags;
  /** Device → its files at creation. */
  files: Map<string, Files>;
}

export function createSimCloud(options: SimCloudOptions): SimCloud {
  const { clock } = options;
  const region = options.region ?? 'sim-region-1';
  const delays: SimDelays = { ...DEFAULT_SIM_DELAYS, ...options.delays };
  const pollMs = options.pollMs ?? 1000;
  const instances = new Map<string, InstanceRec>();
  const volumes = new Map<string, VolumeRec>();
  const snapshots = new Map<string, SnapshotRec>();
  const images = new Map<string, ImageRec>();
  const addresses = new Map<string, { allocationId: string; publicIp: string; instanceId?: string }>();
  const calls: SimCall[] = [];
  const faults = new Map<keyof Cloud, Error[]>();
  let counter = 0;

  const newId = (prefix: string): string => {
    counter += 1;
    return `${prefix}-${counter.toString(16).padStart(17, '0')}`;
  };

  const current = <S extends string>(t: Timed<S>): S => {
    if (t.next && clock.now() >= t.next.at) {
      t.state = t.next.state;
      delete t.next;
    }
    return t.state;
  };

  const notFound = (what: string): ExternalError =>
    new ExternalError(
      'ec2_not_found',
      `EC2 says ${what} does not exist in ${region}: check the id in the configuration and that aws.region is the region it lives in.`,
    );

  const incorrectState = (message: string): ExternalError =>
    new ExternalError('ec2_incorrect_state', message);

  const requireRunTag = (action: string, tags: Tags): void => {
    if (!tags[RUN_ID_TAG])
      throw new CellopsError(
        'untagged_resource',
        `${action} was called without the ${RUN_ID_TAG} tag; every resource cellops creates must carry its run id.`,
      );
  };

  /** Records the call and throws an injected fault, if one is queued. */
  const enter = (op: keyof Cloud, args: unknown[]): void => {
    calls.push({ op, args, at: clock.now() });
    const queued = faults.get(op);
    const fault = queued?.shift();
    if (fault) throw fault;
  };

  const getInstance = (id: string): InstanceRec => {
    const rec = instances.get(id);
    if (!rec) throw notFound(`instance ${id}`);
    return rec;
  };

  const info = (rec: InstanceRec): InstanceInfo => ({
    instanceId: rec.instanceId,
    state: current(rec.status),
    availabilityZone: rec.availabilityZone,
    ...(rec.privateIp !== undefined ? { privateIp: rec.privateIp } : {}),
    ...(rec.publicIp !== undefined ? { publicIp: rec.publicIp } : {}),
    ...(rec.imageId !== undefined ? { imageId: rec.imageId } : {}),
    tags: { ...rec.tags },
  });

  /** Polls `done` on the clock until it holds, the timeout passes or the signal aborts. */
  const waitFor = async (
    what: string,
    target: string,
    wait: WaitOptions,
    done: () => boolean,
    failed?: () => string | undefined,
  ): Promise<void> => {
    const deadline = clock.now() + wait.timeoutMs;
    for (;;) {
      wait.signal?.throwIfAborted();
      if (done()) return;
      const failure = failed?.();
      if (failure !== undefined)
        throw new ExternalError(
          'ec2_wait_failed',
          `${what} in ${region} reached a state from which it cannot become ${target}: last state seen: ${failure}.`,
        );
      const remaining = deadline - clock.now();
      if (remaining <= 0)
        throw new StepTimeoutError(
          `${what} in ${region} was not ${target} after ${Math.round(wait.timeoutMs / 1000)} s; check it in the EC2 console, then resume the run to wait again.`,
        );
      await clock.sleep(Math.min(pollMs, remaining), wait.signal);
    }
  };

  const addVolume = (rec: VolumeRec): void => {
    volumes.set(rec.volumeId, rec);
  };

  // Seed the inventory.
  for (const seed of options.seed?.instances ?? []) {
    const rec: InstanceRec = {
      instanceId: seed.instanceId,
      status: { state: seed.state ?? 'running' },
      availabilityZone: seed.availabilityZone ?? `${region}a`,
      ...(seed.privateIp !== undefined ? { privateIp: seed.privateIp } : {}),
      ...(seed.publicIp !== undefined ? { publicIp: seed.publicIp } : {}),
      ...(seed.imageId !== undefined ? { imageId: seed.imageId } : {}),
      tags: { ...seed.tags },
      devices: new Map(),
    };
    for (const v of seed.volumes ?? []) {
      rec.devices.set(v.device, v.volumeId);
      addVolume({
        volumeId: v.volumeId,
        availabilityZone: rec.availabilityZone,
        status: { state: 'in-use' },
        attachment: { instanceId: rec.instanceId, device: v.device },
        tags: {},
      });
    }
    instances.set(rec.instanceId, rec);
  }
  for (const a of options.seed?.addresses ?? []) {
    addresses.set(a.allocationId, { ...a });
    if (a.instanceId) {
      const holder = instances.get(a.instanceId);
      if (holder) holder.publicIp = a.publicIp;
    }
  }
  for (const image of options.seed?.images ?? []) {
    images.set(image.imageId, {
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

  const volumeFiles = (volumeId: string): Files | undefined =>
    options.disks?.read(volumeId) ?? volumes.get(volumeId)?.files;
  const copy = (files: Files | undefined): { files?: Files } =>
    files === undefined ? {} : { files: { ...files } };

  const sim: SimCloud = {
    calls,

    failNext: (op, error) => {
      const queued = faults.get(op) ?? [];
      queued.push(error);
      faults.set(op, queued);
    },

    setInstanceState: (instanceId, state) => {
      getInstance(instanceId).status = { state };
    },

    volumeFiles: (volumeId) => {
      const files = volumeFiles(volumeId);
      return files === undefined ? undefined : { ...files };
    },

    inventory: () => ({
      instances: [...instances.values()].map((rec) => ({ ...info(rec), volumes: [...rec.devices.values()] })),
      volumes: [...volumes.values()].map((v) => ({
        volumeId: v.volumeId,
        availabilityZone: v.availabilityZone,
        state: current(v.status),
        ...(v.snapshotId !== undefined ? { snapshotId: v.snapshotId } : {}),
        ...(v.attachment ? { attachment: { ...v.attachment } } : {}),
        tags: { ...v.tags },
      })),
      snapshots: [...snapshots.values()].map((s) => ({
        snapshotId: s.snapshotId,
        volumeId: s.volumeId,
        description: s.description,
        state: current(s.status),
        tags: { ...s.tags },
      })),
      images: [...images.values()].map((i) => ({
        imageId: i.imageId,
        name: i.name,
        state: current(i.status),
        creationDate: i.creationDate,
        ...(i.sourceInstanceId !== undefined ? { sourceInstanceId: i.sourceInstanceId } : {}),
        devices: [...i.devices],
        tags: { ...i.tags },
      })),
      addresses: [...addresses.values()].map((a) => ({ ...a })),
    }),

    describeInstance: async (instanceId) => {
      enter('describeInstance', [instanceId]);
      const rec = instances.get(instanceId);
      return rec ? info(rec) : undefined;
    },

    describeInstanceVolumes: async (instanceId) => {
      enter('describeInstanceVolumes', [instanceId]);
      const rec = getInstance(instanceId);
      return [...rec.devices.entries()].map(([device, volumeId]) => ({ volumeId, device }));
    },

    stopInstance: async (instanceId, opts = {}) => {
      enter('stopInstance', [instanceId, opts]);
      const rec = getInstance(instanceId);
      const state = current(rec.status);
      if (state === 'terminated' || state === 'shutting-down')
        throw incorrectState(`instance ${instanceId} is ${state} and cannot be stopped`);
      if (state === 'stopped' || state === 'stopping') return;
      rec.status = { state: 'stopping', next: { state: 'stopped', at: clock.now() + delays.instanceStop } };
    },

    waitInstanceStopped: async (instanceId, wait) => {
      enter('waitInstanceStopped', [instanceId, { timeoutMs: wait.timeoutMs }]);
      const rec = getInstance(instanceId);
      await waitFor(
        `instance ${instanceId}`,
        'stopped',
        wait,
        () => current(rec.status) === 'stopped',
        () => {
          const s = current(rec.status);
          return s === 'pending' || s === 'terminated' ? s : undefined;
        },
      );
    },

    runInstance: async (spec) => {
      enter('runInstance', [spec]);
      requireRunTag('RunInstances', spec.tags);
      const image = images.get(spec.imageId);
      if (!image) throw notFound(`image ${spec.imageId}`);
      if (current(image.status) !== 'available')
        throw incorrectState(`image ${spec.imageId} is still pending; wait for it to become available`);
      if (spec.clientToken !== undefined) {
        const earlier = [...instances.values()].find(
          (i) => i.tags['cellops:client-token'] === spec.clientToken,
        );
        if (earlier) return info(earlier);
      }
      const instanceId = newId('i');
      const az = options.seed?.subnets?.[spec.subnetId] ?? `${region}a`;
      const rootVolume = newId('vol');
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
      };
      instances.set(instanceId, rec);
      addVolume({
        volumeId: rootVolume,
        availabilityZone: az,
        status: { state: 'in-use' },
        attachment: { instanceId, device: '/dev/xvda' },
        tags: { ...spec.tags },
        ...copy(image.files.get('/dev/xvda')),
      });
      return info(rec);
    },

    waitInstanceRunning: async (instanceId, wait) => {
      enter('waitInstanceRunning', [instanceId, { timeoutMs: wait.timeoutMs }]);
      const rec = getInstance(instanceId);
      await waitFor(
        `instance ${instanceId}`,
        'running',
        wait,
        () => current(rec.status) === 'running',
        () => {
          const s = current(rec.status);
          return s === 'terminated' || s === 'shutting-down' || s === 'stopping' ? s : undefined;
        },
      );
      return info(rec);
    },

    createSnapshot: async (volumeId, description, tags) => {
      enter('createSnapshot', [volumeId, description, tags]);
      requireRunTag('CreateSnapshot', tags);
      if (!volumes.has(volumeId)) throw notFound(`volume ${volumeId}`);
      const snapshotId = newId('snap');
      snapshots.set(snapshotId, {
        snapshotId,
        volumeId,
        description,
        startedAt: clock.now(),
        status: { state: 'pending', next: { state: 'completed', at: clock.now() + delays.snapshot } },
        tags: { ...tags },
        // Point-in-time: what is on the volume now, whatever happens to it while the copy completes.
        ...copy(volumeFiles(volumeId)),
      });
      return { snapshotId };
    },

    describeSnapshot: async (snapshotId) => {
      enter('describeSnapshot', [snapshotId]);
      const snap = snapshots.get(snapshotId);
      if (!snap) return undefined;
      const state = current(snap.status);
      const elapsed = clock.now() - snap.startedAt;
      const pct = state === 'completed' ? 100 : Math.min(99, Math.floor((elapsed / delays.snapshot) * 100));
      return { state, progress: `${pct}%` };
    },

    waitSnapshotCompleted: async (snapshotId, wait) => {
      enter('waitSnapshotCompleted', [snapshotId, { timeoutMs: wait.timeoutMs }]);
      const snap = snapshots.get(snapshotId);
      if (!snap) throw notFound(`snapshot ${snapshotId}`);
      await waitFor(`snapshot ${snapshotId}`, 'completed', wait, () => current(snap.status) === 'completed');
    },

    createVolume: async (snapshotId, availabilityZone, tags) => {
      enter('createVolume', [snapshotId, availabilityZone, tags]);
      requireRunTag('CreateVolume', tags);
      const snap = snapshots.get(snapshotId);
      if (!snap) throw notFound(`snapshot ${snapshotId}`);
      if (current(snap.status) !== 'completed')
        throw incorrectState(`snapshot ${snapshotId} is still pending; wait for it to complete first`);
      const volumeId = newId('vol');
      addVolume({
        volumeId,
        availabilityZone,
        status: { state: 'creating', next: { state: 'available', at: clock.now() + delays.volumeCreate } },
        snapshotId,
        tags: { ...tags },
        ...copy(snap.files),
      });
      return { volumeId };
    },

    waitVolumeAvailable: async (volumeId, wait) => {
      enter('waitVolumeAvailable', [volumeId, { timeoutMs: wait.timeoutMs }]);
      const vol = volumes.get(volumeId);
      if (!vol) throw notFound(`volume ${volumeId}`);
      await waitFor(`volume ${volumeId}`, 'available', wait, () => current(vol.status) === 'available');
    },

    attachVolume: async (volumeId, instanceId, device) => {
      enter('attachVolume', [volumeId, instanceId, device]);
      const vol = volumes.get(volumeId);
      if (!vol) throw notFound(`volume ${volumeId}`);
      const rec = getInstance(instanceId);
      if (current(vol.status) !== 'available')
        throw incorrectState(`volume ${volumeId} is ${current(vol.status)}, not available`);
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
      enter('waitVolumeInUse', [volumeId, { timeoutMs: wait.timeoutMs }]);
      const vol = volumes.get(volumeId);
      if (!vol) throw notFound(`volume ${volumeId}`);
      await waitFor(`volume ${volumeId}`, 'in use', wait, () => current(vol.status) === 'in-use');
    },

    associateAddress: async (allocationId, instanceId) => {
      enter('associateAddress', [allocationId, instanceId]);
      const address = addresses.get(allocationId);
      if (!address) throw notFound(`Elastic IP ${allocationId}`);
      const rec = getInstance(instanceId);
      if (address.instanceId && address.instanceId !== instanceId) {
        const previous = instances.get(address.instanceId);
        if (previous) delete previous.publicIp;
      }
      address.instanceId = instanceId;
      rec.publicIp = address.publicIp;
      return { associationId: `eipassoc-${allocationId.replace(/^eipalloc-/, '')}-${counter}` };
    },

    describeAddress: async (allocationId) => {
      enter('describeAddress', [allocationId]);
      const address = addresses.get(allocationId);
      if (!address) return undefined;
      return {
        publicIp: address.publicIp,
        ...(address.instanceId !== undefined ? { instanceId: address.instanceId } : {}),
      };
    },

    createImage: async (spec) => {
      enter('createImage', [spec]);
      requireRunTag('CreateImage', spec.tags);
      const rec = getInstance(spec.instanceId);
      const imageId = newId('ami');
      const captured = new Map<string, Files>();
      for (const [device, volumeId] of rec.devices) {
        const files = spec.excludeDevices.includes(device) ? undefined : volumeFiles(volumeId);
        if (files !== undefined) captured.set(device, { ...files });
      }
      images.set(imageId, {
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
      enter('describeImage', [imageId]);
      const image = images.get(imageId);
      if (!image) return undefined;
      return { state: current(image.status), creationDate: image.creationDate, name: image.name };
    },

    waitImageAvailable: async (imageId, wait) => {
      enter('waitImageAvailable', [imageId, { timeoutMs: wait.timeoutMs }]);
      const image = images.get(imageId);
      if (!image) throw notFound(`image ${imageId}`);
      await waitFor(`image ${imageId}`, 'available', wait, () => current(image.status) === 'available');
    },

    findTagged: async (runId) => {
      enter('findTagged', [runId]);
      const found: TaggedResource[] = [];
      for (const rec of instances.values())
        if (rec.tags[RUN_ID_TAG] === runId)
          found.push({ kind: 'instance', id: rec.instanceId, state: current(rec.status) });
      for (const vol of volumes.values())
        if (vol.tags[RUN_ID_TAG] === runId)
          found.push({ kind: 'volume', id: vol.volumeId, state: current(vol.status) });
      for (const snap of snapshots.values())
        if (snap.tags[RUN_ID_TAG] === runId)
          found.push({ kind: 'snapshot', id: snap.snapshotId, state: current(snap.status) });
      for (const image of images.values())
        if (image.tags[RUN_ID_TAG] === runId)
          found.push({ kind: 'image', id: image.imageId, state: current(image.status) });
      return found;
    },
  };
  return sim;
}
