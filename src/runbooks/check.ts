/**
 * `check <cn>` (docs/runbooks.md §check): is the cell ready to fail this CN over? Read-only; each readiness
 * condition is one step, and a condition that does not hold fails its step with what to fix
 * (ReadinessCheckError), which the scheduler turns into an alert.
 */
import { CELL_LOCK, cnParamsSchema, type CnParams, type CnStep } from './failover-params.js';
import type { RunbookDefinition } from './types.js';
import {
  cnTargetOf,
  lagOf,
  probe,
  proxyNodes,
  referenceHeight,
  reportedAddress,
  resolveCn,
} from './cell-nodes.js';
import {
  cnAddress,
  describeStandbyCondition,
  isStandbyMode,
  hasRecordedStandby,
  reaching,
  recordedStandbyOf,
  staticNodesPaths,
} from './check-conditions.js';
import { replacementHostKeyCondition } from './check-host-keys.js';
import { keyFileAddress, keyLocation, presentLegacyKey, readKeyFile } from './key-files.js';
import { linksText, pnLinks, strandedLinks } from './cn-links.js';
import { KCND_CONF_PATH } from './kcnd-conf.js';
import { blsBackupPath, ipOf, nodeCommands, nodeKeyPaths, onHost, opsOf } from './node-ops.js';
import {
  describeNodekeyProblem,
  isBlsKey,
  nodeAddressFromKey,
  nodekeyChecksum,
  sameAddress,
} from './nodekey.js';
import { HostError, ReadinessCheckError } from '../errors.js';
import { replacementEndpoint } from './replacement.js';
import { contentChange, imageContentFiles, readImageContent, servingHost } from './image-content.js';

export function checkSteps(): CnStep[] {
  return [
    standbyOwnKey,
    standbyStaticNodes,
    standbyInSync,
    backupMatches,
    imageFresh,
    replacementHostKeyCondition,
    pnLinksFollow,
  ];
}

