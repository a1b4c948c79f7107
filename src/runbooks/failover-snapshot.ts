/**
 * `failover` in mode `snapshot` (DESIGN.md §2.2; the "Machine Image & Snapshot" procedure of the Kaia HA
 * guide): replace a failed CN on EC2 with a new instance launched from the CN's machine image and a data
 * volume restored from a PN's chaindata snapshot, then give it the failed CN's nodekey and Elastic IP.
 *
 * Shape of the run, and why:
 * - `stop-pn` → `snapshot`: kpnd is stopped for data consistency (the guide insists) and started again as
 *   soon as CreateSnapshot has returned: an EBS snapshot is point-in-time at creation, so the PN need not
 *   stay down while the snapshot's blocks are copied.
 * - `launch` runs right after and does not wait for the snapshot: the snapshot completes inside EBS while
 *   the instance boots and becomes reachable. Only `attach-volume` waits for completion, because a volume
 *   can only be created from a completed snapshot. Neither step is approval-gated, so nothing holds the
 *   launch back once the PN is running again. (Steps run one after another in the engine; the parallelism
 *   is EBS's background copy overlapping our launch, which is where the time goes.)
 * - Nothing cellops creates is deleted automatically. A launched instance, a snapshot and a volume are
 *   tagged `cellops:run-id`; when a step fails, its error and output list what the run left so that an
 *   operator decides (a half-prepared replacement is often what one wants to inspect). The port has no
 *   terminate or delete call on purpose.
 * - Undo exists where it restores the cell: kpnd started again on the PN, the installed nodekey removed
 *   from the replacement, the Elastic IP moved back, kcnd stopped on the replacement. Fencing is never
 *   undone: the failed CN stays stopped.
 * - Facts are a cache: each cloud resource is found again by its run-id tag when a crash lost the fact, so
 *   a resumed run never creates a second snapshot, instance or volume.
 */
import type { CellopsConfig, NodeInventoryEntry } from '../config/config.js';
import type { FailoverConfig } from '../config/schema.js';
import { RUN_ID_TAG } from '../ports/cloud.js';
import { rethrowListingLeftovers } from './cloud-leftovers.js';
import type { Tags, TaggedResource } from '../ports/cloud.js';
import type { NodeEndpoint, ProbeOptions } from '../ports/node-rpc.js';
import type { HostRef } from '../ports/shell.js';
import { CellopsError, InputError, SafetyGateError, StepTimeoutError, describeError } from '../errors.js';
import type { FailoverParams } from './failover-params.js';
import { proxyNodes, resolveCn } from './cell-nodes.js';
import { asidePath, blsBackupPath, createNodeOps, nodeCommands, nodeKeyPaths } from './node-ops.js';
import type { NodeOps } from './node-ops.js';
import {
  describeNodekeyProblem,
  nodeAddressFromKey,
  nodekeyChecksum,
  nodekeyProblem,
  sameAddress,
} from './nodekey.js';
import {
  KCND_CONF,
  confDataDir,
  dataLayout,
  keepOnlyChaindata,
  mountDataVolume,
  ping,
  setConfDataDir,
} from './snapshot-ops.js';
import type { OpsContext } from './snapshot-ops.js';
import type { PlanContext, StepContext, StepDefinition } from './types.js';

/** Tags every resource a run creates carries besides RUN_ID_TAG (ports/cloud.ts). */
export const CELL_TAG = 'cellops:cell';
export const ROLE_TAG = 'cellops:role';

/** Bounds of every wait, in milliseconds. Defaults suit mainnet-sized chaindata. */
export interface SnapshotFailoverTimings {
  /** Stopping kpnd (its init script waits up to STOP_TIMEOUT, then kills). Default 5 min. */
  readonly serviceStopMs: number;
  /** RunInstances until `running`. Default 10 min. */
  readonly instanceRunningMs: number;
  /** `running` until SSH answers at the private IP. Default 10 min. */
  readonly sshReadyMs: number;
  /** CreateSnapshot until `completed`: a first snapshot of a large volume takes hours. Default 6 h. */
  readonly snapshotCompletedMs: number;
  /** CreateVolume until `available`, AttachVolume until `in-use`, each. Default 10 min. */
  readonly volumeMs: number;
  /** StopInstances until `stopped`; after this a forced stop gets the same again. Default 5 min. */
  readonly instanceStoppedMs: number;
  /** Deleting everything but chaindata on the restored volume. Default 30 min. */
  readonly cleanMs: number;
  /** After kcnd starts: the right address, CN peers and the PNs' height. Lazily loaded EBS is slow. Default 60 min. */
  readonly catchUpMs: number;
  /** Between two polls of a wait we run ourselves. Default 5 s. */
  readonly pollMs: number;
  /** One probe of a node's metrics or RPC. Default 5 s. */
  readonly probeMs: number;
  /** One SSH command. Default 2 min. */
  readonly commandMs: number;
  /** Best-effort SSH fencing of the failed CN, per command. Default 15 s. */
  readonly fenceSshMs: number;
}

export const DEFAULT_SNAPSHOT_TIMINGS: SnapshotFailoverTimings = {
  serviceStopMs: 5 * 60_000,
  instanceRunningMs: 10 * 60_000,
  sshReadyMs: 10 * 60_000,
  snapshotCompletedMs: 6 * 60 * 60_000,
  volumeMs: 10 * 60_000,
  instanceStoppedMs: 5 * 60_000,
  cleanMs: 30 * 60_000,
  catchUpMs: 60 * 60_000,
  pollMs: 5_000,
  probeMs: 5_000,
  commandMs: 2 * 60_000,
  fenceSshMs: 15_000,
};

export interface SnapshotFailoverOptions {
  readonly timings?: Partial<SnapshotFailoverTimings>;
}

/** Facts this runbook records (never secrets). */
const F = {
  startedAt: 'startedAt',
  imageId: 'imageId',
  pn: 'pn',
  pnVolumeId: 'pnVolumeId',
  pnStoppedAt: 'pnStoppedAt',
  failedAddress: 'failedAddress',
  failedInstanceId: 'failedInstanceId',
  failedHost: 'failedHost',
  nodekeyChecksum: 'nodekeyChecksum',
  snapshotId: 'snapshotId',
  instanceId: 'instanceId',
  privateIp: 'privateIp',
  availabilityZone: 'availabilityZone',
  volumeId: 'volumeId',
  eipPreviousInstance: 'eipPreviousInstance',
} as const;

interface SnapshotCn {
  readonly node: NodeInventoryEntry;
  readonly failover: FailoverConfig;
  readonly launch: NonNullable<FailoverConfig['launch']>;
  readonly allocationId: string;
  readonly snapshotFrom: readonly string[];
  readonly backupHost: NodeInventoryEntry;
  readonly backupPath: string;
}

/** The CN's snapshot-mode configuration, or an InputError naming the key to fix. */
export function snapshotCn(config: CellopsConfig, cn: string): SnapshotCn {
  const { cn: node, failover, backupHost, backupPath } = resolveCn(config, cn);
  if (!failover.launch)
    throw new InputError(
      `nodes.${cn}.failover.launch is needed for mode snapshot (instanceType, subnetId, securityGroupIds)`,
    );
  if (failover.ip.method !== 'eip')
    throw new InputError(
      `nodes.${cn}.failover.ip.method must be eip for mode snapshot: the replacement is a new instance and takes the Elastic IP (got ${failover.ip.method})`,
    );
  const snapshotFrom = failover.snapshotFrom ?? [];
  if (snapshotFrom.length === 0)
    throw new InputError(`nodes.${cn}.failover.snapshotFrom must name at least one PN`);
  return {
    node,
    failover,
    launch: failover.launch,
    allocationId: failover.ip.allocationId,
    snapshotFrom,
    backupHost,
    backupPath,
  };
}

