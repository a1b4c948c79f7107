/**
 * `backup-nodekey <cn>` (docs/runbooks.md §backup-nodekey): copies the key the active CN really runs to the
 * configured backup location, through memory and stdin with mode 0600, verifies it by checksum, and records
 * the checksum, node ID and address (never the key) so that a failover can tell the backup has not changed.
 *
 * "The key the CN really runs": the legacy `$DATA_DIR/nodekey` when present (kcnd loads it first), else
 * `$DATA_DIR/klay/nodekey`, cross-checked against the address the running node reports.
 */
import { cnParamsSchema, CELL_LOCK, type CnParams, type CnStep } from './failover-params.js';
import type { RunbookDefinition } from './types.js';
import { cnTargetOf, reportedAddress, resolveCn } from './cell-nodes.js';
import {
  BACKUP_FACTS,
  blsKeyPath,
  copyToBackup,
  readValidKey,
  sourceNode,
  sourceOf,
  type BackupCopy,
} from './backup-copy.js';
import { effectiveKeyPath } from './key-files.js';
import {
  asidePath,
  blsBackupPath,
  mapHostError,
  nodeCommands,
  nodeKeyPaths,
  onHost,
  opsOf,
} from './node-ops.js';
import { nodeAddressFromKey, nodeIdFromKey, nodekeyChecksum, sameAddress } from './nodekey.js';
import { SafetyGateError } from '../errors.js';

export function backupNodekeySteps(): CnStep[] {
  return [locateKey, copyKey, recordBackup];
}

export const backupNodekeyRunbook: RunbookDefinition<CnParams> = {
  id: 'backup-nodekey',
  version: 2,
  title: 'Back up a CN nodekey',
  params: cnParamsSchema,
  lockKey: () => CELL_LOCK,
  node: (params) => params.cn,
  summary(params, config) {
    const t = resolveCn(config, params.cn);
    return `backup-nodekey ${params.cn} → ${t.backupHost.name}:${t.backupPath}`;
  },
  steps(params, config) {
    resolveCn(config, params.cn);
    return backupNodekeySteps();
  },
};

const locateKey: CnStep = {
  id: 'locate-key',
  title: 'Find the key the active CN runs',
  destructive: false,
  readOnly: true,
  describe(ctx) {
    const t = cnTargetOf(ctx);
    const p = nodeKeyPaths(t.cn.dataDir);
    return [
      `On the node serving ${t.cn.name} (${t.cn.name} itself unless a failover recorded another): ${onHost(t.cn.host, nodeCommands.exists(p.legacyNodekey))} — the legacy location wins when present — else ${p.nodekey}.`,
      `Reads it (${onHost(t.cn.host, nodeCommands.read(p.nodekey))}), checks it is 64 hex characters, and that its address is the one the running node reports. Records address, node ID and checksum; never the key.`,
    ].join('\n');
  },
  async verify(ctx) {
    return ctx.fact<string>(BACKUP_FACTS.checksum) !== undefined;
  },
  async run(ctx) {
    const t = cnTargetOf(ctx);
    const ops = opsOf(ctx);
    const node = await sourceNode(ctx, t);
    const path = await mapHostError(
      () => effectiveKeyPath(ops, node),
      (error) =>
        new SafetyGateError(
          `${node.name}, which serves ${t.cn.name}, cannot be reached over SSH: ${error.message}`,
        ),
    );
    const key = await readValidKey(ops, node, path);
    const address = nodeAddressFromKey(key);
    const running = await reportedAddress(ctx.ports, node.endpoint, ctx.signal);
    if (running === undefined)
      ctx.output(`${node.name} did not report its node address; the backup is checked against the file only`);
    else if (!sameAddress(running, address))
      throw new SafetyGateError(
        `${node.name} runs as ${running}, but ${path} holds ${address}: the file is not the key kcnd loaded (was it replaced after start?). Not backing up.`,
      );
    const blsPath = await blsKeyPath(ops, node);
    ctx.setFact(BACKUP_FACTS.source, node.name);
    ctx.setFact(BACKUP_FACTS.sourcePath, path);
    ctx.setFact(BACKUP_FACTS.blsPath, blsPath);
    ctx.setFact(BACKUP_FACTS.address, address);
    ctx.setFact(BACKUP_FACTS.nodeId, nodeIdFromKey(key));
    ctx.setFact(BACKUP_FACTS.checksum, nodekeyChecksum(key));
    ctx.output(
      `${node.name}:${path} holds node address ${address}${running ? ' (matches the running node)' : ''}`,
    );
    ctx.output(
      blsPath
        ? `bls-nodekey at ${blsPath} is backed up too`
        : 'no bls-nodekey file: kcnd derives it from the nodekey',
    );
  },
};

