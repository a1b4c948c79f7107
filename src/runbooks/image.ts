/**
 * `image <cn>` (docs/runbooks.md §image; "Setup" of the HA guide's Machine Image & Snapshot procedure): a
 * machine image of the CN without its DATA_DIR volume, recorded as the CN's latest image so that a
 * snapshot-mode failover launches the replacement from it. Run after every configuration or software update.
 *
 * - The DATA_DIR volume is left out with a NoDevice mapping for the node's `dataDevice`. The preflight
 *   refuses when no volume is attached there (or another volume than the configured `dataVolumeId`):
 *   DATA_DIR would then sit on a volume that goes into the image, and with it the CN's nodekey — a
 *   replacement launched from such an image would boot with the CN's identity before the CN is fenced.
 * - The instance is not rebooted (NoReboot, the port's default): a reboot takes a validator out of
 *   consensus, and the root volume's configuration and binaries change rarely enough that a
 *   crash-consistent copy is what the guide's "create a machine image" means in practice.
 * - No step is destructive: nothing on the CN changes. The image and its snapshots are tagged with the run
 *   id; a failed run lists them rather than deleting them.
 */
import type { CnContext, CnPlan, CnStep } from './failover-params.js';
import type { NodeInventoryEntry } from '../config/config.js';
import type { HostRef } from '../ports/shell.js';
import type { RunbookDefinition } from './types.js';
import { RUN_ID_TAG } from '../ports/cloud.js';
import { CELL_LOCK, cnParamsSchema, type CnParams } from './failover-params.js';
import { resolveCnNode } from './cell-nodes.js';
import { listingLeftovers } from './cloud-leftovers.js';
import { CELL_TAG, imageName, runImage, runTags } from './run-resources.js';
import { KCND_CONF_PATH } from './kcnd-conf.js';
import { keyLocation } from './key-files.js';
import { mapHostError, opsOf } from './node-ops.js';
import { CellopsError, InputError, SafetyGateError } from '../errors.js';
import { imageContentFiles, readImageContent, servedHostOf, servingHost } from './image-content.js';
import { factOf, peekFactOf } from './shaped-facts.js';
import { recordedRole } from './recorded-role.js';

export interface ImageTimings {
  /** CreateImage until `available`: it snapshots every volume kept in the image. Default 60 min. */
  readonly imageAvailableMs: number;
}

export const DEFAULT_IMAGE_TIMINGS: ImageTimings = { imageAvailableMs: 60 * 60_000 };

/** Facts this runbook records between its steps. */
const IMAGE_FACTS = {
  instanceId: 'instanceId',
  dataDevice: 'dataDevice',
  imageId: 'imageId',
  imageName: 'imageName',
  /** sha256 of the kcn binary and of kcnd.conf on the CN when it was imaged. */
  binarySha256: 'binarySha256',
  confSha256: 'confSha256',
} as const;

export function imageSteps(overrides: Partial<ImageTimings> = {}): CnStep[] {
  const timings: ImageTimings = { ...DEFAULT_IMAGE_TIMINGS, ...overrides };
  return [preflight, listingLeftovers(createImage), listingLeftovers(waitAvailable(timings)), record];
}

export const imageRunbook: RunbookDefinition<CnParams> = {
  id: 'image',
  version: 2,
  title: 'Machine image of a CN',
  params: cnParamsSchema,
  lockKey: () => CELL_LOCK,
  node: (params) => params.cn,
  summary: (params) => `image ${params.cn}`,
  steps(params, config) {
    resolveCnNode(config, params.cn);
    return imageSteps();
  },
};

/** The instance to image, for plan text: recorded by the preflight, else configured. */
function instanceWords(ctx: CnPlan): string {
  return (
    peekFactOf(ctx, IMAGE_FACTS.instanceId, 'instanceId') ??
    ctx.config.nodes[ctx.params.cn]?.instanceId ??
    `${ctx.params.cn}'s instance (nodes.${ctx.params.cn}.instanceId)`
  );
}