const BLS_KEY = /^(0x)?[0-9a-fA-F]{64}$/;

interface BackupKeys {
  /** The nodekey file's content. In memory only: never logged, never a fact. */
  readonly key: string;
  readonly checksum: string;
  readonly address: string;
  /** The bls-nodekey kept next to the backup (node-ops.ts blsBackupPath), when there is one. */
  readonly bls?: string;
}

/** Reads and validates the failed CN's backup (and its bls-nodekey, like the standby mode does). */
async function readBackup(ctx: StepContext<FailoverParams>, c: SnapshotCn): Promise<BackupKeys> {
  const ops = nodeOps(ctx);
  const where = `${c.backupHost.name}:${c.backupPath}`;
  const key = await ops.readFile(c.backupHost.host, c.backupPath);
  if (key === undefined)
    throw new SafetyGateError(
      `there is no nodekey backup of ${ctx.params.cn} at ${where}: without it the replacement cannot take ${ctx.params.cn}'s identity`,
    );
  const problem = nodekeyProblem(key);
  if (problem)
    throw new SafetyGateError(
      `the nodekey backup ${where} is not usable: ${describeNodekeyProblem(problem)}; kcnd would silently start with a fresh identity`,
    );
  const blsPath = blsBackupPath(c.backupPath);
  const bls = await ops.readFile(c.backupHost.host, blsPath);
  if (bls !== undefined && !BLS_KEY.test(bls.trim()))
    throw new SafetyGateError(
      `the bls-nodekey backup ${c.backupHost.name}:${blsPath} is malformed (expected 64 hex characters): the node's proposals would be rejected with a wrong BLS key. Fix or remove that file and start again.`,
    );
  return {
    key,
    checksum: nodekeyChecksum(key),
    address: nodeAddressFromKey(key),
    ...(bls === undefined ? {} : { bls }),
  };
}

/** Never throws: describe() must render a plan even for a half-configured CN. */
function peek(
  ctx: PlanContext<FailoverParams>,
): Partial<SnapshotCn> & { dataDir: string; snapshotFrom: readonly string[] } {
  const node = ctx.config.nodes[ctx.params.cn];
  const failover = node?.failover;
  return {
    ...(node ? { node } : {}),
    ...(failover ? { failover } : {}),
    ...(failover?.launch ? { launch: failover.launch } : {}),
    ...(failover?.ip.method === 'eip' ? { allocationId: failover.ip.allocationId } : {}),
    snapshotFrom: failover?.snapshotFrom ?? [],
    dataDir: node?.dataDir ?? '/var/kcnd/data',
  };
}

function runTags(ctx: StepContext<FailoverParams>, name: string): Tags {
  return { [RUN_ID_TAG]: ctx.runId, [CELL_TAG]: ctx.config.cell, Name: name, [ROLE_TAG]: ctx.params.cn };
}

/** For the snapshot-only scripts of snapshot-ops.ts. */
function ops(ctx: StepContext<FailoverParams>, timings: SnapshotFailoverTimings): OpsContext {
  return { shell: ctx.ports.shell, signal: ctx.signal, commandTimeoutMs: timings.commandMs };
}

