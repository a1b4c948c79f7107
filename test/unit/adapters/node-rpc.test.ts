import { describe, expect, it } from 'vitest';
import { createNodeRpc } from '../../../src/adapters/rpc/node-rpc.js';
import { HostError } from '../../../src/errors.js';
import type { NodeEndpoint } from '../../../src/ports/node-rpc.js';
import { FakeShell } from '../../fakes/fake-shell.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';

const ATTACH = 'sudo -n {binary} attach --exec {js} {dataDir}/klay.ipc';
const ADDRESS = '0x5A0043070275d9f6054307Ee7348bD660849D90f';

const standby: NodeEndpoint = {
  name: 'cn1s',
  host: { name: 'cn1s', address: '10.0.1.12' },
  metricsUrl: 'http://10.0.1.12:61001/metrics',
  dataDir: '/var/kcnd/data',
  binary: 'kcn',
};

function rpc(shell: FakeShell) {
  // No HTTP in these cases: fetch must never be called.
  const fetch = (() => Promise.reject(new Error('fetch must not be called'))) as typeof globalThis.fetch;
  return createNodeRpc({ shell, attachCommand: ATTACH, logger: new RecordingLogger(), fetch });
}

describe('NodeRpc over IPC (kcn attach --exec through the shell)', () => {
  it('reads kaia.nodeAddress from the quoted string the console prints, lower-cased', async () => {
    const shell = new FakeShell().on('kaia.nodeAddress', { stdout: `"${ADDRESS}"\n` });

    await expect(rpc(shell).nodeAddress(standby, { timeoutMs: 5000 })).resolves.toBe(ADDRESS.toLowerCase());
    expect(shell.commands('cn1s')).toEqual([
      'sudo -n kcn attach --exec kaia.nodeAddress /var/kcnd/data/klay.ipc',
    ]);
    expect(shell.executed[0]?.timeoutMs).toBe(5000);
  });

  it('quotes the data directory it puts into the attach command', async () => {
    const shell = new FakeShell().on('attach', { stdout: `"${ADDRESS}"` });
    await rpc(shell).nodeAddress({ ...standby, dataDir: "/data/it's here" }, { timeoutMs: 1000 });
    expect(shell.commands()[0]).toBe(
      `sudo -n kcn attach --exec kaia.nodeAddress '/data/it'\\''s here'/klay.ipc`,
    );
  });

  it('ignores colour codes and log lines printed before the value', async () => {
    const shell = new FakeShell().on('kaia.nodeAddress', {
      stdout: `WARN[11/26|03:00:00] some console warning\n\u001b[32m"${ADDRESS}"\u001b[0m\n`,
    });
    await expect(rpc(shell).nodeAddress(standby, { timeoutMs: 1000 })).resolves.toBe(ADDRESS.toLowerCase());
  });

  it('falls back to admin.nodeInfo when the console has no kaia object, reading its nodeAddress field', async () => {
    const shell = new FakeShell()
      .on('kaia.nodeAddress', { stdout: 'ReferenceError: kaia is not defined at <eval>:1:1(0)\n' })
      .on('admin.nodeInfo', {
        stdout: `{\n  id: "4f…",\n  kni: "kni://4f…@10.0.1.12:32323?discport=0&ntype=cn",\n  name: "Klaytn/v1.12.0",\n  nodeAddress: "${ADDRESS}",\n  ports: { discovery: 0, listener: 32323 }\n}\n`,
      });

    await expect(rpc(shell).nodeAddress(standby, { timeoutMs: 1000 })).resolves.toBe(ADDRESS.toLowerCase());
    expect(shell.commands()).toEqual([
      'sudo -n kcn attach --exec kaia.nodeAddress /var/kcnd/data/klay.ipc',
      'sudo -n kcn attach --exec admin.nodeInfo /var/kcnd/data/klay.ipc',
    ]);
  });

  it('says the node is not running when attach cannot reach the IPC socket', async () => {
    const shell = new FakeShell().on('attach', {
      exitCode: 1,
      stderr:
        'Fatal: Unable to attach to remote kcn: dial unix /var/kcnd/data/klay.ipc: connect: no such file or directory\n',
    });

    await expect(rpc(shell).nodeAddress(standby, { timeoutMs: 1000 })).rejects.toMatchObject({
      code: 'node_ipc_failed',
      retryable: true,
      message: expect.stringMatching(
        /cn1s \(10\.0\.1\.12\).*exited with 1: Fatal: Unable to attach.*klay\.ipc/,
      ) as string,
    });
  });

  it('passes a host error from the shell through unchanged', async () => {
    const refused = new HostError('host_key_mismatch', 'cn1s 10.0.1.12 presented a different host key');
    const shell = new FakeShell().on('attach', refused);
    await expect(rpc(shell).nodeAddress(standby, { timeoutMs: 1000 })).rejects.toBe(refused);
  });

  it('reads recent blocks from one console call that prints them as a JSON string', async () => {
    const blocks = [
      {
        number: '0x65',
        proposer: ADDRESS,
        committers: [ADDRESS],
        committee: [ADDRESS, '0x' + 'AB'.repeat(20)],
      },
      { number: '0x64', proposer: '0x' + 'ab'.repeat(20), committers: [], committee: [ADDRESS] },
    ];
    const shell = new FakeShell().on('getBlockWithConsensusInfoRange', {
      stdout: `${JSON.stringify(JSON.stringify(blocks))}\n`,
    });

    const got = await rpc(shell).recentBlocks(standby, 2, { timeoutMs: 1000 });

    expect(got).toEqual([
      { number: 100, proposer: '0x' + 'ab'.repeat(20), committers: [], committee: [ADDRESS.toLowerCase()] },
      {
        number: 101,
        proposer: ADDRESS.toLowerCase(),
        committers: [ADDRESS.toLowerCase()],
        committee: [ADDRESS.toLowerCase(), '0x' + 'ab'.repeat(20)],
      },
    ]);
    expect(shell.commands()[0]).toContain('h-2+1');
  });

  it('asks the console for the blocks up to a given block, with their times', async () => {
    const blocks = [{ number: '0x64', committers: [], committee: [ADDRESS], timestamp: '0x6b49d200' }];
    const shell = new FakeShell().on('getBlockWithConsensusInfoRange', {
      stdout: `${JSON.stringify(JSON.stringify(blocks))}\n`,
    });
    const got = await rpc(shell).recentBlocks(standby, 1, { timeoutMs: 1000, upTo: 100 });
    expect(got).toEqual([
      { number: 100, committers: [], committee: [ADDRESS.toLowerCase()], timestamp: 0x6b49d200 },
    ]);
    expect(shell.commands()[0]).toContain('Math.min(kaia.blockNumber,100)');
    expect(shell.commands()[0]).toContain('timestamp:b.timestamp');
  });

  it('rejects with the caller reason when the run is aborted', async () => {
    const shell = new FakeShell().on('attach', { stdout: `"${ADDRESS}"` });
    const controller = new AbortController();
    const reason = new Error('lock lost');
    controller.abort(reason);
    await expect(
      rpc(shell).nodeAddress(standby, { timeoutMs: 1000, signal: controller.signal }),
    ).rejects.toBe(reason);
  });
});