const preflight: CnStep = {
  id: 'preflight',
  title: 'Preflight: the instance and its DATA_DIR volume',
  readOnly: true,
  destructive: false,
  timeoutMs: 60_000,
  describe: (ctx) => {
    const node = ctx.config.nodes[ctx.params.cn];
    const files = node ? imageContentFiles(node) : undefined;
    return (
      `Read-only. EC2 DescribeInstances ${instanceWords(ctx)} (the machine serving ${ctx.params.cn} now): it exists, and its DATA_DIR volume` +
      `${node?.dataVolumeId ? ` ${node.dataVolumeId}` : ''} is attached at ${node?.dataDevice ?? '/dev/sdf'}, so that leaving that device out keeps DATA_DIR (chaindata and nodekey) out of the image. ` +
      `Over SSH, \`sudo -n cat ${KCND_CONF_PATH}\` (kept in memory): a --nodekey file outside ${node?.dataDir ?? 'DATA_DIR'}, or --nodekeyhex, is refused, since the image would copy the key.` +
      (files
        ? ` Then \`sudo -n sha256sum\` of ${files.binary} and ${files.conf} on that machine, recorded with the image so that the readiness check can tell when the live CN no longer matches it.`
        : '')
    );
  },
  run: async (ctx) => {
    const { cn } = ctx.params;
    const node = resolveCnNode(ctx.config, cn);
    const role = await recordedRole(ctx, cn);
    const instanceId = role?.instanceId ?? node.instanceId;
    // A replacement from a snapshot failover has DATA_DIR on the volume that run made, at the launch device.
    const replacement = role?.instanceId !== undefined && role.instanceId !== node.instanceId;
    const dataDevice = replacement ? (node.failover?.launch?.dataDevice ?? node.dataDevice) : node.dataDevice;
    if (instanceId === undefined)
      throw new InputError(`${cn} has no EC2 instance id: set nodes.${cn}.instanceId to image it`);
    const info = await ctx.ports.cloud.describeInstance(instanceId);
    if (!info || info.state === 'terminated' || info.state === 'shutting-down')
      throw new SafetyGateError(
        `${cn}'s instance ${instanceId} is ${info ? info.state : 'not found'}: there is nothing to image`,
      );
    const volumes = await ctx.ports.cloud.describeInstanceVolumes(instanceId);
    const atDevice = volumes.find((v) => v.device === dataDevice);
    if (!atDevice)
      throw new SafetyGateError(
        `${instanceId} has no volume at ${dataDevice} (it has ${volumes.map((v) => `${v.volumeId} at ${v.device}`).join(', ') || 'none'}): ` +
          `DATA_DIR, with the nodekey, would go into the image. Set nodes.${cn}.dataDevice to the DATA_DIR volume's device.`,
      );
    if (!replacement && node.dataVolumeId !== undefined && atDevice.volumeId !== node.dataVolumeId)
      throw new SafetyGateError(
        `${instanceId} has ${atDevice.volumeId} at ${node.dataDevice}, not the configured DATA_DIR volume ${node.dataVolumeId}: check nodes.${cn}.dataDevice and dataVolumeId`,
      );
    await refuseKeyOutsideDataDir(ctx, node, servedHostOf(node, role));
    ctx.output(
      `${cn} is ${instanceId} (${info.state}); DATA_DIR volume ${atDevice.volumeId} at ${dataDevice} will be left out; kept: ${
        volumes
          .filter((v) => v !== atDevice)
          .map((v) => `${v.volumeId} at ${v.device}`)
          .join(', ') || 'nothing else'
      }`,
    );
    const host = await servingHost(ctx.ports.state, node);
    const content = await readImageContent(opsOf(ctx), host, node);
    if ('missing' in content)
      throw new SafetyGateError(
        `${host.name} (${host.address}) has no ${content.missing}: the image would record nothing to judge its freshness by. Check nodes.${cn}.service.`,
      );
    ctx.output(
      `content on ${host.name}: ${imageContentFiles(node).binary} sha256 ${content.binarySha256.slice(0, 12)}…, ${imageContentFiles(node).conf} sha256 ${content.confSha256.slice(0, 12)}…`,
    );
    ctx.setFact(IMAGE_FACTS.instanceId, instanceId);
    ctx.setFact(IMAGE_FACTS.dataDevice, dataDevice);
    ctx.setFact(IMAGE_FACTS.binarySha256, content.binarySha256);
    ctx.setFact(IMAGE_FACTS.confSha256, content.confSha256);
  },
  verify: (ctx) =>
    Promise.resolve(
      ctx.fact(IMAGE_FACTS.instanceId) !== undefined &&
        ctx.fact(IMAGE_FACTS.dataDevice) !== undefined &&
        ctx.fact(IMAGE_FACTS.confSha256) !== undefined,
    ),
};