export const checkRunbook: RunbookDefinition<CnParams> = {
  id: 'check',
  version: 2,
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

const standbyOwnKey: CnStep = {
  id: 'standby-own-key',
  title: 'The standby runs a key of its own',
  destructive: false,
  readOnly: true,
  describe: (ctx) =>
    describeStandbyCondition(ctx, (t, s) => {
      const p = nodeKeyPaths(s.dataDir);
      return `${onHost(s.host, nodeCommands.read(p.nodekey))} (or the file ${KCND_CONF_PATH} names with --nodekey; kept in memory) and the address ${s.name} reports must differ from ${t.cn.name}'s; ${onHost(s.host, nodeCommands.exists(p.legacyNodekey))} and ${onHost(s.host, nodeCommands.exists(p.legacyBlsNodekey))} must fail (a legacy file would shadow the installed one at failover).`;
    }),
  when: isStandbyMode,
  async run(ctx) {
    const t = await recordedStandbyOf(ctx);
    const s = t.standby;
    const ops = opsOf(ctx);
    const p = nodeKeyPaths(s.dataDir);
    const legacy = await reaching(() => presentLegacyKey(ops, s.host, s.dataDir));
    if (legacy === p.legacyNodekey)
      throw new ReadinessCheckError(
        `${s.name} has a legacy nodekey at ${p.legacyNodekey}, which would shadow ${t.role}'s key at failover: move it to ${p.nodekey}.`,
      );
    // The failover refuses this one too: kcnd would load it instead of the installed bls-nodekey.
    if (legacy === p.legacyBlsNodekey)
      throw new ReadinessCheckError(
        `${s.name} has a legacy bls-nodekey at ${p.legacyBlsNodekey}, which would shadow ${t.role}'s BLS key at failover (its proposals would be rejected): move it to ${p.blsNodekey}.`,
      );
    const expected = await cnAddress(ctx, ops, t);
    if (expected === undefined)
      throw new ReadinessCheckError(
        `${t.role}'s address is unknown: no valid backup and none recorded; run /cell backup-nodekey ${t.role}.`,
      );
    // kcnd.conf's --nodekey wins over DATA_DIR: that is the file the standby really runs.
    const { path: keyPath } = await reaching(() => keyLocation(ops, s.host, s.dataDir));
    const fileAddress = await keyFileAddress(ops, s.host, keyPath);
    const running = await reportedAddress(ctx.ports, s.endpoint, ctx.signal);
    for (const own of [fileAddress, running])
      if (own !== undefined && sameAddress(own, expected))
        throw new ReadinessCheckError(
          `${s.name} runs ${t.role}'s key (${expected}): two nodes with one nodekey double-sign. Give ${s.name} its own key now.`,
        );
    if (fileAddress === undefined && running === undefined)
      throw new ReadinessCheckError(
        `${s.name}'s own key could not be read at ${keyPath} and the node does not report its address.`,
      );
    ctx.output(
      `${s.name} runs ${running ?? fileAddress}, not ${t.role}'s ${expected} (served by ${t.cn.name})`,
    );
  },
};

const standbyStaticNodes: CnStep = {
  id: 'standby-static-nodes',
  title: 'The standby lists the PNs in static-nodes.json',
  destructive: false,
  readOnly: true,
  describe: (ctx) =>
    describeStandbyCondition(ctx, (_t, s) => {
      const [legacy, current] = staticNodesPaths(s.dataDir);
      return `Reads ${legacy} (used when present) or else ${current} on ${s.name} and checks that every PN (${proxyNodes(
        ctx.config,
      )
        .map((pn) => `${pn.name} ${pn.host.address}`)
        .join(', ')}) is listed, since a standby with its own key syncs only through the PNs.`;
    }),
  when: hasRecordedStandby,
  async run(ctx) {
    const s = (await recordedStandbyOf(ctx)).standby;
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

const standbyInSync: CnStep = {
  id: 'standby-in-sync',
  title: 'The standby is running and in sync',
  destructive: false,
  readOnly: true,
  describe: (ctx) =>
    describeStandbyCondition(
      ctx,
      (_t, s) =>
        `${onHost(s.host, nodeCommands.service(ctx.config, 'is-active', s.service))} says active and ${s.name}'s height is within ${ctx.config.monitor.lagBlocks} blocks of the PNs.`,
    ),
  when: hasRecordedStandby,
  async run(ctx) {
    const s = (await recordedStandbyOf(ctx)).standby;
    if (!(await reaching(() => opsOf(ctx).isActive(s.host, s.service))))
      throw new ReadinessCheckError(`${s.service} is not running on the standby ${s.name}.`);
    const reference = await referenceHeight(ctx.ports, ctx.config, ctx.signal);
    const health = await probe(ctx.ports, s, ctx.signal);
    if (!health.ok) throw new ReadinessCheckError(`${s.name} does not report its height (${health.reason}).`);
    const lag = lagOf(health.health.height, reference.height);
    if (lag > ctx.config.monitor.lagBlocks)
      throw new ReadinessCheckError(
        `${s.name} is ${lag} blocks behind the PNs (threshold ${ctx.config.monitor.lagBlocks}).`,
      );
    ctx.output(`${s.name} at height ${health.health.height}, PNs at ${reference.height}`);
  },
};

const backupMatches: CnStep = {
  id: 'backup-matches',
  title: 'The nodekey backup exists and matches the record',
  destructive: false,
  readOnly: true,
  describe(ctx) {
    const t = cnTargetOf(ctx);
    return `${onHost(t.backupHost.host, nodeCommands.read(t.backupPath))} and of ${blsBackupPath(t.backupPath)} when present (kept in memory): 64 hex characters each, its sha256 equal to the one recorded by /cell backup-nodekey ${t.cn.name}, and its address the one ${t.cn.name} reports when it answers.`;
  },
  async run(ctx) {
    const t = cnTargetOf(ctx);
    const ops = opsOf(ctx);
    const where = `${t.backupHost.name}:${t.backupPath}`;
    const read = await reaching(() => readKeyFile(ops, t.backupHost.host, t.backupPath));
    if (read.problem === 'absent')
      throw new ReadinessCheckError(
        `There is no nodekey backup of ${t.cn.name} at ${where}: run /cell backup-nodekey ${t.cn.name}.`,
      );
    if (read.problem)
      throw new ReadinessCheckError(
        `The nodekey backup at ${where} is malformed: ${describeNodekeyProblem(read.problem)}.`,
      );
    const recorded = await ctx.ports.state.nodekeyBackup(t.cn.name);
    if (!recorded)
      throw new ReadinessCheckError(
        `No backup of ${t.cn.name} is recorded: run /cell backup-nodekey ${t.cn.name} so that changes can be detected.`,
      );
    if (recorded.checksum !== nodekeyChecksum(read.key))
      throw new ReadinessCheckError(
        `The backup at ${where} differs from the one recorded by run ${recorded.runId} (address ${recorded.nodeAddress}): find out who changed it.`,
      );
    // A failover refuses a malformed bls-nodekey beside the backup: say so now rather than then.
    const blsPath = blsBackupPath(t.backupPath);
    const bls = await reaching(() => ops.readFile(t.backupHost.host, blsPath));
    if (bls !== undefined && !isBlsKey(bls))
      throw new ReadinessCheckError(
        `The bls-nodekey backup at ${t.backupHost.name}:${blsPath} is malformed (expected 64 hex characters): a failover would refuse it. Run /cell backup-nodekey ${t.cn.name} again.`,
      );
    const address = nodeAddressFromKey(read.key);
    const role = await ctx.ports.state.role(t.cn.name);
    const served = role ? ctx.config.nodes[role.servedBy] : undefined;
    // A replacement a snapshot failover launched is no inventory node: reached at its recorded address.
    const serving =
      served ??
      (role?.address !== undefined && role.address !== t.cn.host.address
        ? { name: role.servedBy, endpoint: replacementEndpoint(t.cn, role.address, role.hostKeys) }
        : t.cn);
    const running = await reportedAddress(ctx.ports, serving.endpoint, ctx.signal);
    if (running === undefined)
      ctx.output(
        `${serving.name} did not report its address; the backup was checked against the record only`,
      );
    else if (!sameAddress(running, address))
      throw new ReadinessCheckError(
        `The backup at ${where} holds ${address}, but ${serving.name} runs as ${running}.`,
      );
    ctx.output(`backup of ${t.cn.name} at ${where} matches the record (address ${address})`);
  },
};

const imageFresh: CnStep = {
  id: 'image-fresh',
  title: "The machine image holds the live CN's kcn binary and kcnd.conf",
  destructive: false,
  readOnly: true,
  describe(ctx) {
    const t = cnTargetOf(ctx);
    if (t.failover.mode !== 'snapshot') return 'Not applicable: standby mode uses no machine image.';
    const files = imageContentFiles(t.cn);
    return `\`sudo -n sha256sum\` of ${files.binary} and ${files.conf} on the machine serving ${t.cn.name} now must equal the checksums recorded with the image by /cell image ${t.cn.name} (content, not file times: package upgrades keep build times).`;
  },
  async when(ctx) {
    return cnTargetOf(ctx).failover.mode === 'snapshot';
  },
  async run(ctx) {
    const t = cnTargetOf(ctx);
    const image = await ctx.ports.state.image(t.cn.name);
    if (!image)
      throw new ReadinessCheckError(
        `No machine image of ${t.cn.name} is recorded: run /cell image ${t.cn.name}.`,
      );
    if (image.binarySha256 === undefined || image.confSha256 === undefined)
      throw new ReadinessCheckError(
        `The latest image of ${t.cn.name}, ${image.imageId}, records no checksums of its kcn binary and kcnd.conf, so its freshness cannot be judged: run /cell image ${t.cn.name}.`,
      );
    const host = await servingHost(ctx.ports.state, t.cn);
    let live;
    try {
      live = await readImageContent(opsOf(ctx), host, t.cn);
    } catch (error) {
      if (!(error instanceof HostError)) throw error;
      // A failed CN cannot tell; the failover it needs then uses the image as it is.
      ctx.output(
        `could not read ${t.cn.name}'s files on ${host.name} (${error.message}); image ${image.imageId} recorded by run ${image.runId}`,
      );
      return;
    }
    if ('missing' in live)
      throw new ReadinessCheckError(`${host.name} (${host.address}) has no ${live.missing}: check the CN.`);
    const change = contentChange(
      t.cn,
      { binarySha256: image.binarySha256, confSha256: image.confSha256 },
      live,
    );
    if (change !== undefined)
      throw new ReadinessCheckError(
        `A fresh image of ${t.cn.name} is due: ${change} on ${host.name} differ${change.includes(' and ') ? '' : 's'} from the latest image ${image.imageId} (run ${image.runId}). Run /cell image ${t.cn.name}.`,
      );
    ctx.output(
      `image ${image.imageId} holds ${t.cn.name}'s current kcn binary and kcnd.conf (as on ${host.name})`,
    );
  },
};

const pnLinksFollow: CnStep = {
  id: 'pn-links',
  title: 'The PNs reach the CN at an address that follows it to a replacement',
  destructive: false,
  readOnly: true,
  describe(ctx) {
    const t = cnTargetOf(ctx);
    if (t.failover.mode !== 'snapshot')
      return 'Not applicable: in standby mode the standby lists the PNs itself and the IP moves by alias.';
    return `Reads every PN's static-nodes.json (legacy location first) and finds the entries for ${t.cn.name}'s node ID: each must name its Elastic IP (EC2 DescribeAddresses) or its failover.privateIp${t.failover.privateIp ? ` ${t.failover.privateIp.address}` : ' (not set)'}, the addresses a snapshot failover moves; a primary private IP stays with the failed instance, so the replacement would get no PN peers.`;
  },
  async when(ctx) {
    return cnTargetOf(ctx).failover.mode === 'snapshot';
  },
  async run(ctx) {
    const t = cnTargetOf(ctx);
    const recorded = await ctx.ports.state.nodekeyBackup(t.cn.name);
    if (!recorded)
      throw new ReadinessCheckError(
        `No backup of ${t.cn.name} is recorded, so its node ID is unknown: run /cell backup-nodekey ${t.cn.name}.`,
      );
    const links = await pnLinks(opsOf(ctx), ctx.config, recorded.nodeId);
    const eip =
      t.failover.ip.method === 'eip'
        ? await ctx.ports.cloud.describeAddress(t.failover.ip.allocationId)
        : undefined;
    const movable = [
      eip?.publicIp,
      t.failover.privateIp ? ipOf(t.failover.privateIp.address) : undefined,
    ].filter((a): a is string => a !== undefined);
    ctx.output(`the PNs dial ${t.cn.name} at: ${linksText(links)}`);
    const stranded = strandedLinks(links, movable);
    if (stranded.length > 0)
      throw new ReadinessCheckError(
        `${stranded.map((l) => `${l.pn} dials ${t.cn.name} at ${l.endpoints.join(', ')}`).join('; ')}, which does not follow ${t.cn.name} to a replacement (only ${movable.join(' and ') || 'nothing'} would): set nodes.${t.cn.name}.failover.privateIp to a secondary private IP the PNs dial, or list the Elastic IP in their static-nodes.json.`,
      );
  },
};
