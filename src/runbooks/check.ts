/**
 * `check <cn>` (DESIGN.md §2.3): is the cell ready to fail this CN over? Read-only; each readiness
 * condition is one step, and a condition that does not hold fails its step with what to fix
 * (ReadinessCheckError), which the scheduler turns into an alert.
 */
import { CELL_LOCK, cnParamsSchema, type CnParams } from './failover-params.js';
import type { PlanContext, RunbookDefinition, StepContext, StepDefinition } from './types.js';
import type { NodeInventoryEntry } from '../config/config.js';
import {
  PROBE_TIMEOUT_MS,
  probe,
  proxyNodes,
  referenceHeight,
  resolveCn,
  type CnTarget,
} from './cell-nodes.js';
import {
  blsBackupPath,
  createNodeOps,
  nodeCommands,
  nodeKeyPaths,
  onHost,
  type NodeOps,
} from './node-ops.js';
import {
  describeNodekeyProblem,
  nodeAddressFromKey,
  nodekeyChecksum,
  nodekeyProblem,
  sameAddress,
} from './nodekey.js';
import { HostError, ReadinessCheckError } from '../errors.js';

type Ctx = StepContext<CnParams>;
type Plan = PlanContext<CnParams>;

function target(ctx: Plan | Ctx): CnTarget {
  return resolveCn(ctx.config, ctx.params.cn);
}

function opsOf(ctx: Ctx): NodeOps {
  return createNodeOps({ shell: ctx.ports.shell, config: ctx.config, signal: ctx.signal });
}

function standbyOf(ctx: Plan | Ctx, t: CnTarget): NodeInventoryEntry {
  const name = t.failover.standby;
  const standby = name ? ctx.config.nodes[name] : undefined;
  if (!standby)
    throw new ReadinessCheckError(
      `${t.cn.name} has failover mode standby but no standby node configured (nodes.${t.cn.name}.failover.standby).`,
    );
  return standby;
}

/** Runs `fn`, turning "cannot reach the host" into a failed check naming it. */
async function reaching<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof HostError) throw new ReadinessCheckError(error.message);
    throw error;
  }
}

/** Both locations kcnd reads static-nodes.json from; the one directly in DATA_DIR wins. */
function staticNodesPaths(dataDir: string): string[] {
  const base = dataDir.replace(/\/+$/, '');
  return [`${base}/static-nodes.json`, `${base}/klay/static-nodes.json`];
}

/** The address of the CN's identity: the recorded backup, else the backup file. */
async function cnAddress(ctx: Ctx, ops: NodeOps, t: CnTarget): Promise<string | undefined> {
  const recorded = await ctx.ports.state.nodekeyBackup(t.cn.name);
  if (recorded) return recorded.nodeAddress;
  const backup = await ops.readFile(t.backupHost.host, t.backupPath);
  return backup !== undefined && nodekeyProblem(backup) === undefined
    ? nodeAddressFromKey(backup)
    : undefined;
}

const isStandbyMode = async (ctx: Ctx) => target(ctx).failover.mode === 'standby';

