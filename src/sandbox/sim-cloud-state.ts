/**
 * What the parts of the simulated EC2 (sim-cloud-instances.ts, sim-cloud-volumes.ts, sim-cloud-images.ts,
 * sim-cloud-addresses.ts) share: the inventory, the call log and injected faults, ids, and the EC2 rules
 * and errors they all apply. States are `Timed`: read through `current`, they move on with the clock.
 */
import { CellopsError, ExternalError, StepTimeoutError } from '../errors.js';
import type { Clock } from '../ports/clock.js';
import {
  RUN_ID_TAG,
  type Cloud,
  type InstanceInfo,
  type InstanceState,
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
  /** From running until cloud-init has printed the SSH host keys on the console. */
  readonly consoleKeys: number;
}

export const DEFAULT_SIM_DELAYS: SimDelays = {
  instanceStart: 20_000,
  instanceStop: 10_000,
  snapshot: 30_000,
  volumeCreate: 5_000,
  volumeAttach: 2_000,
  image: 45_000,
  consoleKeys: 10_000,
};

/** What is on the volumes the sim does not hold the contents of (mounted on simulated hosts). */
export interface SimDisks {
  /** The files on a volume now, relative to its root, or undefined when no one has it mounted. */
  read(volumeId: string): Readonly<Record<string, string>> | undefined;
}

/** One call made on the sim, for tests that assert order and arguments. */
export interface SimCall {
  readonly op: keyof Cloud;
  readonly args: readonly unknown[];
  readonly at: number;
}

export type Files = Readonly<Record<string, string>>;

/** A state that becomes `next` at time `at`. */
export interface Timed<S extends string> {
  state: S;
  next?: { state: S; at: number };
}

export interface InstanceRec {
  instanceId: string;
  status: Timed<InstanceState>;
  availabilityZone: string;
  privateIp?: string;
  publicIp?: string;
  imageId?: string;
  tags: Tags;
  devices: Map<string, string>; // device -> volumeId
  /** Launched instances: the SSH host keys (`<type> <base64>`) cloud-init prints once booted. */
  hostKeys?: readonly string[];
  /** When a launched instance becomes running (epoch ms on the sim's clock). */
  bootAt?: number;
  /** Secondary private IPs on its primary network interface (`eni-` + the instance id's suffix). */
  secondaryIps?: string[];
}

export interface VolumeRec {
  volumeId: string;
  availabilityZone: string;
  status: Timed<'creating' | 'available' | 'in-use'>;
  snapshotId?: string;
  attachment?: { instanceId: string; device: string };
  tags: Tags;
  /** What it was made with; a mounted volume's files are the host's (`disks`). */
  files?: Files;
}

export interface SnapshotRec {
  snapshotId: string;
  volumeId: string;
  description: string;
  startedAt: number;
  status: Timed<'pending' | 'completed'>;
  tags: Tags;
  /** The volume's files at creation. */
  files?: Files;
}

