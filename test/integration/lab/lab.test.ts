import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCellShell } from '../../../src/adapters/ssh/cell-shell.js';
import { createSshShell } from '../../../src/adapters/ssh/ssh-shell.js';
import { resolveConfig, type CellopsConfig } from '../../../src/config/config.js';
import { configSchema } from '../../../src/config/schema.js';
import { sh, shTemplate } from '../../../src/ports/shell-command.js';
import type { Fence, HostRef, Shell } from '../../../src/ports/shell.js';

/** These tests' own changes to the hosts carry a fencing token, as a run's do. */
const FENCE: Fence = { scope: 'lab-test', token: 1 };
import { nodeAddressFromKey, nodeIdFromKey, nodekeyProblem } from '../../../src/runbooks/nodekey.js';
import { labConfig } from '../../lab/lab-config.js';
import { skipWithoutNamespaces, startLab, type Lab } from '../../lab/lab.js';
import { jsonRpc } from '../../support/json-rpc.js';
import { createSilentLogger } from '../../support/silent-logger.js';

let lab: Lab;
let config: CellopsConfig;
let shell: Shell;

function ref(name: string): HostRef {
  return { name, address: lab.host(name).address };
}

function freshKey(): string {
  for (;;) {
    const key = randomBytes(32).toString('hex');
    if (nodekeyProblem(key) === undefined) return key;
  }
}

