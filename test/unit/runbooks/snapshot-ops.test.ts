/**
 * The snapshot runbook's privileged scripts refuse a DATA_DIR that is not a plain absolute path before
 * they run any tool. Run by a real `sh` whose PATH holds only recording stubs that fail, so nothing on
 * this machine can be touched even if a guard were missing.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ExecResult, Shell } from '../../../src/ports/shell.js';
import { keepOnlyChaindata, mountDataVolume } from '../../../src/runbooks/snapshot-ops.js';
import { replacementKeyPaths } from '../../../src/runbooks/snapshot-keys.js';
import { createNodeOps } from '../../../src/runbooks/node-ops.js';
import { testConfig } from '../../support/bot-fixtures.js';
import { FakeShell } from '../../fakes/fake-shell.js';

const HOST = { name: 'cn2r', address: '10.0.0.9' };
const TOOLS = ['mountpoint', 'find', 'mv', 'rm', 'mkdir', 'grep', 'tr', 'sed', 'readlink', 'mount', 'lsblk'];

function stubbedShell(): { shell: Shell; ran: () => string[] } {
  const bin = mkdtempSync(join(tmpdir(), 'cellops-stubs-'));
  const log = join(bin, 'ran.log');
  writeFileSync(log, '');
  symlinkSync('/bin/sh', join(bin, 'sh'));
  for (const tool of TOOLS) {
    writeFileSync(join(bin, tool), `#!/bin/sh\necho ${tool} >> ${log}\nexit 1\n`);
    chmodSync(join(bin, tool), 0o755);
  }
  const shell: Shell = {
    exec: (_host, command): Promise<ExecResult> => {
      if (!command.startsWith('sudo -n ')) throw new Error(`not privileged: ${command}`);
      const result = spawnSync('/bin/sh', ['-c', command.slice('sudo -n '.length)], {
        env: { PATH: bin },
        encoding: 'utf8',
      });
      return Promise.resolve({
        exitCode: result.status ?? -1,
        stdout: result.stdout,
        stderr: result.stderr,
        truncated: false,
        durationMs: 1,
      });
    },
    close: () => Promise.resolve(),
  };
  return { shell, ran: () => readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

const HOSTILE = [
  '/',
  '/.',
  '//',
  '/var/kcnd/data/..',
  '/var/kcnd/data/',
  'var/kcnd/data',
  '/var/a b',
  '/x/-rf',
];

describe('the snapshot scripts that delete under DATA_DIR', () => {
  it('refuse a DATA_DIR that is not a plain absolute path before running any tool', async () => {
    for (const dataDir of HOSTILE) {
      const { shell, ran } = stubbedShell();
      const ops = { shell, commandTimeoutMs: 5_000 };
      await expect(keepOnlyChaindata(ops, HOST, dataDir), dataDir).rejects.toThrow(
        /exit status 2.*refusing path/,
      );
      await expect(mountDataVolume(ops, HOST, 'vol-0abc', '/dev/sdf', dataDir), dataDir).rejects.toThrow(
        /exit status 2.*refusing path/,
      );
      expect(ran(), dataDir).toEqual([]);
    }
  });

  it('let a plain DATA_DIR through to the mount-point check', async () => {
    const { shell, ran } = stubbedShell();
    await expect(
      keepOnlyChaindata({ shell, commandTimeoutMs: 5_000 }, HOST, '/var/kcnd/data'),
    ).rejects.toThrow(/not a mount point/);
    expect(ran()).toEqual(['mountpoint']);
  });
});

describe("the replacement's key file", () => {
  const config = testConfig();
  const conf = (additional: string) =>
    new FakeShell()
      .on('sudo -n test -e /etc/kcnd/conf/kcnd.conf', { exitCode: 0 })
      .on('sudo -n cat -- /etc/kcnd/conf/kcnd.conf', {
        stdout: `DATA_DIR=/var/kcnd/data\nADDITIONAL="${additional}"\n`,
      });

  it('is the --nodekey file when it lies inside DATA_DIR', async () => {
    const ops = createNodeOps({ shell: conf('--nodekey $DATA_DIR/keys/nk'), config });
    expect((await replacementKeyPaths(ops, HOST, '/var/kcnd/data')).nodekey).toBe('/var/kcnd/data/keys/nk');
  });

  it('is refused outside DATA_DIR, where the undo could not remove the key it installed', async () => {
    const shell = conf('--nodekey /etc/kcnd/nodekey');
    const ops = createNodeOps({ shell, config });
    await expect(replacementKeyPaths(ops, HOST, '/var/kcnd/data')).rejects.toThrow(
      /names the nodekey file \/etc\/kcnd\/nodekey, outside DATA_DIR \/var\/kcnd\/data/,
    );
    // Only read: nothing was written.
    expect(
      shell.commands().filter((c) => !c.startsWith('sudo -n test -e ') && !c.startsWith('sudo -n cat -- ')),
    ).toEqual([]);
  });
});
