/**
 * `image <cn>` (DESIGN.md §2.3; "Setup" of the HA guide's Machine Image & Snapshot procedure): a machine
 * image of the CN without its DATA_DIR volume, recorded as the CN's latest image so that a snapshot-mode
 * failover launches the replacement from it. Run after every configuration or software update.
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
import type { CnPlan, CnStep } from './failover-params.js';
import type { RunbookDefinition } from './types.js';
import { RUN_ID_TAG } from '../ports/cloud.js';
import { CELL_LOCK, cnParamsSchema, type CnParams } from './failover-params.js';
import { resolveCnNode } from './cell-nodes.js';
import { listingLeftovers } from './cloud-leftovers.js';
import { CELL_TAG, imageName, runImage, runTags } from './run-resources.js';
import { CellopsError, InputError, SafetyGateError } from '../errors.js';
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
} as const;

export function imageSteps(overrides: Partial<ImageTimings> = {}): CnStep[] {
  const timings: ImageTimings = { ...DEFAULT_IMAGE_TIMINGS, ...overrides };
  return [preflight, listingLeftovers(createImage), listingLeftovers(waitAvailable(timings)), record];
}

export const imageRunbook: RunbookDefinition<CnParams> = {
  id: 'image',
  version: 1,
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
    return (
      `Read-only. EC2 DescribeInstances ${instanceWords(ctx)} (the machine serving ${ctx.params.cn} now): it exists, and its DATA_DIR volume` +
      `${node?.dataVolumeId ? ` ${node.dataVolumeId}` : ''} is attached at ${node?.dataDevice ?? '/dev/sdf'}, so that leaving that device out keeps DATA_DIR (chaindata and nodekey) out of the image.`
    );
  },
  run: async (ctx) => {
    const { cn } = ctx.params;
    const node = resolveCnNode(ctx.config, cn);
    const role = await recordedRole(ctx, cn);
    const instanceId = role?.instanceId ?? node.instanceId;
    if (instanceId === undefined)
      throw new InputError(`${cn} has no EC2 instance id: set nodes.${cn}.instanceId to image it`);
    const info = await ctx.ports.cloud.describeInstance(instanceId);
    if (!info || info.state === 'terminated' || info.state === 'shutting-down')
      throw new SafetyGateError(
        `${cn}'s instance ${instanceId} is ${info ? info.state : 'not found'}: there is nothing to image`,
      );
    const volumes = await ctx.ports.cloud.describeInstanceVolumes(instanceId);
    const atDevice = volumes.find((v) => v.device === node.dataDevice);
    if (!atDevice)
      throw new SafetyGateError(
        `${instanceId} has no volume at ${node.dataDevice} (it has ${volumes.map((v) => `${v.volumeId} at ${v.device}`).join(', ') || 'none'}): ` +
          `DATA_DIR, with the nodekey, would go into the image. Set nodes.${cn}.dataDevice to the DATA_DIR volume's device.`,
      );
    if (node.dataVolumeId !== undefined && atDevice.volumeId !== node.dataVolumeId)
      throw new SafetyGateError(
        `${instanceId} has ${atDevice.volumeId} at ${node.dataDevice}, not the configured DATA_DIR volume ${node.dataVolumeId}: check nodes.${cn}.dataDevice and dataVolumeId`,
      );
    ctx.output(
      `${cn} is ${instanceId} (${info.state}); DATA_DIR volume ${atDevice.volumeId} at ${node.dataDevice} will be left out; kept: ${
        volumes
          .filter((v) => v !== atDevice)
          .map((v) => `${v.volumeId} at ${v.device}`)
          .join(', ') || 'nothing else'
      }`,
    );
    ctx.setFact(IMAGE_FACTS.instanceId, instanceId);
    ctx.setFact(IMAGE_FACTS.dataDevice, node.dataDevice);
  },
  verify: (ctx) =>
    Promise.resolve(
      ctx.fact(IMAGE_FACTS.instanceId) !== undefined && ctx.fact(IMAGE_FACTS.dataDevice) !== undefined,
    ),
};

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
    await ctx.ports.state.setImage({
      cn: ctx.params.cn,
      imageId,
      at: ctx.ports.clock.now(),
      runId: ctx.runId,
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
