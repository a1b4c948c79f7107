/**
 * A local EC2 for tests: an HTTP server on loopback speaking the EC2 Query API as the real
 * @aws-sdk/client-ec2 sends it (form-encoded POST, `Action=…&Version=2016-11-15`, lists flattened as
 * `InstanceId.1`, `Filter.1.Value.1`, `TagSpecification.1.Tag.1.Key`), answering XML in the ec2 namespace
 * and errors as `<Response><Errors><Error><Code>…`. Point the real adapter at it with `endpoint` (or
 * AWS_ENDPOINT_URL_EC2), fake credentials and a region:
 *
 *   const ec2 = await startEc2Endpoint({ seed, hooks });
 *   const cloud = createEc2Cloud({ client: ec2.client(), clock, logger });
 *
 * It implements the calls the adapter makes (src/adapters/ec2/*) and the clean-up calls a run may make:
 * Describe{Instances,Snapshots,Volumes,Images,Addresses}, Stop/Start/Run/TerminateInstances,
 * CreateSnapshot, CreateVolume, AttachVolume, AssociateAddress, CreateImage, CreateTags, DeleteVolume,
 * DeleteSnapshot, GetConsoleOutput. States move over real time (pending → running after `instanceStart`
 * ms, …), computed when read. `calls` records every request with its parameters and when it was received
 * and answered. `hooks` let a test make the world act: the lab hands out a prepared host on RunInstances,
 * stops a host on StopInstances, images a PN's data directory on CreateSnapshot, attaches a loop device on
 * AttachVolume. GetConsoleOutput answers empty output for `consoleEmptyMs` after an instance is running (as
 * after boot), then cloud-init's host key block of the keys `hooks.launch` said the instance has.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EC2Client } from '@aws-sdk/client-ec2';
import type { SimDelays } from '../../src/sandbox/sim-cloud-state.js';

/** The sim's EC2 durations (ms of real time here), and how long a booted instance's console stays empty. */
export type Ec2EndpointDelays = Omit<SimDelays, 'consoleKeys'> & {
  /** After `running`, the console stays empty this long (cloud-init has not printed the keys yet). */
  readonly consoleEmptyMs: number;
};

export const DEFAULT_ENDPOINT_DELAYS: Ec2EndpointDelays = {
  instanceStart: 300,
  instanceStop: 300,
  snapshot: 500,
  volumeCreate: 200,
  volumeAttach: 200,
  image: 300,
  consoleEmptyMs: 2_000,
};

type Tags = Record<string, string>;

interface Timed {
  state: string;
  next?: { state: string; at: number };
}

interface Instance {
  readonly id: string;
  status: Timed;
  readonly az: string;
  readonly privateIp: string;
  readonly imageId: string;
  readonly tags: Tags;
  readonly devices: Map<string, string>;
  readonly hostKeys: readonly string[];
  readonly clientToken?: string;
  /** When the instance became (or becomes) running, for the console. */
  runningAt?: number;
}

interface Volume {
  readonly id: string;
  status: Timed;
  readonly az: string;
  readonly snapshotId?: string;
  attachment?: { instanceId: string; device: string };
  readonly tags: Tags;
}

interface Snapshot {
  readonly id: string;
  readonly volumeId: string;
  status: Timed;
  readonly description: string;
  readonly tags: Tags;
}

interface Image {
  readonly id: string;
  readonly name: string;
  status: Timed;
  readonly creationDate: string;
  readonly tags: Tags;
}

export interface EndpointSeed {
  readonly instances?: ReadonlyArray<{
    readonly instanceId: string;
    readonly privateIp: string;
    readonly availabilityZone?: string;
    readonly state?: 'running' | 'stopped';
    readonly devices?: Readonly<Record<string, string>>;
    readonly tags?: Tags;
  }>;
  readonly addresses?: ReadonlyArray<{ allocationId: string; publicIp: string; instanceId?: string }>;
  readonly images?: ReadonlyArray<{ imageId: string; name: string }>;
  /** Subnet id → availability zone of launches there (default `<region>a`). */
  readonly subnets?: Readonly<Record<string, string>>;
}

/** What RunInstances hands out: the machine's address and the SSH host keys it has (`<type> <base64>`). */
export interface LaunchedMachine {
  readonly privateIp: string;
  readonly hostKeys: readonly string[];
}