const standbyOwnKey: StepDefinition<CnParams> = {
  id: 'standby-own-key',
  title: 'The standby runs a key of its own',
  destructive: false,
  readOnly: true,
  describe(ctx) {
    const t = target(ctx);
    if (t.failover.mode !== 'standby') return 'Not applicable: no standby in snapshot mode.';
    const s = standbyOf(ctx, t);
    const p = nodeKeyPaths(s.dataDir);
    return `${onHost(s.host, nodeCommands.read(p.nodekey))} (kept in memory) and the address ${s.name} reports must differ from ${t.cn.name}'s; ${onHost(s.host, nodeCommands.exists(p.legacyNodekey))} and ${onHost(s.host, nodeCommands.exists(p.legacyBlsNodekey))} must fail (a legacy file would shadow the installed one at failover).`;
  },
  when: isStandbyMode,
  async run(ctx) {
    const t = target(ctx);
    const s = standbyOf(ctx, t);
    const ops = opsOf(ctx);
    const role = await ctx.ports.state.role(t.cn.name);
    if (role && role.servedBy !== t.cn.name)
      throw new ReadinessCheckError(
        `${t.cn.name} is served by ${role.servedBy} since run ${role.runId}: there is no standby left until one is set up again.`,
      );
    const p = nodeKeyPaths(s.dataDir);
    if (await reaching(() => ops.exists(s.host, p.legacyNodekey)))
      throw new ReadinessCheckError(
        `${s.name} has a legacy nodekey at ${p.legacyNodekey}, which would shadow ${t.cn.name}'s key at failover: move it to ${p.nodekey}.`,
      );
    // The failover refuses this one too: kcnd would load it instead of the installed bls-nodekey.
    if (await reaching(() => ops.exists(s.host, p.legacyBlsNodekey)))
      throw new ReadinessCheckError(
        `${s.name} has a legacy bls-nodekey at ${p.legacyBlsNodekey}, which would shadow ${t.cn.name}'s BLS key at failover (its proposals would be rejected): move it to ${p.blsNodekey}.`,
      );
    const expected = await cnAddress(ctx, ops, t);
    if (expected === undefined)
      throw new ReadinessCheckError(
        `${t.cn.name}'s address is unknown: no valid backup and none recorded; run /cell backup-nodekey ${t.cn.name}.`,
      );
    const key = await ops.readFile(s.host, p.nodekey);
    const fileAddress =
      key !== undefined && nodekeyProblem(key) === undefined ? nodeAddressFromKey(key) : undefined;
    let running: string | undefined;
    try {
      running = await ctx.ports.rpc.nodeAddress(s.endpoint, {
        timeoutMs: PROBE_TIMEOUT_MS,
        signal: ctx.signal,
      });
    } catch (error) {
      if (ctx.signal.aborted) throw error;
    }
    for (const own of [fileAddress, running])
      if (own !== undefined && sameAddress(own, expected))
        throw new ReadinessCheckError(
          `${s.name} runs ${t.cn.name}'s key (${expected}): two nodes with one nodekey double-sign. Give ${s.name} its own key now.`,
        );
    if (fileAddress === undefined && running === undefined)
      throw new ReadinessCheckError(
        `${s.name}'s own key could not be read at ${p.nodekey} and the node does not report its address.`,
      );
    ctx.output(`${s.name} runs ${running ?? fileAddress}, not ${t.cn.name}'s ${expected}`);
  },
};

const standbyStaticNodes: StepDefinition<CnParams> = {
  id: 'standby-static-nodes',
  title: 'The standby lists the PNs in static-nodes.json',
  destructive: false,
  readOnly: true,
  describe(ctx) {
    const t = target(ctx);
    if (t.failover.mode !== 'standby') return 'Not applicable: no standby in snapshot mode.';
    const s = standbyOf(ctx, t);
    const [legacy, current] = staticNodesPaths(s.dataDir);
    return `Reads ${legacy} (used when present) or else ${current} on ${s.name} and checks that every PN (${proxyNodes(
      ctx.config,
    )
      .map((pn) => `${pn.name} ${pn.host.address}`)
      .join(', ')}) is listed, since a standby with its own key syncs only through the PNs.`;
  },
  when: isStandbyMode,
  async run(ctx) {
    const t = target(ctx);
    const s = standbyOf(ctx, t);
    const ops = opsOf(ctx);
    let found: { path: string; content: string } | undefined;
    for (const path of staticNodesPaths(s.dataDir)) {
      const content = await reaching(() => ops.readFile(s.host, path));
      if (content !== undefined) {
        found = { path, content };
        break;
      }
    }
    if (!found)
      throw new ReadinessCheckError(
        `${s.name} has no static-nodes.json (looked in ${staticNodesPaths(s.dataDir).join(' and ')}): add the PNs' kni URLs.`,
      );
    let entries: unknown;
    try {
      entries = JSON.parse(found.content);
    } catch {
      throw new ReadinessCheckError(`${s.name}:${found.path} is not valid JSON: kcnd ignores it.`);
    }
    if (!Array.isArray(entries) || !entries.every((e) => typeof e === 'string'))
      throw new ReadinessCheckError(`${s.name}:${found.path} must be a JSON array of kni:// URLs.`);
    const urls: string[] = entries;
    const missing = proxyNodes(ctx.config).filter(
      (pn) => !urls.some((url) => url.includes(`@${pn.host.address}:`)),
    );
    if (missing.length > 0)
      throw new ReadinessCheckError(
        `${s.name}:${found.path} does not list ${missing.map((pn) => `${pn.name} (${pn.host.address})`).join(', ')}.`,
      );
    ctx.output(`${s.name}:${found.path} lists all ${proxyNodes(ctx.config).length} PNs`);
  },
};