export interface ImageRec {
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

export interface AddressRec {
  allocationId: string;
  publicIp: string;
  instanceId?: string;
}

export interface SimCloudStateOptions {
  readonly clock: Clock;
  readonly region: string;
  readonly delays: SimDelays;
  readonly pollMs: number;
  readonly disks?: SimDisks;
  /** Subnet id to availability zone, for launches. */
  readonly subnets?: Readonly<Record<string, string>>;
}

export interface SimCloudState {
  readonly clock: Clock;
  readonly region: string;
  readonly delays: SimDelays;
  readonly subnets?: Readonly<Record<string, string>>;
  readonly instances: Map<string, InstanceRec>;
  readonly volumes: Map<string, VolumeRec>;
  readonly snapshots: Map<string, SnapshotRec>;
  readonly images: Map<string, ImageRec>;
  readonly addresses: Map<string, AddressRec>;
  readonly calls: SimCall[];
  /** Errors queued by failNext, per operation. */
  readonly faults: Map<keyof Cloud, Error[]>;
  /** How many ids were made; launches and associations derive addresses and ids from it. */
  counter(): number;
  newId(prefix: string): string;
  /** The state now, moving it on when its time has come. */
  current<S extends string>(t: Timed<S>): S;
  notFound(what: string): ExternalError;
  incorrectState(message: string): ExternalError;
  requireRunTag(action: string, tags: Tags): void;
  /** Records the call and throws an injected fault, if one is queued. */
  enter(op: keyof Cloud, args: unknown[]): void;
  getInstance(id: string): InstanceRec;
  info(rec: InstanceRec): InstanceInfo;
  /** Polls `done` on the clock until it holds, the timeout passes or the signal aborts. */
  waitFor(
    what: string,
    target: string,
    wait: WaitOptions,
    done: () => boolean,
    failed?: () => string | undefined,
  ): Promise<void>;
  /** Waits for a state that has no dead end on its way to `wanted` (see waitFor). */
  waitUntil<S extends string>(
    what: string,
    target: string,
    wait: WaitOptions,
    status: Timed<S>,
    wanted: S,
  ): Promise<void>;
  /** A volume's files: what `disks` reads while a host has it mounted, else what it was made with. */
  volumeFiles(volumeId: string): Files | undefined;
}

/** `{ files }` holding a copy of `files`, or nothing when there are none (for spreading into a record). */
export function copyFiles(files: Files | undefined): { files?: Files } {
  return files === undefined ? {} : { files: { ...files } };
}

export function createSimCloudState(options: SimCloudStateOptions): SimCloudState {
  const { clock, region, pollMs } = options;
  let counter = 0;

  const current = <S extends string>(t: Timed<S>): S => {
    if (t.next && clock.now() >= t.next.at) {
      t.state = t.next.state;
      delete t.next;
    }
    return t.state;
  };

  const state: SimCloudState = {
    clock,
    region,
    delays: options.delays,
    ...(options.subnets === undefined ? {} : { subnets: options.subnets }),
    instances: new Map(),
    volumes: new Map(),
    snapshots: new Map(),
    images: new Map(),
    addresses: new Map(),
    calls: [],
    faults: new Map(),
    counter: () => counter,

    newId(prefix) {
      counter += 1;
      return `${prefix}-${counter.toString(16).padStart(17, '0')}`;
    },

    current,

    notFound: (what) =>
      new ExternalError(
        'ec2_not_found',
        `EC2 says ${what} does not exist in ${region}: check the id in the configuration and that aws.region is the region it lives in.`,
      ),

    incorrectState: (message) => new ExternalError('ec2_incorrect_state', message),

    requireRunTag(action, tags) {
      if (!tags[RUN_ID_TAG])
        throw new CellopsError(
          'untagged_resource',
          `${action} was called without the ${RUN_ID_TAG} tag; every resource cellops creates must carry its run id.`,
        );
    },

    enter(op, args) {
      state.calls.push({ op, args, at: clock.now() });
      const queued = state.faults.get(op);
      const fault = queued?.shift();
      if (fault) throw fault;
    },

    getInstance(id) {
      const rec = state.instances.get(id);
      if (!rec) throw state.notFound(`instance ${id}`);
      return rec;
    },

    info: (rec) => ({
      instanceId: rec.instanceId,
      state: current(rec.status),
      availabilityZone: rec.availabilityZone,
      ...(rec.privateIp !== undefined ? { privateIp: rec.privateIp } : {}),
      ...(rec.publicIp !== undefined ? { publicIp: rec.publicIp } : {}),
      ...(rec.imageId !== undefined ? { imageId: rec.imageId } : {}),
      tags: { ...rec.tags },
    }),

    async waitFor(what, target, wait, done, failed) {
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
    },

    waitUntil: (what, target, wait, status, wanted) =>
      state.waitFor(what, target, wait, () => current(status) === wanted),

    volumeFiles: (volumeId) => options.disks?.read(volumeId) ?? state.volumes.get(volumeId)?.files,
  };
  return state;
}