async function metric(name: string, host: string): Promise<number> {
  const text = await (await fetch(lab.host(host).metricsUrl, { signal: AbortSignal.timeout(5_000) })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} in the metrics of ${host}`);
  return Number(line.split(' ')[1]);
}

async function service(host: string, action: 'start' | 'stop' | 'is-active') {
  return shell.exec(
    ref(host),
    shTemplate(config.ssh.serviceCommand, { action, service: lab.host(host).service }),
    { fence: FENCE },
  );
}

/** Installs a nodekey file over SSH the way a runbook does: content on stdin, never on the command line. */
async function installKey(host: string, path: string, content: string): Promise<void> {
  const result = await shell.exec(ref(host), sh`sudo -n install -D -m 0600 -- /dev/stdin ${path}`, {
    stdin: content,
    fence: FENCE,
  });
  expect(result.exitCode).toBe(0);
}

async function restart(host: string): Promise<void> {
  expect((await service(host, 'stop')).exitCode).toBe(0);
  expect((await service(host, 'start')).exitCode).toBe(0);
}

beforeAll(async () => {
  // One block per hour: heights move only when a test moves them.
  lab = await startLab({ hosts: ['cn1', 'cn1s', 'pn1', 'pn2'], blockMs: 3_600_000 });
  config = resolveConfig(configSchema.parse(labConfig(lab)));
  // As the bot does: in namespace labs every privileged command goes through the shipped host helper.
  shell = createCellShell({ ssh: config.ssh, logger: createSilentLogger() });
});

afterAll(async () => {
  await shell?.close();
  await lab?.stop();
});

describe('the test lab', () => {
  it('produces a configuration the cellops schema accepts, with a standby failover for cn1', () => {
    expect(config.nodes.cn1?.failover?.mode).toBe('standby');
    expect(config.nodes.cn1?.failover?.standby).toBe('cn1s');
    expect(config.nodes.pn1?.service).toBe('kpnd');
    expect(config.nodes.cn1s?.dataDir).toBe(lab.host('cn1s').dataDir);
    expect(lab.host('cn1').dataDir).not.toBe(lab.host('cn1s').dataDir);
  });

  it('runs every node through the systemctl shim and serves metrics and JSON-RPC', async () => {
    for (const name of ['cn1', 'cn1s', 'pn1', 'pn2']) {
      const active = await service(name, 'is-active');
      expect(active.stdout.trim()).toBe('active');
      expect(await metric('klaytn_blockchain_head_blocknumber', name)).toBe(lab.chain.height());
    }
    expect(await jsonRpc(lab.host('cn1').rpcUrl, 'kaia_nodeAddress')).toBe(
      lab.host('cn1').initialNodeAddress,
    );
    expect(await metric('klaytn_p2p_CNPeerCountGauge', 'cn1')).toBeGreaterThan(0);
    // A standby with its own key is not in the council, so no CN admits it as a peer.
    expect(await metric('klaytn_p2p_CNPeerCountGauge', 'cn1s')).toBe(0);
  });

  it('answers kcn attach --exec over SSH with the node info of the key it loaded', async () => {
    const cn1 = lab.host('cn1');
    const attach = (js: string) =>
      shell.exec(
        ref('cn1'),
        shTemplate(config.ssh.attachCommand, { binary: cn1.binary, js, dataDir: cn1.dataDir }),
      );
    const info = await attach('admin.nodeInfo');
    expect(info.exitCode).toBe(0);
    const parsed = JSON.parse(info.stdout) as { id: string; nodeAddress: string; kni: string };
    expect(parsed.id).toBe(nodeIdFromKey(cn1.initialNodekey));
    expect(parsed.nodeAddress.toLowerCase()).toBe(cn1.initialNodeAddress);
    expect(parsed.kni).toContain(parsed.id);
    expect(JSON.parse((await attach('kaia.nodeAddress')).stdout)).toBe(cn1.initialNodeAddress);
    expect(JSON.parse((await attach('kaia.blockNumber')).stdout)).toBe(lab.chain.height());
  });

  it("reports the address of the nodekey it loaded at start, and cn1's key makes the standby sign", async () => {
    const cn1s = lab.host('cn1s');
    const cn1Key = lab.host('cn1').initialNodekey;
    await service('cn1', 'stop');
    await installKey('cn1s', join(cn1s.dataDir, 'klay', 'nodekey'), cn1Key);
    // Not until a restart: the key is read once, at start.
    expect(await jsonRpc(cn1s.rpcUrl, 'kaia_nodeAddress')).toBe(cn1s.initialNodeAddress);
    await restart('cn1s');
    expect(await jsonRpc(cn1s.rpcUrl, 'kaia_nodeAddress')).toBe(nodeAddressFromKey(cn1Key));
    const block = (await jsonRpc(lab.host('pn1').rpcUrl, 'kaia_getBlockWithConsensusInfoByNumber', [
      'latest',
    ])) as {
      committers: string[];
    };
    expect(block.committers).toEqual([nodeAddressFromKey(cn1Key)]);
    expect(await metric('klaytn_p2p_CNPeerCountGauge', 'cn1s')).toBeGreaterThan(0);

    await installKey('cn1s', join(cn1s.dataDir, 'klay', 'nodekey'), cn1s.initialNodekey);
    await restart('cn1s');
    await service('cn1', 'start');
    expect(await jsonRpc(cn1s.rpcUrl, 'kaia_nodeAddress')).toBe(cn1s.initialNodeAddress);
  });

  it('generates a fresh key into klay/nodekey from a malformed file, as kcnd does', async () => {
    const pn2 = lab.host('pn2');
    const path = join(pn2.dataDir, 'klay', 'nodekey');
    const malformed = `0x${pn2.initialNodekey}`;
    await installKey('pn2', path, malformed);
    await restart('pn2');
    const reported = await jsonRpc(pn2.rpcUrl, 'kaia_nodeAddress');
    const onDisk = readFileSync(path, 'utf8');
    expect(nodekeyProblem(onDisk)).toBeUndefined();
    expect(reported).toBe(nodeAddressFromKey(onDisk));
    expect(reported).not.toBe(pn2.initialNodeAddress);
    const log = readFileSync(join(pn2.root, 'lab', 'kpnd.out'), 'utf8');
    expect(log).toContain('Generated nodekey');
    expect(log).not.toContain(onDisk);
    expect(log).not.toContain(pn2.initialNodekey);
  });

  it('loads the legacy $DATA_DIR/nodekey in preference to $DATA_DIR/klay/nodekey', async () => {
    const pn1 = lab.host('pn1');
    const legacy = freshKey();
    await installKey('pn1', join(pn1.dataDir, 'nodekey'), `${legacy}\n`);
    await restart('pn1');
    expect(await jsonRpc(pn1.rpcUrl, 'kaia_nodeAddress')).toBe(nodeAddressFromKey(legacy));
    expect(readFileSync(join(pn1.dataDir, 'klay', 'nodekey'), 'utf8')).toBe(pn1.initialNodekey);
    await shell.exec(ref('pn1'), sh`sudo -n rm -f -- ${join(pn1.dataDir, 'nodekey')}`, { fence: FENCE });
    await restart('pn1');
    expect(await jsonRpc(pn1.rpcUrl, 'kaia_nodeAddress')).toBe(pn1.initialNodeAddress);
  });

  it('follows the shared chain while running; a stalled node stays behind, a stopped one stops answering', async () => {
    const start = lab.chain.height();
    lab.stallNode('pn2');
    lab.chain.setHeight(start + 50);
    expect(await metric('klaytn_blockchain_head_blocknumber', 'cn1')).toBe(start + 50);
    expect(await metric('klaytn_blockchain_head_blocknumber', 'pn2')).toBe(start);
    lab.unstallNode('pn2');
    expect(await metric('klaytn_blockchain_head_blocknumber', 'pn2')).toBe(start + 50);

    lab.chain.stall();
    lab.chain.setHeight(start + 60);
    lab.chain.stall();
    expect(lab.chain.height()).toBe(start + 60);
    lab.chain.resume();

    lab.isolateNode('cn1');
    expect(await metric('klaytn_p2p_CNPeerCountGauge', 'cn1')).toBe(0);
    lab.reconnectNode('cn1');
    expect(await metric('klaytn_p2p_CNPeerCountGauge', 'cn1')).toBeGreaterThan(0);

    await lab.stopNode('pn2');
    expect((await service('pn2', 'is-active')).stdout.trim()).toBe('inactive');
    await expect(metric('klaytn_blockchain_head_blocknumber', 'pn2')).rejects.toThrow();
    await lab.startNode('pn2');
    expect(await lab.isNodeRunning('pn2')).toBe(true);
  });

  it('moves the VIP between namespaces with ip addr, reachable from the tests', async (context) => {
    const vip = skipWithoutNamespaces(lab, 'the VIP move', (note) => context.skip(note));
    expect(await lab.vipHolders()).toEqual(['cn1']);
    const viaVip = `http://${lab.vipAddress}:8551`;
    expect(await jsonRpc(viaVip, 'kaia_nodeAddress')).toBe(lab.host('cn1').initialNodeAddress);

    const ipAddr = (host: string, action: 'add' | 'del') =>
      shell.exec(ref(host), sh`sudo -n ip addr ${action} ${vip} dev ${lab.device}`, { fence: FENCE });
    expect((await ipAddr('cn1', 'del')).exitCode).toBe(0);
    expect((await ipAddr('cn1s', 'add')).exitCode).toBe(0);
    // No flush of the ARP cache: the lab makes stale entries short-lived, as a gratuitous ARP would.
    expect(await lab.vipHolders()).toEqual(['cn1s']);
    expect(await jsonRpc(viaVip, 'kaia_nodeAddress')).toBe(lab.host('cn1s').initialNodeAddress);
  });
});

describe('the test lab without namespaces', () => {
  let loopback: Lab | undefined;
  afterAll(async () => {
    await loopback?.stop();
  });

  it('falls back to sshd on loopback addresses, saying why IP moves cannot be tested', async () => {
    loopback = await startLab({ hosts: ['cn1', 'cn1s'], namespaces: false, blockMs: 3_600_000 });
    expect(loopback.namespaces).toBe(false);
    expect(loopback.skipReason).toMatch(/namespaces/);
    const resolved = resolveConfig(configSchema.parse(labConfig(loopback)));
    expect(resolved.nodes.cn1?.failover?.ip.method).toBe('manual');
    const loopShell = createSshShell({ ssh: resolved.ssh, logger: createSilentLogger() });
    try {
      const host = loopback.host('cn1s');
      const result = await loopShell.exec(
        { name: 'cn1s', address: host.address },
        shTemplate(resolved.ssh.serviceCommand, { action: 'is-active', service: 'kcnd' }),
      );
      expect(result.stdout.trim()).toBe('active');
      expect(await jsonRpc(host.rpcUrl, 'kaia_nodeAddress')).toBe(host.initialNodeAddress);
    } finally {
      await loopShell.close();
    }
  });
});