const copyKey: CnStep = {
  id: 'copy-key',
  title: 'Copy the nodekey to the backup location',
  destructive: true,
  describe(ctx) {
    const t = cnTargetOf(ctx);
    const from = ctx.fact<string>(BACKUP_FACTS.sourcePath) ?? nodeKeyPaths(t.cn.dataDir).nodekey;
    const source = ctx.fact<string>(BACKUP_FACTS.source) ?? t.cn.name;
    const h = t.backupHost.host;
    return [
      `Reads ${source}:${from} into memory and writes it with mode 0600: ${onHost(h, nodeCommands.write(t.backupPath))} (key on stdin, never on a command line or in a log).`,
      `An existing different backup is kept: ${onHost(h, nodeCommands.move(t.backupPath, asidePath(t.backupPath, '<run id>')))}.`,
      `Then ${onHost(h, nodeCommands.sha256(t.backupPath))} must match. The bls-nodekey, if the node has one, goes to ${blsBackupPath(t.backupPath)} the same way.`,
      `Undo: the previous backup is moved back.`,
    ].join('\n');
  },
  async run(ctx) {
    const t = cnTargetOf(ctx);
    const ops = opsOf(ctx);
    const node = await sourceOf(ctx, t);
    const path = ctx.fact<string>(BACKUP_FACTS.sourcePath) ?? nodeKeyPaths(node.dataDir).nodekey;
    const key = await readValidKey(ops, node, path);
    const checksum = nodekeyChecksum(key);
    if (checksum !== ctx.fact<string>(BACKUP_FACTS.checksum))
      throw new SafetyGateError(`${node.name}:${path} changed since it was located; start the backup again.`);
    const host = t.backupHost.host;
    const pairs: BackupCopy[] = [{ from: path, to: t.backupPath, what: 'nodekey' }];
    const blsPath = ctx.fact<string | null>(BACKUP_FACTS.blsPath);
    if (blsPath) pairs.push({ from: blsPath, to: blsBackupPath(t.backupPath), what: 'bls-nodekey' });
    else if (await ops.exists(host, blsBackupPath(t.backupPath))) {
      // A bls-nodekey backup of another key would be installed by a failover with this nodekey: keep it aside.
      await ops.move(host, blsBackupPath(t.backupPath), asidePath(blsBackupPath(t.backupPath), ctx.runId));
      ctx.output(`moved the stale ${blsBackupPath(t.backupPath)} aside (the node has no bls-nodekey file)`);
    }
    for (const pair of pairs)
      await copyToBackup(
        ctx,
        ops,
        t,
        node,
        pair,
        pair.what === 'nodekey' ? key : await ops.readFile(node.host, pair.from),
      );
  },
  async verify(ctx) {
    const t = cnTargetOf(ctx);
    const ops = opsOf(ctx);
    const sum = await ops.sha256(t.backupHost.host, t.backupPath);
    if (sum === undefined || sum !== ctx.fact<string>(BACKUP_FACTS.checksum)) return false;
    // The bls-nodekey backup is part of the copy: after a crash between the two writes, a new nodekey
    // beside a stale (or missing) bls-nodekey would be installed together by a failover.
    const blsBackup = await ops.sha256(t.backupHost.host, blsBackupPath(t.backupPath));
    const blsPath = ctx.fact<string | null>(BACKUP_FACTS.blsPath);
    if (!blsPath) return blsBackup === undefined;
    const blsSource = await ops.sha256((await sourceOf(ctx, t)).host, blsPath);
    return blsSource !== undefined && blsSource === blsBackup;
  },
  async undo(ctx) {
    const t = cnTargetOf(ctx);
    const ops = opsOf(ctx);
    for (const to of [t.backupPath, blsBackupPath(t.backupPath)]) {
      const aside = asidePath(to, ctx.runId);
      if (await ops.exists(t.backupHost.host, aside)) {
        await ops.move(t.backupHost.host, aside, to);
        ctx.output(`restored the previous ${to}`);
      }
    }
  },
};

const recordBackup: CnStep = {
  id: 'record-backup',
  title: 'Record the backup',
  destructive: false,
  describe(ctx) {
    const t = cnTargetOf(ctx);
    return `Records for ${t.cn.name}: backup ${t.backupHost.name}:${t.backupPath}, its sha256, node address and node ID (never the key), so that check and failover can tell the backup is unchanged.`;
  },
  async run(ctx) {
    const t = cnTargetOf(ctx);
    const checksum = ctx.fact<string>(BACKUP_FACTS.checksum);
    const nodeAddress = ctx.fact<string>(BACKUP_FACTS.address);
    const nodeId = ctx.fact<string>(BACKUP_FACTS.nodeId);
    if (!checksum || !nodeAddress || !nodeId)
      throw new SafetyGateError('The key was not located in this run; nothing to record.');
    await ctx.ports.state.setNodekeyBackup({
      cn: t.cn.name,
      host: t.backupHost.name,
      path: t.backupPath,
      checksum,
      nodeAddress,
      nodeId,
      at: ctx.ports.clock.now(),
      runId: ctx.runId,
    });
    ctx.output(`recorded the backup of ${t.cn.name}: address ${nodeAddress}`);
  },
  async verify(ctx) {
    const recorded = await ctx.ports.state.nodekeyBackup(cnTargetOf(ctx).cn.name);
    return recorded !== undefined && recorded.checksum === ctx.fact<string>(BACKUP_FACTS.checksum);
  },
};