export interface EndpointHooks {
  /** RunInstances: which machine the new instance is. Default: a made-up address and no host keys. */
  launch?(request: { instanceId: string; imageId: string; subnetId: string }): LaunchedMachine;
  /** StopInstances (or TerminateInstances) of an instance: the machine goes down. */
  stop?(instanceId: string): Promise<void>;
  /** CreateSnapshot: capture what the volume holds now (point-in-time). */
  snapshot?(volumeId: string, snapshotId: string): Promise<void>;
  /** CreateVolume from a snapshot. */
  createVolume?(snapshotId: string, volumeId: string): Promise<void>;
  /** AttachVolume: the device appears on the instance. */
  attach?(volumeId: string, instanceId: string, device: string): Promise<void>;
  /** What the console shows once cloud-init printed; default the block of the launched host keys. */
  consoleKeys?(instanceId: string): readonly string[];
}

export interface RecordedCall {
  readonly action: string;
  readonly params: Readonly<Record<string, string>>;
  /** performance.now() when the request arrived and when it was answered. */
  readonly received: number;
  answered?: number;
  /** The error code answered, if any. */
  error?: string;
}

export interface Ec2Endpoint {
  readonly url: string;
  readonly region: string;
  readonly calls: readonly RecordedCall[];
  /** An EC2Client of the real SDK aimed at this endpoint, with fake credentials and no retries. */
  client(): EC2Client;
  /** Current state of an instance, volume, snapshot or address holder, for assertions. */
  instanceState(instanceId: string): string | undefined;
  addressHolder(allocationId: string): string | undefined;
  /** The next request with this action fails with this EC2 error code. */
  failNext(action: string, code: string, message?: string): void;
  close(): Promise<void>;
}

class Ec2Fault extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const NS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** An XML element; arrays become `<item>` lists, objects nest, undefined is left out. */
type XmlValue = string | number | boolean | undefined | XmlValue[] | { [key: string]: XmlValue };
function xml(name: string, value: XmlValue): string {
  if (value === undefined) return '';
  if (Array.isArray(value)) return `<${name}>${value.map((v) => xml('item', v)).join('')}</${name}>`;
  if (typeof value === 'object')
    return `<${name}>${Object.entries(value)
      .map(([k, v]) => xml(k, v))
      .join('')}</${name}>`;
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

function tagSet(tags: Tags): XmlValue[] {
  return Object.entries(tags).map(([key, value]) => ({ key, value }));
}

/** `prefix.1`, `prefix.2`, … in order. */
function list(params: Readonly<Record<string, string>>, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 1; params[`${prefix}.${i}`] !== undefined; i++) out.push(params[`${prefix}.${i}`] ?? '');
  return out;
}

/** The tags TagSpecification.N gives resources of `type`. */
function specTags(params: Readonly<Record<string, string>>, type: string): Tags {
  const tags: Tags = {};
  for (let n = 1; params[`TagSpecification.${n}.ResourceType`] !== undefined; n++) {
    if (params[`TagSpecification.${n}.ResourceType`] !== type) continue;
    for (let m = 1; params[`TagSpecification.${n}.Tag.${m}.Key`] !== undefined; m++)
      tags[params[`TagSpecification.${n}.Tag.${m}.Key`] ?? ''] =
        params[`TagSpecification.${n}.Tag.${m}.Value`] ?? '';
  }
  return tags;
}

/** Whether `tags` pass every `tag:<key>` filter of Filter.N (other filters are not used by cellops). */
function filtered(params: Readonly<Record<string, string>>, tags: Tags): boolean {
  for (let n = 1; params[`Filter.${n}.Name`] !== undefined; n++) {
    const name = params[`Filter.${n}.Name`] ?? '';
    const values = list(params, `Filter.${n}.Value`);
    if (!name.startsWith('tag:'))
      throw new Ec2Fault('InvalidParameterValue', `filter ${name} is not supported here`);
    if (!values.includes(tags[name.slice(4)] ?? '\u0000')) return false;
  }
  return true;
}