/** Whether `path` lies in the directory `dir` (or is it). */
function isUnder(path: string, dir: string): boolean {
  const base = dir.replace(/\/+$/, '');
  return path === base || path.startsWith(`${base}/`);
}

/**
 * The image copies every volume but DATA_DIR's: a nodekey elsewhere (kcnd.conf's `--nodekey`) would go
 * into it, and a replacement launched from it would boot with the CN's identity before the CN is fenced.
 * A key passed as `--nodekeyhex` sits in kcnd.conf itself, which the image copies: refused too.
 */
async function refuseKeyOutsideDataDir(
  ctx: CnContext,
  node: NodeInventoryEntry,
  host: HostRef,
): Promise<void> {
  const { address } = host;
  const location = await mapHostError(
    () => keyLocation(opsOf(ctx), host, node.dataDir),
    (error) =>
      new SafetyGateError(
        `cannot read ${KCND_CONF_PATH} on ${node.name} (${address}) to find where its nodekey lives (${error.message}); an image must not copy the key, so it is not taken without knowing. Make ${node.name} reachable over SSH and run it again.`,
      ),
  );
  if (!isUnder(location.path, node.dataDir))
    throw new SafetyGateError(
      `${node.name}'s nodekey is at ${location.path} (--nodekey in ${KCND_CONF_PATH}), outside DATA_DIR ${node.dataDir}, on a volume the image would copy: a replacement launched from it would boot with ${node.name}'s identity before ${node.name} is fenced. Move the key under ${node.dataDir} (on the DATA_DIR volume), point --nodekey there, and image again.`,
    );
  ctx.output(
    `${node.name}'s nodekey is at ${location.path}, on the DATA_DIR volume that stays out of the image`,
  );
}

const createImage: CnStep = {
  id: 'create-image',
  title: 'Create the machine image without DATA_DIR',
  destructive: false,
  timeoutMs: 2 * 60_000,
  describe: (ctx) =>
    `EC2 CreateImage of ${instanceWords(ctx)} with NoReboot (the CN keeps running) and BlockDeviceMappings ` +
    `${ctx.fact<string>(IMAGE_FACTS.dataDevice) ?? ctx.config.nodes[ctx.params.cn]?.dataDevice ?? '/dev/sdf'} → NoDevice (DATA_DIR left out), ` +
    `tagged ${RUN_ID_TAG}, ${CELL_TAG} and Name.`,
  run: async (ctx) => {
    const existing = await runImage(ctx, IMAGE_FACTS.imageId);
    if (existing !== undefined) {
      ctx.output(`image ${existing} was already started by this run`);
      return;
    }
    const instanceId = factOf(ctx, IMAGE_FACTS.instanceId, 'instanceId');
    const dataDevice = ctx.fact<string>(IMAGE_FACTS.dataDevice);
    if (instanceId === undefined || dataDevice === undefined)
      throw new CellopsError('missing_fact', `run ${ctx.runId} has no preflight facts; run it again`);
    const name = imageName(ctx.config.cell, ctx.params.cn, ctx.ports.clock.now());
    const { imageId } = await ctx.ports.cloud.createImage({
      instanceId,
      name,
      description: `cellops: ${ctx.params.cn} of ${ctx.config.cell} without DATA_DIR (${dataDevice}), run ${ctx.runId}`,
      excludeDevices: [dataDevice],
      tags: runTags(ctx, name),
      reboot: false,
    });
    ctx.setFact(IMAGE_FACTS.imageId, imageId);
    ctx.setFact(IMAGE_FACTS.imageName, name);
    ctx.output(`CreateImage started ${imageId} (${name}) from ${instanceId}, ${dataDevice} left out`);
  },
  verify: async (ctx) => (await runImage(ctx, IMAGE_FACTS.imageId)) !== undefined,
};