const standbyInSync: StepDefinition<CnParams> = {
  id: 'standby-in-sync',
  title: 'The standby is running and in sync',
  destructive: false,
  readOnly: true,
  describe(ctx) {
    const t = target(ctx);
    if (t.failover.mode !== 'standby') return 'Not applicable: no standby in snapshot mode.';
    const s = standbyOf(ctx, t);
    return `${onHost(s.host, nodeCommands.service(ctx.config, 'is-active', s.service))} says active and ${s.name}'s height is within ${ctx.config.monitor.lagBlocks} blocks of the PNs.`;
  },
  when: isStandbyMode,
  async run(ctx) {
    const t = target(ctx);
    const s = standbyOf(ctx, t);
    if (!(await reaching(() => opsOf(ctx).isActive(s.host, s.service))))
      throw new ReadinessCheckError(`${s.service} is not running on the standby ${s.name}.`);
    const reference = await referenceHeight(ctx.ports, ctx.config, ctx.signal);
    const health = await probe(ctx.ports, s, ctx.signal);
    if (!health.ok) throw new ReadinessCheckError(`${s.name} does not report its height (${health.reason}).`);
    const lag = Math.max(0, reference.height - health.health.height);
    if (lag > ctx.config.monitor.lagBlocks)
      throw new ReadinessCheckError(
        `${s.name} is ${lag} blocks behind the PNs (threshold ${ctx.config.monitor.lagBlocks}).`,
      );
    ctx.output(`${s.name} at height ${health.health.height}, PNs at ${reference.height}`);
  },
};

const backupMatches: StepDefinition<CnParams> = {
  id: 'backup-matches',
  title: 'The nodekey backup exists and matches the record',
  destructive: false,
  readOnly: true,
  describe(ctx) {
    const t = target(ctx);
    return `${onHost(t.backupHost.host, nodeCommands.read(t.backupPath))} and of ${blsBackupPath(t.backupPath)} when present (kept in memory): 64 hex characters each, its sha256 equal to the one recorded by /cell backup-nodekey ${t.cn.name}, and its address the one ${t.cn.name} reports when it answers.`;
  },
  async run(ctx) {
    const t = target(ctx);
    const ops = opsOf(ctx);
    const where = `${t.backupHost.name}:${t.backupPath}`;
    const content = await reaching(() => ops.readFile(t.backupHost.host, t.backupPath));
    if (content === undefined)
      throw new ReadinessCheckError(
        `There is no nodekey backup of ${t.cn.name} at ${where}: run /cell backup-nodekey ${t.cn.name}.`,
      );
    const problem = nodekeyProblem(content);
    if (problem)
      throw new ReadinessCheckError(
        `The nodekey backup at ${where} is malformed: ${describeNodekeyProblem(problem)}.`,
      );
    const recorded = await ctx.ports.state.nodekeyBackup(t.cn.name);
    if (!recorded)
      throw new ReadinessCheckError(
        `No backup of ${t.cn.name} is recorded: run /cell backup-nodekey ${t.cn.name} so that changes can be detected.`,
      );
    if (recorded.checksum !== nodekeyChecksum(content))
      throw new ReadinessCheckError(
        `The backup at ${where} differs from the one recorded by run ${recorded.runId} (address ${recorded.nodeAddress}): find out who changed it.`,
      );
    // A failover refuses a malformed bls-nodekey beside the backup: say so now rather than then.
    const blsPath = blsBackupPath(t.backupPath);
    const bls = await reaching(() => ops.readFile(t.backupHost.host, blsPath));
    if (bls !== undefined && !/^(0x)?[0-9a-fA-F]{64}$/.test(bls.trim()))
      throw new ReadinessCheckError(
        `The bls-nodekey backup at ${t.backupHost.name}:${blsPath} is malformed (expected 64 hex characters): a failover would refuse it. Run /cell backup-nodekey ${t.cn.name} again.`,
      );
    const address = nodeAddressFromKey(content);
    const role = await ctx.ports.state.role(t.cn.name);
    const serving = (role ? ctx.config.nodes[role.servedBy] : undefined) ?? t.cn;
    try {
      const running = await ctx.ports.rpc.nodeAddress(serving.endpoint, {
        timeoutMs: PROBE_TIMEOUT_MS,
        signal: ctx.signal,
      });
      if (!sameAddress(running, address))
        throw new ReadinessCheckError(
          `The backup at ${where} holds ${address}, but ${serving.name} runs as ${running}.`,
        );
    } catch (error) {
      if (error instanceof ReadinessCheckError || ctx.signal.aborted) throw error;
      ctx.output(
        `${serving.name} did not report its address; the backup was checked against the record only`,
      );
    }
    ctx.output(`backup of ${t.cn.name} at ${where} matches the record (address ${address})`);
  },
};