/** What cloud-init prints on a stock image's first boot, the key block last. */
export function cloudInitOutput(instanceId: string, privateIp: string, hostKeys: readonly string[]): string {
  const host = `ip-${privateIp.replaceAll('.', '-')}`;
  return [
    '[    0.000000] Linux version 6.1.0-28-cloud-amd64 (debian-kernel@lists.debian.org)',
    `[    9.120331] cloud-init[402]: Cloud-init v. 22.4.2 running 'init' at ${instanceId}. Up 9.10 seconds.`,
    '<14>Dec  2 12:00:01 ec2: #############################################################',
    '<14>Dec  2 12:00:01 ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----',
    '<14>Dec  2 12:00:01 ec2: -----END SSH HOST KEY FINGERPRINTS-----',
    '<14>Dec  2 12:00:01 ec2: #############################################################',
    '-----BEGIN SSH HOST KEY KEYS-----',
    ...hostKeys.map((k) => `${k} root@${host}`),
    '-----END SSH HOST KEY KEYS-----',
    `[   31.004122] cloud-init[611]: Cloud-init v. 22.4.2 finished at ${instanceId}. Up 31.00 seconds`,
    '',
  ].join('\r\n');
}

export async function startEc2Endpoint(
  options: {
    readonly region?: string;
    readonly seed?: EndpointSeed;
    readonly hooks?: EndpointHooks;
    readonly delays?: Partial<Ec2EndpointDelays>;
  } = {},
): Promise<Ec2Endpoint> {
  const region = options.region ?? 'ap-northeast-2';
  const delays = { ...DEFAULT_ENDPOINT_DELAYS, ...options.delays };
  const hooks = options.hooks ?? {};
  const world = createWorld(region, delays, hooks, options.seed ?? {});
  const calls: RecordedCall[] = [];
  const faults = new Map<string, { code: string; message: string }[]>();

  const server = createServer((req, res) => {
    void handle(req, res);
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const params = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    const action = params.Action ?? '';
    const call: RecordedCall = { action, params, received: performance.now() };
    calls.push(call);
    const requestId = randomBytes(8).toString('hex');
    let status = 200;
    let body: string;
    try {
      if (req.method !== 'POST') throw new Ec2Fault('InvalidAction', 'only POST is served here');
      const fault = faults.get(action)?.shift();
      if (fault) throw new Ec2Fault(fault.code, fault.message);
      const answer = await world.answer(action, params);
      body = `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${NS}"><requestId>${requestId}</requestId>${Object.entries(
        answer,
      )
        .map(([k, v]) => xml(k, v))
        .join('')}</${action}Response>`;
    } catch (error) {
      const fault = error instanceof Ec2Fault ? error : new Ec2Fault('InternalError', String(error), 500);
      status = fault.status;
      call.error = fault.code;
      body = `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${escapeXml(fault.code)}</Code><Message>${escapeXml(fault.message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`;
    }
    call.answered = performance.now();
    res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8' });
    res.end(body);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clients: EC2Client[] = [];
  return {
    url,
    region,
    calls,
    client() {
      const client = new EC2Client({
        region,
        endpoint: url,
        credentials: { accessKeyId: 'AKIDCELLOPSTEST', secretAccessKey: 'cellops-test-secret' },
        maxAttempts: 1,
      });
      clients.push(client);
      return client;
    },
    instanceState: (id) => world.instanceState(id),
    addressHolder: (id) => world.addresses.get(id)?.instanceId,
    failNext(action, code, message = code) {
      const queue = faults.get(action) ?? [];
      queue.push({ code, message });
      faults.set(action, queue);
    },
    async close() {
      for (const c of clients) c.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type Answer = Record<string, XmlValue>;

function createWorld(region: string, delays: Ec2EndpointDelays, hooks: EndpointHooks, seed: EndpointSeed) {
  const instances = new Map<string, Instance>();
  const volumes = new Map<string, Volume>();
  const snapshots = new Map<string, Snapshot>();
  const images = new Map<string, Image>();
  const addresses = new Map<string, { allocationId: string; publicIp: string; instanceId?: string }>();
  let counter = 0;
  const newId = (prefix: string) =>
    `${prefix}-0${randomBytes(4).toString('hex')}${(++counter).toString(16).padStart(8, '0')}`;
  const now = () => Date.now();
  const current = (t: Timed): string => {
    if (t.next && now() >= t.next.at) {
      t.state = t.next.state;
      delete t.next;
    }
    return t.state;
  };
  const later = (state: string, next: string, ms: number): Timed => ({
    state,
    next: { state: next, at: now() + ms },
  });

  for (const i of seed.instances ?? [])
    instances.set(i.instanceId, {
      id: i.instanceId,
      status: { state: i.state ?? 'running' },
      az: i.availabilityZone ?? `${region}a`,
      privateIp: i.privateIp,
      imageId: 'ami-0seeded',
      tags: { ...i.tags },
      devices: new Map(Object.entries(i.devices ?? {})),
      hostKeys: [],
    });
  for (const i of seed.instances ?? [])
    for (const [device, volumeId] of Object.entries(i.devices ?? {}))
      volumes.set(volumeId, {
        id: volumeId,
        status: { state: 'in-use' },
        az: i.availabilityZone ?? `${region}a`,
        attachment: { instanceId: i.instanceId, device },
        tags: {},
      });
  for (const a of seed.addresses ?? []) addresses.set(a.allocationId, { ...a });
  for (const image of seed.images ?? [])
    images.set(image.imageId, {
      id: image.imageId,
      name: image.name,
      status: { state: 'available' },
      creationDate: new Date().toISOString(),
      tags: {},
    });

  const instance = (id: string | undefined): Instance => {
    const found = instances.get(id ?? '');
    if (!found) throw new Ec2Fault('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    return found;
  };
  const volume = (id: string | undefined): Volume => {
    const found = volumes.get(id ?? '');
    if (!found) throw new Ec2Fault('InvalidVolume.NotFound', `The volume '${id}' does not exist.`);
    return found;
  };
  const snapshot = (id: string | undefined): Snapshot => {
    const found = snapshots.get(id ?? '');
    if (!found) throw new Ec2Fault('InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
    return found;
  };
  const instanceXml = (i: Instance): XmlValue => ({
    instanceId: i.id,
    imageId: i.imageId,
    instanceState: { name: current(i.status) },
    privateIpAddress: i.privateIp,
    placement: { availabilityZone: i.az },
    blockDeviceMapping: [...i.devices].map(([deviceName, volumeId]) => ({
      deviceName,
      ebs: { volumeId, status: 'attached' },
    })),
    tagSet: tagSet(i.tags),
  });
  const volumeXml = (v: Volume): XmlValue => {
    const state = current(v.status);
    return {
      volumeId: v.id,
      availabilityZone: v.az,
      snapshotId: v.snapshotId,
      status: state === 'attaching' ? 'available' : state,
      attachmentSet: v.attachment && state === 'in-use' ? [{ ...v.attachment, status: 'attached' }] : [],
      tagSet: tagSet(v.tags),
    };
  };
  const stateChange = (i: Instance, previous: string): XmlValue => ({
    instanceId: i.id,
    currentState: { name: current(i.status) },
    previousState: { name: previous },
  });

  const actions: Record<string, (p: Readonly<Record<string, string>>) => Promise<Answer> | Answer> = {
    DescribeInstances: (p) => {
      const ids = list(p, 'InstanceId');
      const found =
        ids.length > 0
          ? ids.map((id) => instance(id))
          : [...instances.values()].filter((i) => filtered(p, i.tags));
      return {
        reservationSet: found.map((i) => ({
          reservationId: `r-${i.id.slice(2)}`,
          instancesSet: [instanceXml(i)],
        })),
      };
    },
    RunInstances: (p) => {
      const imageId = p.ImageId ?? '';
      const image = images.get(imageId);
      if (!image || current(image.status) !== 'available')
        throw new Ec2Fault('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`);
      const token = p.ClientToken;
      const earlier =
        token === undefined ? undefined : [...instances.values()].find((i) => i.clientToken === token);
      if (earlier) return { reservationId: 'r-again', instancesSet: [instanceXml(earlier)] };
      const id = newId('i');
      const subnetId = p.SubnetId ?? '';
      const machine = hooks.launch?.({ instanceId: id, imageId, subnetId }) ?? {
        privateIp: `10.0.99.${(counter % 250) + 2}`,
        hostKeys: [],
      };
      const az = seed.subnets?.[subnetId] ?? `${region}a`;
      const root = newId('vol');
      const tags = specTags(p, 'instance');
      const rec: Instance = {
        id,
        status: later('pending', 'running', delays.instanceStart),
        az,
        privateIp: machine.privateIp,
        imageId,
        tags,
        devices: new Map([['/dev/xvda', root]]),
        hostKeys: machine.hostKeys,
        ...(token === undefined ? {} : { clientToken: token }),
        runningAt: now() + delays.instanceStart,
      };
      instances.set(id, rec);
      volumes.set(root, {
        id: root,
        status: { state: 'in-use' },
        az,
        attachment: { instanceId: id, device: '/dev/xvda' },
        tags: specTags(p, 'volume'),
      });
      return { reservationId: `r-${id.slice(2)}`, instancesSet: [instanceXml(rec)] };
    },
    StopInstances: async (p) => {
      const out: XmlValue[] = [];
      for (const id of list(p, 'InstanceId')) {
        const i = instance(id);
        const previous = current(i.status);
        if (previous === 'running' || previous === 'pending') {
          await hooks.stop?.(id);
          i.status = later('stopping', 'stopped', p.Force === 'true' ? 0 : delays.instanceStop);
        }
        out.push(stateChange(i, previous));
      }
      return { instancesSet: out };
    },
    StartInstances: (p) => ({
      instancesSet: list(p, 'InstanceId').map((id) => {
        const i = instance(id);
        const previous = current(i.status);
        if (previous === 'stopped') {
          i.status = later('pending', 'running', delays.instanceStart);
          i.runningAt = now() + delays.instanceStart;
        }
        return stateChange(i, previous);
      }),
    }),
    TerminateInstances: async (p) => {
      const out: XmlValue[] = [];
      for (const id of list(p, 'InstanceId')) {
        const i = instance(id);
        const previous = current(i.status);
        if (previous !== 'terminated') {
          if (previous === 'running' || previous === 'pending') await hooks.stop?.(id);
          i.status = later('shutting-down', 'terminated', delays.instanceStop);
        }
        out.push(stateChange(i, previous));
      }
      return { instancesSet: out };
    },
    CreateSnapshot: async (p) => {
      const v = volume(p.VolumeId);
      const id = newId('snap');
      await hooks.snapshot?.(v.id, id);
      snapshots.set(id, {
        id,
        volumeId: v.id,
        status: later('pending', 'completed', delays.snapshot),
        description: p.Description ?? '',
        tags: specTags(p, 'snapshot'),
      });
      return { snapshotId: id, volumeId: v.id, status: 'pending', progress: '0%' };
    },
    DescribeSnapshots: (p) => {
      const ids = list(p, 'SnapshotId');
      const found =
        ids.length > 0
          ? ids.map((id) => snapshot(id))
          : [...snapshots.values()].filter((s) => filtered(p, s.tags));
      return {
        snapshotSet: found.map((s) => {
          const state = current(s.status);
          return {
            snapshotId: s.id,
            volumeId: s.volumeId,
            status: state,
            progress: state === 'completed' ? '100%' : '42%',
            description: s.description,
            tagSet: tagSet(s.tags),
          };
        }),
      };
    },
    DeleteSnapshot: (p) => {
      snapshot(p.SnapshotId);
      snapshots.delete(p.SnapshotId ?? '');
      return { return: true };
    },
    CreateVolume: async (p) => {
      const s = snapshot(p.SnapshotId);
      if (current(s.status) !== 'completed')
        throw new Ec2Fault('IncorrectState', `Snapshot '${s.id}' is not 'completed'.`);
      const id = newId('vol');
      await hooks.createVolume?.(s.id, id);
      const az = p.AvailabilityZone ?? `${region}a`;
      volumes.set(id, {
        id,
        status: later('creating', 'available', delays.volumeCreate),
        az,
        snapshotId: s.id,
        tags: specTags(p, 'volume'),
      });
      return { volumeId: id, availabilityZone: az, snapshotId: s.id, status: 'creating' };
    },
    DescribeVolumes: (p) => {
      const ids = list(p, 'VolumeId');
      const found =
        ids.length > 0
          ? ids.map((id) => volume(id))
          : [...volumes.values()].filter((v) => filtered(p, v.tags));
      return { volumeSet: found.map(volumeXml) };
    },
    AttachVolume: async (p) => {
      const v = volume(p.VolumeId);
      const i = instance(p.InstanceId);
      if (current(v.status) !== 'available')
        throw new Ec2Fault('IncorrectState', `vol '${v.id}' is not 'available'.`);
      if (v.az !== i.az)
        throw new Ec2Fault(
          'InvalidVolume.ZoneMismatch',
          `The volume '${v.id}' is not in the same availability zone as instance '${i.id}'`,
        );
      const device = p.Device ?? '';
      await hooks.attach?.(v.id, i.id, device);
      v.attachment = { instanceId: i.id, device };
      v.status = later('attaching', 'in-use', delays.volumeAttach);
      i.devices.set(device, v.id);
      return { volumeId: v.id, instanceId: i.id, device, status: 'attaching' };
    },
    DeleteVolume: (p) => {
      const v = volume(p.VolumeId);
      if (current(v.status) === 'in-use')
        throw new Ec2Fault('VolumeInUse', `Volume ${v.id} is currently attached`);
      volumes.delete(v.id);
      return { return: true };
    },
    DescribeAddresses: (p) => {
      const ids = list(p, 'AllocationId');
      const found = ids.map((id) => {
        const a = addresses.get(id);
        if (!a)
          throw new Ec2Fault('InvalidAllocationID.NotFound', `The allocation ID '${id}' does not exist`);
        return a;
      });
      return {
        addressesSet: found.map((a) => ({
          allocationId: a.allocationId,
          publicIp: a.publicIp,
          domain: 'vpc',
          instanceId: a.instanceId,
          associationId: a.instanceId === undefined ? undefined : `eipassoc-${a.instanceId.slice(2, 10)}`,
        })),
      };
    },
    AssociateAddress: (p) => {
      const a = addresses.get(p.AllocationId ?? '');
      if (!a)
        throw new Ec2Fault(
          'InvalidAllocationID.NotFound',
          `The allocation ID '${p.AllocationId}' does not exist`,
        );
      const i = instance(p.InstanceId);
      if (a.instanceId !== undefined && a.instanceId !== i.id && p.AllowReassociation !== 'true')
        throw new Ec2Fault(
          'Resource.AlreadyAssociated',
          `resource ${a.allocationId} is already associated with ${a.instanceId}`,
        );
      a.instanceId = i.id;
      return { associationId: `eipassoc-${i.id.slice(2, 10)}` };
    },
    CreateImage: (p) => {
      instance(p.InstanceId);
      const id = newId('ami');
      images.set(id, {
        id,
        name: p.Name ?? '',
        status: later('pending', 'available', delays.image),
        creationDate: new Date().toISOString(),
        tags: specTags(p, 'image'),
      });
      return { imageId: id };
    },
    DescribeImages: (p) => {
      const ids = list(p, 'ImageId');
      const found =
        ids.length > 0
          ? ids.map((id) => {
              const image = images.get(id);
              if (!image)
                throw new Ec2Fault('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
              return image;
            })
          : [...images.values()].filter((image) => filtered(p, image.tags));
      return {
        imagesSet: found.map((image) => ({
          imageId: image.id,
          name: image.name,
          imageState: current(image.status),
          creationDate: image.creationDate,
          tagSet: tagSet(image.tags),
        })),
      };
    },
    CreateTags: (p) => {
      const tags: Tags = {};
      for (let m = 1; p[`Tag.${m}.Key`] !== undefined; m++)
        tags[p[`Tag.${m}.Key`] ?? ''] = p[`Tag.${m}.Value`] ?? '';
      for (const id of list(p, 'ResourceId')) {
        const target = instances.get(id) ?? volumes.get(id) ?? snapshots.get(id) ?? images.get(id);
        if (!target) throw new Ec2Fault('InvalidID', `The ID '${id}' is not valid`);
        Object.assign(target.tags, tags);
      }
      return { return: true };
    },
    GetConsoleOutput: (p) => {
      const i = instance(p.InstanceId);
      const state = current(i.status);
      const printed =
        state === 'running' && i.runningAt !== undefined && now() >= i.runningAt + delays.consoleEmptyMs;
      const keys = hooks.consoleKeys?.(i.id) ?? i.hostKeys;
      // As EC2 does before the instance printed anything: no output element at all.
      if (!printed || keys.length === 0) return { instanceId: i.id, timestamp: new Date().toISOString() };
      return {
        instanceId: i.id,
        timestamp: new Date().toISOString(),
        output: Buffer.from(cloudInitOutput(i.id, i.privateIp, keys)).toString('base64'),
      };
    },
  };

  return {
    addresses,
    instanceState: (id: string) => {
      const i = instances.get(id);
      return i ? current(i.status) : undefined;
    },
    async answer(action: string, params: Readonly<Record<string, string>>): Promise<Answer> {
      const handler = actions[action];
      if (!handler)
        throw new Ec2Fault('InvalidAction', `The action ${action} is not valid for this web service.`);
      return handler(params);
    },
  };
}