function waitAvailable(timings: ImageTimings): CnStep {
  return {
    id: 'wait-available',
    title: 'Wait until the image is available',
    destructive: false,
    timeoutMs: timings.imageAvailableMs + 60_000,
    describe: (ctx) =>
      `Wait (EC2 DescribeImages) until ${peekFactOf(ctx, IMAGE_FACTS.imageId, 'imageId') ?? 'the new image'} is available, at most ${Math.round(timings.imageAvailableMs / 60_000)} min.`,
    run: async (ctx) => {
      const imageId = await runImage(ctx, IMAGE_FACTS.imageId);
      if (imageId === undefined) throw new CellopsError('missing_fact', `run ${ctx.runId} has no image`);
      await ctx.ports.cloud.waitImageAvailable(imageId, {
        timeoutMs: timings.imageAvailableMs,
        signal: ctx.signal,
      });
      ctx.output(`image ${imageId} is available`);
    },
    verify: async (ctx) => {
      const imageId = await runImage(ctx, IMAGE_FACTS.imageId);
      if (imageId === undefined) return false;
      return (await ctx.ports.cloud.describeImage(imageId))?.state === 'available';
    },
  };
}

const record: CnStep = {
  id: 'record',
  title: 'Record it as the latest image of the CN',
  destructive: false,
  timeoutMs: 30_000,
  describe: (ctx) =>
    `Record ${peekFactOf(ctx, IMAGE_FACTS.imageId, 'imageId') ?? 'the new image'} as ${ctx.params.cn}'s latest image, which a snapshot-mode failover launches from (unless nodes.${ctx.params.cn}.failover.imageId pins another).`,
  run: async (ctx) => {
    const imageId = await runImage(ctx, IMAGE_FACTS.imageId);
    if (imageId === undefined) throw new CellopsError('missing_fact', `run ${ctx.runId} has no image`);
    const previous = await ctx.ports.state.image(ctx.params.cn);
    const binarySha256 = ctx.fact<string>(IMAGE_FACTS.binarySha256);
    const confSha256 = ctx.fact<string>(IMAGE_FACTS.confSha256);
    await ctx.ports.state.setImage({
      cn: ctx.params.cn,
      imageId,
      at: ctx.ports.clock.now(),
      runId: ctx.runId,
      ...(binarySha256 === undefined ? {} : { binarySha256 }),
      ...(confSha256 === undefined ? {} : { confSha256 }),
    });
    ctx.output(
      `${ctx.params.cn}'s latest image is now ${imageId}${previous ? ` (was ${previous.imageId}, which is kept)` : ''}`,
    );
    const pinned = ctx.config.nodes[ctx.params.cn]?.failover?.imageId;
    if (pinned !== undefined && pinned !== imageId)
      ctx.output(
        `note: nodes.${ctx.params.cn}.failover.imageId pins ${pinned}; failovers use that until it is removed`,
      );
  },
  verify: async (ctx) => {
    const recorded = await ctx.ports.state.image(ctx.params.cn);
    return recorded !== undefined && recorded.imageId === ctx.fact<string>(IMAGE_FACTS.imageId);
  },
};