/** Files whose change calls for a new machine image: the node's configuration and its binary. */
function configFiles(node: NodeInventoryEntry): string[] {
  return [`/etc/${node.service}/conf/${node.service}.conf`, `/usr/bin/${node.endpoint.binary}`];
}

const imageFresh: StepDefinition<CnParams> = {
  id: 'image-fresh',
  title: 'The machine image is newer than the last configuration change',
  destructive: false,
  readOnly: true,
  describe(ctx) {
    const t = target(ctx);
    if (t.failover.mode !== 'snapshot') return 'Not applicable: standby mode uses no machine image.';
    return `The image recorded by /cell image ${t.cn.name} must be newer than ${configFiles(t.cn)
      .map((path) => onHost(t.cn.host, nodeCommands.mtime(path)))
      .join(' and ')}.`;
  },
  async when(ctx) {
    return target(ctx).failover.mode === 'snapshot';
  },
  async run(ctx) {
    const t = target(ctx);
    const image = await ctx.ports.state.image(t.cn.name);
    if (!image)
      throw new ReadinessCheckError(
        `No machine image of ${t.cn.name} is recorded: run /cell image ${t.cn.name}.`,
      );
    const ops = opsOf(ctx);
    let newest = 0;
    let newestPath = '';
    try {
      for (const path of configFiles(t.cn)) {
        const mtime = await ops.mtime(t.cn.host, path);
        if (mtime !== undefined && mtime > newest) [newest, newestPath] = [mtime, path];
      }
    } catch (error) {
      if (!(error instanceof HostError)) throw error;
      // A failed CN cannot tell; the image's age alone is still worth reporting.
      ctx.output(
        `could not read ${t.cn.name}'s configuration times (${error.message}); image ${image.imageId} recorded by run ${image.runId}`,
      );
      return;
    }
    if (newest > image.at)
      throw new ReadinessCheckError(
        `${t.cn.name}:${newestPath} changed after the latest image ${image.imageId} was taken: run /cell image ${t.cn.name}.`,
      );
    ctx.output(`image ${image.imageId} is newer than ${t.cn.name}'s configuration and binary`);
  },
};

export function checkSteps(): StepDefinition<CnParams>[] {
  return [standbyOwnKey, standbyStaticNodes, standbyInSync, backupMatches, imageFresh];
}

export const checkRunbook: RunbookDefinition<CnParams> = {
  id: 'check',
  version: 1,
  title: 'Readiness check',
  params: cnParamsSchema,
  // The cell lock, although read-only: a check during a failover would see a stopped standby and raise a false alert.
  lockKey: () => CELL_LOCK,
  node: (params) => params.cn,
  summary: (params, config) => `check ${params.cn} (${resolveCn(config, params.cn).failover.mode} mode)`,
  steps(params, config) {
    resolveCn(config, params.cn);
    return checkSteps();
  },
};