/** The common node operations (node-ops.ts), with a per-command timeout. */
function nodeOps(ctx: StepContext<FailoverParams>, timeoutMs?: number): NodeOps {
  return createNodeOps({
    shell: ctx.ports.shell,
    config: ctx.config,
    signal: ctx.signal,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
}

function probe(ctx: StepContext<FailoverParams>, timings: SnapshotFailoverTimings): ProbeOptions {
  return { timeoutMs: timings.probeMs, signal: ctx.signal };
}

/** How the replacement is reached: over SSH at the private IP RunInstances gave it. */
export function replacementHost(cn: string, privateIp: string): HostRef {
  return { name: `${cn}-replacement`, address: privateIp };
}

/** The replacement's metrics and RPC endpoints: the CN's, with the host swapped for the private IP. */
export function replacementEndpoint(node: NodeInventoryEntry, privateIp: string): NodeEndpoint {
  const host = replacementHost(node.name, privateIp);
  const swap = (url: string): string => {
    const parsed = new URL(url);
    parsed.hostname = privateIp.includes(':') ? `[${privateIp}]` : privateIp;
    return parsed.toString();
  };
  return {
    name: host.name,
    host,
    metricsUrl: swap(node.endpoint.metricsUrl),
    ...(node.endpoint.rpcUrl === undefined ? {} : { rpcUrl: swap(node.endpoint.rpcUrl) }),
    dataDir: node.dataDir,
    binary: 'kcn',
  };
}

function requireFact<T extends string | number>(ctx: StepContext<FailoverParams>, key: string): T {
  const value = ctx.fact<T>(key);
  if (value === undefined)
    throw new CellopsError(
      'missing_fact',
      `run ${ctx.runId} has no recorded ${key}; run the preflight again`,
    );
  return value;
}

const GONE_STATES = new Set(['terminated', 'shutting-down', 'deleting', 'deleted', 'error']);

/**
 * The run's resource of one kind: from the facts, else found by its run-id tag (a crash between the create
 * call and the checkpoint loses the fact, not the resource).
 */
async function runResource(
  ctx: StepContext<FailoverParams>,
  kind: TaggedResource['kind'],
  factKey: string,
): Promise<string | undefined> {
  const known = ctx.fact<string>(factKey);
  if (known !== undefined) return known;
  const found = (await ctx.ports.cloud.findTagged(ctx.runId)).filter(
    (r) => r.kind === kind && !GONE_STATES.has(r.state ?? ''),
  );
  if (found.length > 1)
    throw new SafetyGateError(
      `run ${ctx.runId} has ${found.length} ${kind}s tagged ${RUN_ID_TAG}=${ctx.runId} (${found.map((r) => r.id).join(', ')}); expected one — remove the extra ones and resume`,
    );
  const id = found[0]?.id;
  if (id !== undefined) ctx.setFact(factKey, id);
  return id;
}

/**
 * The restored data volume: from the facts, else among the run's tagged volumes. RunInstances tags the
 * replacement's root volume with the run id too, so volumes attached to the replacement at another device
 * are not it.
 */
async function dataVolumeOf(
  ctx: StepContext<FailoverParams>,
  instanceId: string,
  dataDevice: string,
): Promise<string | undefined> {
  const known = ctx.fact<string>(F.volumeId);
  if (known !== undefined) return known;
  const tagged = (await ctx.ports.cloud.findTagged(ctx.runId)).filter(
    (r) => r.kind === 'volume' && !GONE_STATES.has(r.state ?? ''),
  );
  const attached = await ctx.ports.cloud.describeInstanceVolumes(instanceId);
  const candidates = tagged.filter((r) => {
    const at = attached.find((a) => a.volumeId === r.id);
    return at === undefined || at.device === dataDevice;
  });
  if (candidates.length > 1)
    throw new SafetyGateError(
      `run ${ctx.runId} has several candidate data volumes (${candidates.map((r) => r.id).join(', ')}); expected one — remove the extra ones and resume`,
    );
  const id = candidates[0]?.id;
  if (id !== undefined) ctx.setFact(F.volumeId, id);
  return id;
}

/**
 * Wraps a step so that its failure lists the cloud resources the run has left, in the step's output and in
 * the error's message.
 */
function listingLeftovers(step: StepDefinition<FailoverParams>): StepDefinition<FailoverParams> {
  return {
    ...step,
    run: async (ctx) => {
      try {
        await step.run(ctx);
      } catch (error) {
        await rethrowListingLeftovers(ctx, error);
      }
    },
  };
}

async function pnReferenceHeight(
  ctx: StepContext<FailoverParams>,
  timings: SnapshotFailoverTimings,
): Promise<{ height: number | undefined; heights: Map<string, number> }> {
  const heights = new Map<string, number>();
  const pns = proxyNodes(ctx.config);
  await Promise.all(
    pns.map(async (pn) => {
      try {
        heights.set(pn.name, (await ctx.ports.rpc.health(pn.endpoint, probe(ctx, timings))).height);
      } catch {
        // An unreachable PN is simply not a reference (and not a snapshot source).
      }
    }),
  );
  const values = [...heights.values()];
  return { height: values.length > 0 ? Math.max(...values) : undefined, heights };
}

function instanceGone(state: string | undefined): boolean {
  return state === undefined || state === 'stopped' || state === 'terminated';
}

// ---------------------------------------------------------------------------------------------------------

export function snapshotFailoverSteps(
  options: SnapshotFailoverOptions = {},
): StepDefinition<FailoverParams>[] {
  const t: SnapshotFailoverTimings = { ...DEFAULT_SNAPSHOT_TIMINGS, ...options.timings };

  const preflight: StepDefinition<FailoverParams> = {
    id: 'preflight',
    title: 'Preflight: image, nodekey backup, a healthy PN to snapshot',
    readOnly: true,
    destructive: false,
    timeoutMs: 2 * 60_000 + 4 * t.probeMs,
    describe: (ctx) => {
      const p = peek(ctx);
      const backup = p.failover?.nodekeyBackup;
      return (
        `Read-only. Check that a CN machine image is recorded (${p.failover?.imageId ?? `latest recorded by \`/cell image ${ctx.params.cn}\``}, EC2 DescribeImages: available); ` +
        `that the nodekey backup ${backup ? `${backup.path} on ${backup.host}` : '(not configured)'} exists, is 64 hex characters and matches its recorded checksum and node address; ` +
        `that one of ${p.snapshotFrom.join(', ') || '(no snapshotFrom)'} is healthy and has a known data volume (warn if stopping it leaves no healthy PN); ` +
        `that ${ctx.params.cn} is really unhealthy${ctx.params.force ? ' (skipped: --force)' : ''}, has an instance to fence, and Elastic IP ${p.allocationId ?? '(not configured)'} exists.`
      );
    },
    run: async (ctx) => {
      const { cn } = ctx.params;
      const c = snapshotCn(ctx.config, cn);
      ctx.setFact(F.startedAt, ctx.ports.clock.now());

      // The machine that serves the role now: a replacement from an earlier failover, else the configured one.
      const role = await ctx.ports.state.role(cn);
      const failedInstanceId = role?.instanceId ?? c.node.instanceId;
      const failedHost = role?.address ?? c.node.host.address;
      if (failedInstanceId === undefined)
        throw new SafetyGateError(
          `${cn} has no EC2 instance id (nodes.${cn}.instanceId), so it cannot be fenced by stopping it; mode snapshot needs one`,
        );
      const failedInfo = await ctx.ports.cloud.describeInstance(failedInstanceId);
      ctx.output(
        `${cn} runs on ${failedInstanceId} at ${failedHost}: ${failedInfo ? failedInfo.state : 'not found (already gone)'}`,
      );
      ctx.setFact(F.failedInstanceId, failedInstanceId);
      ctx.setFact(F.failedHost, failedHost);

      const reference = await pnReferenceHeight(ctx, t);
      if (reference.height === undefined)
        throw new SafetyGateError(
          `no PN of the cell answers its metrics/RPC: there is no chaindata to snapshot`,
        );

      // A healthy active must not be replaced by accident: that is a switchover and needs --force.
      const failedEndpoint =
        failedHost === c.node.host.address ? c.node.endpoint : replacementEndpoint(c.node, failedHost);
      try {
        const health = await ctx.ports.rpc.health(failedEndpoint, probe(ctx, t));
        const lag = reference.height - health.height;
        if (lag <= ctx.config.monitor.lagBlocks && !ctx.params.force)
          throw new SafetyGateError(
            `${cn} looks healthy (height ${health.height}, ${lag} blocks behind the PNs); a failover of a healthy CN is a switchover: run it with --force`,
          );
        ctx.output(`${cn} is ${lag} blocks behind the PNs${ctx.params.force ? ' (--force)' : ''}`);
      } catch (error) {
        if (error instanceof SafetyGateError) throw error;
        ctx.output(`${cn} does not answer (${describeError(error)})`);
      }

      const imageId = c.failover.imageId ?? (await ctx.ports.state.image(cn))?.imageId;
      if (imageId === undefined)
        throw new SafetyGateError(
          `no machine image of ${cn} is recorded: run \`/cell image ${cn}\` while it is healthy, or set nodes.${cn}.failover.imageId`,
        );
      const image = await ctx.ports.cloud.describeImage(imageId);
      if (image?.state !== 'available')
        throw new SafetyGateError(
          `machine image ${imageId} of ${cn} is ${image ? image.state : 'not found'}, not available`,
        );
      ctx.output(
        `image ${imageId} (${image.name ?? 'unnamed'}, created ${image.creationDate ?? '?'}) is available`,
      );
      ctx.setFact(F.imageId, imageId);

      // The key stays in this function's memory: validated, hashed, never logged.
      const { checksum, address, bls } = await readBackup(ctx, c);
      const backup = { path: c.backupPath, host: c.backupHost.name };
      const record = await ctx.ports.state.nodekeyBackup(cn);
      if (record) {
        if (record.checksum !== checksum || !sameAddress(record.nodeAddress, address))
          throw new SafetyGateError(
            `the nodekey backup ${backup.path} on ${backup.host} no longer matches the one recorded for ${cn} (address ${record.nodeAddress}); check the file before failing over`,
          );
        ctx.output(
          `nodekey backup valid: address ${address}, matches the record of ${new Date(record.at).toISOString()}`,
        );
      } else {
        ctx.output(
          `WARNING: no backup of ${cn} is recorded; the backup file derives address ${address} — make sure that is ${cn}'s`,
        );
      }
      ctx.output(
        bls === undefined
          ? `no bls-nodekey next to the backup: kcnd will derive ${cn}'s from the nodekey (right when its registered BLS key was derived, the default)`
          : `bls-nodekey backup found next to the nodekey backup; it will be installed with it`,
      );
      ctx.setFact(F.failedAddress, address);
      ctx.setFact(F.nodekeyChecksum, checksum);

      let chosen: NodeInventoryEntry | undefined;
      for (const name of c.snapshotFrom) {
        const pn = ctx.config.nodes[name];
        if (!pn || pn.role !== 'pn') {
          ctx.output(`${name}: not a PN in the configuration, skipped`);
          continue;
        }
        if (pn.dataVolumeId === undefined) {
          ctx.output(`${name}: no dataVolumeId configured, skipped`);
          continue;
        }
        const height = reference.heights.get(name);
        if (height === undefined || reference.height - height > ctx.config.monitor.lagBlocks) {
          ctx.output(
            `${name}: ${height === undefined ? 'not answering' : `${reference.height - height} blocks behind`}, skipped`,
          );
          continue;
        }
        chosen = pn;
        break;
      }
      if (!chosen)
        throw new SafetyGateError(
          `none of ${c.snapshotFrom.join(', ')} is a healthy PN with a known data volume (nodes.<pn>.dataVolumeId)`,
        );
      const othersHealthy = [...reference.heights.entries()].filter(
        ([name, height]) =>
          name !== chosen.name && reference.height! - height <= ctx.config.monitor.lagBlocks,
      );
      ctx.output(
        othersHealthy.length === 0
          ? `WARNING: stopping kpnd on ${chosen.name} leaves the cell with no healthy PN until it is started again`
          : `snapshot source ${chosen.name} (${chosen.dataVolumeId}); healthy PNs while it is stopped: ${othersHealthy.map(([n]) => n).join(', ')}`,
      );
      ctx.setFact(F.pn, chosen.name);
      ctx.setFact(F.pnVolumeId, chosen.dataVolumeId!);

      const eip = await ctx.ports.cloud.describeAddress(c.allocationId);
      if (!eip)
        throw new SafetyGateError(`Elastic IP ${c.allocationId} of ${cn} does not exist in this region`);
      ctx.output(
        `Elastic IP ${c.allocationId} (${eip.publicIp ?? '?'}) is on ${eip.instanceId ?? 'no instance'}`,
      );
    },
    verify: (ctx) =>
      Promise.resolve(
        [F.imageId, F.pn, F.pnVolumeId, F.failedAddress, F.failedInstanceId].every(
          (k) => ctx.fact(k) !== undefined,
        ),
      ),
  };

  const pnOf = (ctx: StepContext<FailoverParams>): NodeInventoryEntry => {
    const name = requireFact<string>(ctx, F.pn);
    const pn = ctx.config.nodes[name];
    if (!pn) throw new InputError(`${name} is no longer in the configuration`);
    return pn;
  };
  const pnWords = (ctx: PlanContext<FailoverParams>): { name: string; host: string; service: string } => {
    const name = ctx.fact<string>(F.pn);
    const pn = name === undefined ? undefined : ctx.config.nodes[name];
    return pn
      ? { name: pn.name, host: `${pn.name} ${pn.host.address}`, service: pn.service }
      : {
          name: 'the PN',
          host: `the PN chosen by the preflight (first healthy of ${peek(ctx).snapshotFrom.join(', ')})`,
          service: 'kpnd',
        };
  };
  const serviceWords = (
    ctx: PlanContext<FailoverParams>,
    action: 'start' | 'stop',
    service: string,
  ): string => {
    try {
      return `\`${nodeCommands.service(ctx.config, action, service)}\``;
    } catch {
      return `\`systemctl ${action} ${service}\``;
    }
  };

  const stopPn: StepDefinition<FailoverParams> = {
    id: 'stop-pn',
    title: 'Stop kpnd on the PN to snapshot',
    destructive: true,
    timeoutMs: t.serviceStopMs + 30_000,
    describe: (ctx) => {
      const pn = pnWords(ctx);
      return `Run ${serviceWords(ctx, 'stop', pn.service)} on ${pn.host}, so that its data volume is consistent for the snapshot (the HA guide insists). It is started again as soon as the snapshot has started.`;
    },
    run: async (ctx) => {
      const pn = pnOf(ctx);
      await nodeOps(ctx, t.serviceStopMs).service(pn.host, pn.service, 'stop');
      ctx.setFact(F.pnStoppedAt, ctx.ports.clock.now());
      ctx.output(`${pn.service} stopped on ${pn.name}`);
    },
    verify: async (ctx) => {
      const pn = pnOf(ctx);
      return !(await nodeOps(ctx).isActive(pn.host, pn.service));
    },
    undo: async (ctx) => {
      const pn = pnOf(ctx);
      await nodeOps(ctx).service(pn.host, pn.service, 'start');
      ctx.output(`${pn.service} started again on ${pn.name}`);
    },
  };

  const snapshot: StepDefinition<FailoverParams> = {
    id: 'snapshot',
    title: "Snapshot the PN's data volume, then start kpnd again",
    destructive: false,
    timeoutMs: 5 * 60_000,
    describe: (ctx) => {
      const pn = pnWords(ctx);
      const volume = ctx.fact<string>(F.pnVolumeId) ?? `${pn.name}'s dataVolumeId`;
      return `EC2 CreateSnapshot of ${volume} (${pn.name}'s DATA_DIR) tagged ${RUN_ID_TAG}; as soon as it has started (EBS snapshots are point-in-time at creation) run ${serviceWords(ctx, 'start', pn.service)} on ${pn.host}. The snapshot completes in the background while the replacement launches.`;
    },
    run: async (ctx) => {
      const pn = pnOf(ctx);
      let snapshotId = await runResource(ctx, 'snapshot', F.snapshotId);
      if (snapshotId === undefined) {
        // A snapshot of a running PN is not consistent: if kpnd came back (someone started it), stop here.
        if (await nodeOps(ctx).isActive(pn.host, pn.service))
          throw new SafetyGateError(
            `${pn.service} is running again on ${pn.name}; a snapshot now would not be consistent. Abort, or resume from "${stopPn.title}"`,
          );
        const volumeId = requireFact<string>(ctx, F.pnVolumeId);
        ({ snapshotId } = await ctx.ports.cloud.createSnapshot(
          volumeId,
          `cellops ${ctx.config.cell} failover of ${ctx.params.cn}: chaindata of ${pn.name} (run ${ctx.runId})`,
          runTags(ctx, `${ctx.params.cn}-chaindata-${pn.name}`),
        ));
        ctx.setFact(F.snapshotId, snapshotId);
      }
      const state = await ctx.ports.cloud.describeSnapshot(snapshotId);
      ctx.output(
        `snapshot ${snapshotId} started (${state?.state ?? 'unknown'}${state?.progress ? ` ${state.progress}` : ''})`,
      );
      await nodeOps(ctx).service(pn.host, pn.service, 'start');
      const stoppedAt = ctx.fact<number>(F.pnStoppedAt);
      ctx.output(
        `${pn.service} started again on ${pn.name}${stoppedAt === undefined ? '' : ` after ${Math.round((ctx.ports.clock.now() - stoppedAt) / 1000)} s down`}`,
      );
    },
    verify: async (ctx) => {
      const snapshotId = await runResource(ctx, 'snapshot', F.snapshotId);
      if (snapshotId === undefined) return false;
      const state = await ctx.ports.cloud.describeSnapshot(snapshotId);
      if (!state || state.state === 'error') return false;
      const pn = pnOf(ctx);
      return nodeOps(ctx).isActive(pn.host, pn.service);
    },
  };

  const replacementOf = (ctx: StepContext<FailoverParams>): { instanceId: string; host: HostRef } => {
    const instanceId = requireFact<string>(ctx, F.instanceId);
    return { instanceId, host: replacementHost(ctx.params.cn, requireFact<string>(ctx, F.privateIp)) };
  };
  const replacementWords = (ctx: PlanContext<FailoverParams>): string => {
    const id = ctx.fact<string>(F.instanceId);
    const ip = ctx.fact<string>(F.privateIp);
    return id && ip
      ? `${ctx.params.cn}-replacement ${ip} (${id})`
      : `${ctx.params.cn}-replacement (the instance launched by this run, at its private IP)`;
  };

  const launch: StepDefinition<FailoverParams> = {
    id: 'launch',
    title: 'Launch the replacement from the CN image',
    destructive: false,
    timeoutMs: t.instanceRunningMs + t.sshReadyMs + 60_000,
    describe: (ctx) => {
      const p = peek(ctx);
      const l = p.launch;
      const image = ctx.fact<string>(F.imageId) ?? p.failover?.imageId ?? 'the latest recorded image';
      return (
        `EC2 RunInstances from ${image}` +
        (l
          ? ` (${l.instanceType}, ${l.subnetId}, security groups ${l.securityGroupIds.join(', ')}${l.keyName ? `, key pair ${l.keyName}` : ''})`
          : ' (nodes.<cn>.failover.launch is not configured)') +
        ` tagged ${RUN_ID_TAG}; wait until it is running (≤ ${Math.round(t.instanceRunningMs / 60_000)} min) and answers SSH at its private IP (≤ ${Math.round(t.sshReadyMs / 60_000)} min). Does not wait for the snapshot, which completes meanwhile.`
      );
    },
    run: async (ctx) => {
      const c = snapshotCn(ctx.config, ctx.params.cn);
      const { cloud } = ctx.ports;
      let instanceId = await runResource(ctx, 'instance', F.instanceId);
      if (instanceId === undefined) {
        const info = await cloud.runInstance({
          imageId: requireFact<string>(ctx, F.imageId),
          instanceType: c.launch.instanceType,
          subnetId: c.launch.subnetId,
          securityGroupIds: c.launch.securityGroupIds,
          ...(c.launch.keyName === undefined ? {} : { keyName: c.launch.keyName }),
          tags: runTags(ctx, `${ctx.params.cn}-replacement`),
          // A RunInstances retried after a timeout or a crash returns the instance already launched.
          clientToken: `${ctx.runId}:launch`.slice(-64),
        });
        instanceId = info.instanceId;
        ctx.setFact(F.instanceId, instanceId);
        ctx.output(`launched ${instanceId} in ${info.availabilityZone}`);
      }
      const running = await cloud.waitInstanceRunning(instanceId, {
        timeoutMs: t.instanceRunningMs,
        signal: ctx.signal,
      });
      if (running.privateIp === undefined)
        throw new CellopsError('no_private_ip', `instance ${instanceId} is running but has no private IP`);
      ctx.setFact(F.privateIp, running.privateIp);
      ctx.setFact(F.availabilityZone, running.availabilityZone);
      ctx.output(`${instanceId} is running at ${running.privateIp} in ${running.availabilityZone}`);
      await waitForSsh(ctx, replacementHost(ctx.params.cn, running.privateIp), instanceId);
    },
    verify: async (ctx) => {
      const instanceId = await runResource(ctx, 'instance', F.instanceId);
      if (instanceId === undefined) return false;
      const info = await ctx.ports.cloud.describeInstance(instanceId);
      if (info?.state !== 'running' || info.privateIp === undefined) return false;
      ctx.setFact(F.privateIp, info.privateIp);
      ctx.setFact(F.availabilityZone, info.availabilityZone);
      try {
        await ping(ops(ctx, t), replacementHost(ctx.params.cn, info.privateIp), t.probeMs);
        return true;
      } catch {
        return false;
      }
    },
  };

  /**
   * A fresh instance answers SSH some time after `running`. Unreachable and timeouts are waited out; a
   * refused host key is not: a new instance has a host key known_hosts does not list unless the image keeps
   * its host keys and known_hosts has an entry for the subnet (a pattern such as `10.0.2.*`).
   */
  async function waitForSsh(
    ctx: StepContext<FailoverParams>,
    host: HostRef,
    instanceId: string,
  ): Promise<void> {
    const deadline = ctx.ports.clock.now() + t.sshReadyMs;
    for (;;) {
      try {
        await ping(ops(ctx, t), host, Math.min(t.commandMs, 30_000));
        ctx.output(`${host.name} ${host.address} answers over SSH`);
        return;
      } catch (error) {
        if (
          error instanceof CellopsError &&
          (error.code === 'host_key_unknown' || error.code === 'host_key_mismatch')
        )
          throw new SafetyGateError(
            `${instanceId} at ${host.address} presents a host key known_hosts does not list (${error.message}). ` +
              'Keep the SSH host keys in the CN image and add a known_hosts entry for the subnet (e.g. a 10.0.2.* pattern), then resume.',
          );
        if (error instanceof CellopsError && !error.retryable && error.code !== 'command_failed') throw error;
        if (ctx.ports.clock.now() >= deadline)
          throw new StepTimeoutError(
            `${instanceId} at ${host.address} did not answer SSH within ${Math.round(t.sshReadyMs / 1000)} s: ${describeError(error)}`,
          );
        await ctx.ports.clock.sleep(t.pollMs, ctx.signal);
      }
    }
  }

  const attachVolume: StepDefinition<FailoverParams> = {
    id: 'attach-volume',
    title: 'Create the chaindata volume from the snapshot and attach it',
    destructive: false,
    timeoutMs: t.snapshotCompletedMs + 2 * t.volumeMs + 60_000,
    describe: (ctx) => {
      const snap = ctx.fact<string>(F.snapshotId) ?? "the run's snapshot";
      const az = ctx.fact<string>(F.availabilityZone) ?? "the replacement's availability zone";
      const device = peek(ctx).launch?.dataDevice ?? '/dev/sdf';
      return `Wait until ${snap} is completed (≤ ${Math.round(t.snapshotCompletedMs / 3_600_000)} h), EC2 CreateVolume from it in ${az} tagged ${RUN_ID_TAG}, wait until available, then EC2 AttachVolume to ${replacementWords(ctx)} as ${device} and wait until in-use.`;
    },
    run: async (ctx) => {
      const c = snapshotCn(ctx.config, ctx.params.cn);
      const { cloud } = ctx.ports;
      const { instanceId } = replacementOf(ctx);
      const snapshotId = await runResource(ctx, 'snapshot', F.snapshotId);
      if (snapshotId === undefined)
        throw new CellopsError('missing_fact', `run ${ctx.runId} has no snapshot`);
      await cloud.waitSnapshotCompleted(snapshotId, { timeoutMs: t.snapshotCompletedMs, signal: ctx.signal });
      ctx.output(`snapshot ${snapshotId} completed`);
      let volumeId = await dataVolumeOf(ctx, instanceId, c.launch.dataDevice);
      if (volumeId === undefined) {
        ({ volumeId } = await cloud.createVolume(
          snapshotId,
          requireFact<string>(ctx, F.availabilityZone),
          runTags(ctx, `${ctx.params.cn}-data`),
        ));
        ctx.setFact(F.volumeId, volumeId);
        ctx.output(`created ${volumeId} from ${snapshotId}`);
      }
      const attached = await cloud.describeInstanceVolumes(instanceId);
      if (!attached.some((v) => v.volumeId === volumeId)) {
        await cloud.waitVolumeAvailable(volumeId, { timeoutMs: t.volumeMs, signal: ctx.signal });
        await cloud.attachVolume(volumeId, instanceId, c.launch.dataDevice);
      }
      await cloud.waitVolumeInUse(volumeId, { timeoutMs: t.volumeMs, signal: ctx.signal });
      ctx.output(`${volumeId} attached to ${instanceId} as ${c.launch.dataDevice}`);
    },
    verify: async (ctx) => {
      const c = snapshotCn(ctx.config, ctx.params.cn);
      const instanceId = ctx.fact<string>(F.instanceId);
      if (instanceId === undefined) return false;
      const volumeId = await dataVolumeOf(ctx, instanceId, c.launch.dataDevice);
      if (volumeId === undefined) return false;
      return (await ctx.ports.cloud.describeInstanceVolumes(instanceId)).some((v) => v.volumeId === volumeId);
    },
  };

  const prepareData: StepDefinition<FailoverParams> = {
    id: 'prepare-data',
    title: 'Mount the volume and keep only klay/chaindata',
    destructive: true,
    timeoutMs: t.cleanMs + 3 * t.commandMs,
    describe: (ctx) => {
      const p = peek(ctx);
      const volume = ctx.fact<string>(F.volumeId) ?? 'the restored volume';
      return (
        `On ${replacementWords(ctx)}: run ${serviceWords(ctx, 'stop', p.node?.service ?? 'kcnd')} (the image may start kcnd at boot); ` +
        `mount ${volume} (${p.launch?.dataDevice ?? '/dev/sdf'} or its NVMe name) at ${p.dataDir} and record it in /etc/fstab (nofail); ` +
        `DELETE everything on it except klay/chaindata (moved to ${p.dataDir}/klay/chaindata if the PN kept it deeper; lost+found stays), including the PN's nodekey; ` +
        `set DATA_DIR=${p.dataDir} in ${KCND_CONF} (original kept as ${KCND_CONF}.cellops-orig).`
      );
    },
    run: async (ctx) => {
      const c = snapshotCn(ctx.config, ctx.params.cn);
      const { host } = replacementOf(ctx);
      const o = ops(ctx, t);
      await nodeOps(ctx, t.serviceStopMs).service(host, c.node.service, 'stop');
      const volumeId = requireFact<string>(ctx, F.volumeId);
      ctx.output(await mountDataVolume(o, host, volumeId, c.launch.dataDevice, c.node.dataDir));
      for (const line of await keepOnlyChaindata({ ...o, commandTimeoutMs: t.cleanMs }, host, c.node.dataDir))
        ctx.output(line);
      const conf = await setConfDataDir(o, host, c.node.dataDir);
      ctx.output(
        conf.changed
          ? `DATA_DIR in ${KCND_CONF} changed from ${conf.previous ?? '(unset)'} to ${c.node.dataDir}`
          : `DATA_DIR in ${KCND_CONF} already is ${c.node.dataDir}`,
      );
    },
    verify: async (ctx) => {
      const c = snapshotCn(ctx.config, ctx.params.cn);
      if (ctx.fact(F.privateIp) === undefined) return false;
      const { host } = replacementOf(ctx);
      const o = ops(ctx, t);
      const layout = await dataLayout(o, host, c.node.dataDir);
      if (
        !layout.mounted ||
        !layout.hasChaindata ||
        layout.strayTop.length > 0 ||
        layout.strayKlay.length > 0
      )
        return false;
      if (confDataDir((await nodeOps(ctx).readFile(host, KCND_CONF)) ?? '') !== c.node.dataDir) return false;
      return !(await nodeOps(ctx).isActive(host, c.node.service));
    },
  };

  const installNodekey: StepDefinition<FailoverParams> = {
    id: 'install-nodekey',
    title: "Install the failed CN's nodekey on the replacement",
    destructive: true,
    timeoutMs: 8 * t.commandMs,
    describe: (ctx) => {
      const p = peek(ctx);
      const backup = p.failover?.nodekeyBackup;
      const keys = nodeKeyPaths(p.dataDir);
      const address = ctx.fact<string>(F.failedAddress);
      const where = replacementWords(ctx);
      return (
        `Read the backup ${backup ? `${backup.host}:${backup.path}` : '(not configured)'} (never logged or posted) and check it again (64 hex characters, the preflight's checksum${address ? `, address ${address}` : ''}). ` +
        `Refuse if ${keys.legacyNodekey} or ${keys.legacyBlsNodekey} exists on ${where} (kcnd would load it instead). ` +
        `Write the key to ${keys.nodekey} with \`${nodeCommands.write(keys.nodekey)}\` (mode 0600, content through stdin) and verify its sha256. ` +
        `bls-nodekey: installed the same way from ${backup ? `${backup.host}:${blsBackupPath(backup.path)}` : 'the backup'} if that exists; otherwise none is left so kcnd derives it from the nodekey.`
      );
    },
    run: async (ctx) => {
      const c = snapshotCn(ctx.config, ctx.params.cn);
      const { host } = replacementOf(ctx);
      const o = nodeOps(ctx);
      const keys = nodeKeyPaths(c.node.dataDir);
      for (const legacy of [keys.legacyNodekey, keys.legacyBlsNodekey])
        if (await o.exists(host, legacy))
          throw new SafetyGateError(
            `${host.name} ${host.address} has ${legacy}, which kcnd loads instead of ${legacy.replace(/\/([^/]+)$/, '/klay/$1')}: the installed key would be shadowed. Remove it there and resume.`,
          );
      const backup = await readBackup(ctx, c);
      if (
        backup.checksum !== requireFact<string>(ctx, F.nodekeyChecksum) ||
        !sameAddress(backup.address, requireFact<string>(ctx, F.failedAddress))
      )
        throw new SafetyGateError(
          `the nodekey backup ${c.backupHost.name}:${c.backupPath} changed since the preflight; abort and start again`,
        );
      await o.writeFile(host, keys.nodekey, backup.key);
      if ((await o.sha256(host, keys.nodekey)) !== backup.checksum)
        throw new SafetyGateError(
          `the nodekey written to ${host.name} ${host.address} does not match the backup by checksum`,
        );
      ctx.output(
        `${ctx.params.cn}'s nodekey (address ${backup.address}) installed at ${keys.nodekey}, mode 0600, sha256 ${backup.checksum.slice(0, 12)}… verified`,
      );
      if (backup.bls === undefined) {
        await o.remove(host, keys.blsNodekey);
        ctx.output(
          `no bls-nodekey backup: none on ${host.name}, so kcnd derives it from the nodekey at start`,
        );
      } else {
        await o.writeFile(host, keys.blsNodekey, backup.bls);
        if ((await o.sha256(host, keys.blsNodekey)) !== nodekeyChecksum(backup.bls))
          throw new SafetyGateError(
            `the bls-nodekey written to ${host.name} ${host.address} does not match its backup by checksum`,
          );
        ctx.output(`${ctx.params.cn}'s bls-nodekey installed at ${keys.blsNodekey} (checksum verified)`);
      }
    },
    verify: async (ctx) => {
      const c = snapshotCn(ctx.config, ctx.params.cn);
      if (ctx.fact(F.privateIp) === undefined) return false;
      const { host } = replacementOf(ctx);
      const o = nodeOps(ctx);
      const keys = nodeKeyPaths(c.node.dataDir);
      if ((await o.exists(host, keys.legacyNodekey)) || (await o.exists(host, keys.legacyBlsNodekey)))
        return false;
      return (await o.sha256(host, keys.nodekey)) === ctx.fact<string>(F.nodekeyChecksum);
    },
    // The replacement must not keep an identity it is not going to serve.
    undo: async (ctx) => {
      const c = snapshotCn(ctx.config, ctx.params.cn);
      const { host } = replacementOf(ctx);
      const keys = nodeKeyPaths(c.node.dataDir);
      const o = nodeOps(ctx);
      await o.remove(host, keys.nodekey);
      await o.remove(host, keys.blsNodekey);
      ctx.output(`removed ${keys.nodekey} and ${keys.blsNodekey} from ${host.name} ${host.address}`);
    },
  };

  /**
   * Best effort before StopInstances: stop the service and move both nodekey locations aside (named like
   * the standby mode's, `<path>.cellops-<run id>`), so that starting the instance again later cannot bring
   * the identity back. Never throws: an unreachable CN is the usual case, and the instance stop fences it.
   */
  async function fenceOverSsh(
    ctx: StepContext<FailoverParams>,
    host: HostRef,
    node: NodeInventoryEntry,
  ): Promise<string> {
    const o = nodeOps(ctx, t.fenceSshMs);
    try {
      await o.service(host, node.service, 'stop');
      const keys = nodeKeyPaths(node.dataDir);
      const moved: string[] = [];
      for (const path of [keys.nodekey, keys.legacyNodekey]) {
        if (!(await o.exists(host, path))) continue;
        await o.move(host, path, asidePath(path, ctx.runId));
        moved.push(path);
      }
      return `over SSH: ${node.service} stopped on ${host.name} ${host.address}; ${moved.length > 0 ? `moved aside ${moved.join(', ')} (suffix .cellops-${ctx.runId})` : 'no nodekey file to move aside'}`;
    } catch (error) {
      if (ctx.signal.aborted) throw error;
      return `over SSH: ${host.name} ${host.address} could not be fenced (${describeError(error)}); stopping its instance fences it`;
    }
  }

  const fenceAndMoveIp: StepDefinition<FailoverParams> = {
    id: 'fence-and-move-ip',
    title: "Fence the failed CN's instance, then move its Elastic IP",
    destructive: true,
    timeoutMs: 2 * t.instanceStoppedMs + 2 * t.fenceSshMs + 60_000,
    describe: (ctx) => {
      const p = peek(ctx);
      const failed =
        ctx.fact<string>(F.failedInstanceId) ?? p.node?.instanceId ?? `${ctx.params.cn}'s instance`;
      const failedHost = ctx.fact<string>(F.failedHost) ?? p.node?.host.address ?? '?';
      return (
        `Best effort over SSH at ${ctx.params.cn} ${failedHost}: ${serviceWords(ctx, 'stop', p.node?.service ?? 'kcnd')} and move ${p.dataDir}/klay/nodekey and ${p.dataDir}/nodekey aside. ` +
        `Then EC2 StopInstances ${failed} and wait until stopped (≤ ${Math.round(t.instanceStoppedMs / 60_000)} min, then a forced stop). ` +
        `Only then EC2 AssociateAddress ${p.allocationId ?? '(eip not configured)'} → ${replacementWords(ctx)} with AllowReassociation.`
      );
    },
    run: async (ctx) => {
      const c = snapshotCn(ctx.config, ctx.params.cn);
      const { cloud } = ctx.ports;
      const failedInstanceId = requireFact<string>(ctx, F.failedInstanceId);
      const failedHost: HostRef = { name: ctx.params.cn, address: requireFact<string>(ctx, F.failedHost) };
      const { instanceId } = replacementOf(ctx);

      let info = await cloud.describeInstance(failedInstanceId);
      if (!instanceGone(info?.state)) {
        ctx.output(await fenceOverSsh(ctx, failedHost, c.node));
        await cloud.stopInstance(failedInstanceId);
        try {
          await cloud.waitInstanceStopped(failedInstanceId, {
            timeoutMs: t.instanceStoppedMs,
            signal: ctx.signal,
          });
        } catch (error) {
          if (ctx.signal.aborted) throw error;
          // An impaired host can hang in `stopping`; a forced stop is what the console's "Force stop" does.
          ctx.output(`${failedInstanceId} did not stop in time (${describeError(error)}); forcing the stop`);
          await cloud.stopInstance(failedInstanceId, { force: true });
          await cloud.waitInstanceStopped(failedInstanceId, {
            timeoutMs: t.instanceStoppedMs,
            signal: ctx.signal,
          });
        }
        info = await cloud.describeInstance(failedInstanceId);
      }
      if (!instanceGone(info?.state))
        throw new SafetyGateError(
          `${failedInstanceId} is ${info?.state}, not stopped: the failed CN is not fenced`,
        );
      ctx.output(`${ctx.params.cn}'s instance ${failedInstanceId} is ${info?.state ?? 'gone'}: fenced`);

      const before = await cloud.describeAddress(c.allocationId);
      if (before?.instanceId !== undefined && before.instanceId !== instanceId)
        ctx.setFact(F.eipPreviousInstance, before.instanceId);
      const { associationId } = await cloud.associateAddress(c.allocationId, instanceId);
      ctx.output(
        `Elastic IP ${c.allocationId} (${before?.publicIp ?? '?'}) moved from ${before?.instanceId ?? 'no instance'} to ${instanceId}${associationId ? ` (${associationId})` : ''}`,
      );
    },
    verify: async (ctx) => {
      const c = snapshotCn(ctx.config, ctx.params.cn);
      const failedInstanceId = ctx.fact<string>(F.failedInstanceId);
      const instanceId = ctx.fact<string>(F.instanceId);
      if (failedInstanceId === undefined || instanceId === undefined) return false;
      const failed = await ctx.ports.cloud.describeInstance(failedInstanceId);
      if (!instanceGone(failed?.state)) return false;
      return (await ctx.ports.cloud.describeAddress(c.allocationId))?.instanceId === instanceId;
    },
    // The IP goes back to where it was; the failed CN stays stopped (fencing is never undone).
    undo: async (ctx) => {
      const c = snapshotCn(ctx.config, ctx.params.cn);
      const previous = ctx.fact<string>(F.eipPreviousInstance);
      if (previous === undefined) {
        ctx.output(`Elastic IP ${c.allocationId} had no previous instance; left on the replacement`);
        return;
      }
      await ctx.ports.cloud.associateAddress(c.allocationId, previous);
      ctx.output(`Elastic IP ${c.allocationId} moved back to ${previous} (which stays stopped)`);
    },
  };

  const startKcnd: StepDefinition<FailoverParams> = {
    id: 'start-kcnd',
    title: 'Start kcnd on the replacement',
    destructive: false,
    timeoutMs: t.commandMs + 60_000,
    describe: (ctx) =>
      `Check that ${ctx.fact<string>(F.failedInstanceId) ?? "the failed CN's instance"} is still stopped, then run ${serviceWords(ctx, 'start', peek(ctx).node?.service ?? 'kcnd')} on ${replacementWords(ctx)}.`,
    run: async (ctx) => {
      const c = snapshotCn(ctx.config, ctx.params.cn);
      const failedInstanceId = requireFact<string>(ctx, F.failedInstanceId);
      const failed = await ctx.ports.cloud.describeInstance(failedInstanceId);
      if (!instanceGone(failed?.state))
        throw new SafetyGateError(
          `${ctx.params.cn}'s old instance ${failedInstanceId} is ${failed?.state} again: two nodes must never run one nodekey. Stop it and resume`,
        );
      const { host } = replacementOf(ctx);
      await nodeOps(ctx).service(host, c.node.service, 'start');
      ctx.output(`${c.node.service} started on ${host.name} ${host.address}`);
    },
    verify: async (ctx) => {
      const c = snapshotCn(ctx.config, ctx.params.cn);
      if (ctx.fact(F.privateIp) === undefined) return false;
      return nodeOps(ctx).isActive(replacementOf(ctx).host, c.node.service);
    },
    undo: async (ctx) => {
      const c = snapshotCn(ctx.config, ctx.params.cn);
      const { host } = replacementOf(ctx);
      await nodeOps(ctx, t.serviceStopMs).service(host, c.node.service, 'stop');
      ctx.output(`${c.node.service} stopped on ${host.name} ${host.address}`);
    },
  };

  interface Observation {
    readonly active: boolean;
    readonly address?: string;
    readonly height?: number;
    readonly cnPeers?: number;
    readonly reference?: number;
    readonly problem?: string;
  }

  async function observe(ctx: StepContext<FailoverParams>): Promise<Observation> {
    const c = snapshotCn(ctx.config, ctx.params.cn);
    const { host } = replacementOf(ctx);
    const endpoint = replacementEndpoint(c.node, host.address);
    const active = await nodeOps(ctx).isActive(host, c.node.service);
    if (!active) return { active, problem: `${c.node.service} is not active` };
    let address: string;
    try {
      address = await ctx.ports.rpc.nodeAddress(endpoint, probe(ctx, t));
    } catch (error) {
      return { active, problem: `node address not available yet (${describeError(error)})` };
    }
    const expected = requireFact<string>(ctx, F.failedAddress);
    if (!sameAddress(address, expected))
      throw new SafetyGateError(
        `${host.name} ${host.address} reports node address ${address}, not ${ctx.params.cn}'s ${expected}: kcnd did not load the installed nodekey`,
      );
    const reference = (await pnReferenceHeight(ctx, t)).height;
    let health;
    try {
      health = await ctx.ports.rpc.health(endpoint, probe(ctx, t));
    } catch (error) {
      return { active, address, problem: `no height yet (${describeError(error)})` };
    }
    const base = {
      active,
      address,
      height: health.height,
      ...(health.cnPeers === undefined ? {} : { cnPeers: health.cnPeers }),
    };
    if (reference === undefined) return { ...base, problem: 'no PN answers, so no reference height' };
    const withRef = { ...base, reference };
    if (!health.cnPeers) return { ...withRef, problem: 'no CN peers yet' };
    if (reference - health.height > ctx.config.monitor.lagBlocks)
      return { ...withRef, problem: `${reference - health.height} blocks behind the PNs` };
    return withRef;
  }

  const verify: StepDefinition<FailoverParams> = {
    id: 'verify',
    title: "Verify the replacement serves the failed CN's identity and is in sync",
    destructive: false,
    timeoutMs: t.catchUpMs + 2 * 60_000,
    describe: (ctx) =>
      `Poll ${replacementWords(ctx)} every ${Math.round(t.pollMs / 1000)} s for up to ${Math.round(t.catchUpMs / 60_000)} min (a volume restored from a snapshot loads lazily, so it lags at first): ` +
      `kcnd active; its node address (kaia_nodeAddress, or admin.nodeInfo over IPC) equals ${ctx.fact<string>(F.failedAddress) ?? "the failed CN's"} (a different one stops the run); ` +
      `it has CN peers; its height is within ${ctx.config.monitor.lagBlocks} blocks of the PNs'. Reports whether it signs blocks again and the time to recover.`,
    run: async (ctx) => {
      const deadline = ctx.ports.clock.now() + t.catchUpMs;
      let last: string | undefined;
      for (;;) {
        const seen = await observe(ctx);
        if (seen.problem === undefined) {
          ctx.output(
            `in sync: address ${seen.address}, height ${seen.height} (PNs ${seen.reference}), ${seen.cnPeers} CN peers`,
          );
          break;
        }
        if (seen.problem !== last) ctx.output(`waiting: ${seen.problem}`);
        last = seen.problem;
        if (ctx.ports.clock.now() >= deadline)
          throw new StepTimeoutError(
            `${ctx.params.cn}'s replacement is not in sync after ${Math.round(t.catchUpMs / 60_000)} min: ${seen.problem}`,
          );
        await ctx.ports.clock.sleep(t.pollMs, ctx.signal);
      }
      await reportSigning(ctx);
      const startedAt = ctx.fact<number>(F.startedAt);
      if (startedAt !== undefined)
        ctx.output(
          `time to recover: ${Math.round((ctx.ports.clock.now() - startedAt) / 1000)} s since the preflight`,
        );
    },
    verify: async (ctx) => {
      if (ctx.fact(F.privateIp) === undefined) return false;
      return (await observe(ctx)).problem === undefined;
    },
  };

  /** Signing is reported, not required: a lazily loaded volume may need a while before it commits. */
  async function reportSigning(ctx: StepContext<FailoverParams>): Promise<void> {
    const c = snapshotCn(ctx.config, ctx.params.cn);
    const { host } = replacementOf(ctx);
    const address = requireFact<string>(ctx, F.failedAddress);
    try {
      const blocks = await ctx.ports.rpc.recentBlocks(
        replacementEndpoint(c.node, host.address),
        20,
        probe(ctx, t),
      );
      const signed = blocks.filter((b) => b.committers.some((a) => sameAddress(a, address))).length;
      const inCommittee = blocks.filter((b) => b.committee.some((a) => sameAddress(a, address))).length;
      ctx.output(
        signed > 0
          ? `signing again: ${address} committed ${signed} of the last ${blocks.length} blocks`
          : `not among the committers of the last ${blocks.length} blocks yet (in the committee of ${inCommittee}); watch the alert thread`,
      );
    } catch (error) {
      ctx.output(`could not read recent blocks to check signing: ${describeError(error)}`);
    }
  }

  const record: StepDefinition<FailoverParams> = {
    id: 'record',
    title: 'Record the replacement as the CN',
    destructive: false,
    timeoutMs: 60_000,
    describe: (ctx) =>
      `Record in the cell state that ${replacementWords(ctx)} now serves ${ctx.params.cn}, so status, monitoring and the next failover see it.`,
    run: async (ctx) => {
      const { instanceId, host } = replacementOf(ctx);
      await ctx.ports.state.setRole({
        role: ctx.params.cn,
        servedBy: instanceId,
        address: host.address,
        instanceId,
        since: ctx.ports.clock.now(),
        runId: ctx.runId,
      });
      ctx.output(`${ctx.params.cn} is now served by ${instanceId} at ${host.address}`);
    },
    verify: async (ctx) => {
      const role = await ctx.ports.state.role(ctx.params.cn);
      return (
        role !== undefined && role.instanceId === ctx.fact<string>(F.instanceId) && role.runId === ctx.runId
      );
    },
  };

  return [
    preflight,
    ...[
      stopPn,
      snapshot,
      launch,
      attachVolume,
      prepareData,
      installNodekey,
      fenceAndMoveIp,
      startKcnd,
      verify,
      record,
    ].map(listingLeftovers),
  ];
}
