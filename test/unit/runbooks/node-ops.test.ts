import { describe, expect, it } from 'vitest';
import { createSimCell } from '../../../src/sandbox/sim-hosts.js';
import { CommandFailedError, createNodeOps, nodeCommands } from '../../../src/runbooks/node-ops.js';
import { SafetyGateError } from '../../../src/errors.js';
import { resolveConfig } from '../../../src/config/config.js';
import { configSchema } from '../../../src/config/schema.js';
import { createJumpClock } from '../../support/run-steps.js';

const KEY = '4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318';
const host = { name: 'n1', address: '10.9.0.1' };
const config = resolveConfig(
  configSchema.parse({
    cell: 'c',
    slack: { channel: 'C0TEST', approvers: { users: ['U0AAA'] } },
    ssh: { user: 'ops', privateKey: '/k', knownHosts: '/h' },
    nodes: { n1: { role: 'cn', host: '10.9.0.1' } },
  }),
);
const SUDO_REFUSED = 'sudo: a password is required';

function cell() {
  const sim = createSimCell({
    clock: createJumpClock(),
    hosts: [{ name: 'n1', address: '10.9.0.1', kind: 'cn', nodekey: KEY }],
  });
  return { sim, ops: createNodeOps({ shell: sim.shell, config }) };
}

describe('node operations', () => {
  it('treats a sudo refusal of test -e as a failure, not as a missing file', async () => {
    const { sim, ops } = cell();
    sim.host('n1').faults.push({ match: /test -e/, exitCode: 1, stderr: SUDO_REFUSED });
    await expect(ops.exists(host, '/var/kcnd/data/nodekey')).rejects.toBeInstanceOf(CommandFailedError);
    // A plain "no" from test -e is still "absent".
    expect(await ops.exists(host, '/var/kcnd/data/nodekey')).toBe(false);
    expect(await ops.exists(host, '/var/kcnd/data/klay/nodekey')).toBe(true);
  });

  it('does not read a missing backup into "no backup" when sudo refuses', async () => {
    const { sim, ops } = cell();
    sim.host('n1').faults.push({ match: /test -e/, exitCode: 1, stderr: SUDO_REFUSED });
    await expect(ops.readFile(host, '/var/kcnd/data/klay/nodekey')).rejects.toThrow(/password is required/);
  });

  it('treats a sudo refusal of systemctl is-active as a failure, not as a stopped unit', async () => {
    const { sim, ops } = cell();
    sim.host('n1').faults.push({ match: /is-active/, exitCode: 1, stderr: SUDO_REFUSED });
    await expect(ops.isActive(host, 'kcnd')).rejects.toBeInstanceOf(CommandFailedError);
    expect(await ops.isActive(host, 'kcnd')).toBe(true);
  });

  it('tells whether the kcn process runs, and refuses to guess when pgrep is refused', async () => {
    const { sim, ops } = cell();
    expect(await ops.processAlive(host, 'kcn')).toBe(true);
    sim.host('n1').stopDaemon();
    expect(await ops.processAlive(host, 'kcn')).toBe(false);
    sim.host('n1').faults.push({ match: /pgrep/, exitCode: 1, stderr: SUDO_REFUSED });
    await expect(ops.processAlive(host, 'kcn')).rejects.toBeInstanceOf(CommandFailedError);
    expect(sim.commands.map((c) => c.command)).toContain('sudo -n pgrep -x -- kcn');
  });

  it('deletes only strictly inside DATA_DIR, and runs nothing when it refuses', async () => {
    const { sim, ops } = cell();
    const dataDir = '/var/kcnd/data';
    for (const path of [
      '/',
      '/.',
      '//',
      dataDir,
      `${dataDir}/`,
      `${dataDir}/.`,
      `${dataDir}/..`,
      `${dataDir}/../../etc/passwd`,
      `${dataDir}//klay/nodekey`,
      '/var/kcnd/database/klay/nodekey',
      '/etc/kcnd/conf/kcnd.conf',
      `${dataDir}/klay/node key`,
      `${dataDir}/klay/-rf`,
      'klay/nodekey',
    ]) {
      expect(() => nodeCommands.remove(path, dataDir), path).toThrow(SafetyGateError);
      await expect(ops.remove(host, path, dataDir), path).rejects.toBeInstanceOf(SafetyGateError);
    }
    for (const badDataDir of ['/', '/.', '//', '/var/kcnd/data/', '/var/$(x)'])
      await expect(ops.remove(host, '/var/kcnd/data/klay/nodekey', badDataDir), badDataDir).rejects.toThrow(
        /refusing to delete/,
      );
    expect(sim.commands).toEqual([]);
    await ops.remove(host, `${dataDir}/klay/nodekey`, dataDir);
    expect(sim.commands.map((c) => c.command)).toEqual(['sudo -n rm -f -- /var/kcnd/data/klay/nodekey']);
    expect(sim.host('n1').files.has(`${dataDir}/klay/nodekey`)).toBe(false);
  });

  it('ends the options before every path operand, or makes the operand unmistakable where it cannot', () => {
    expect(nodeCommands.read('-n')).toBe('sudo -n cat -- -n');
    expect(nodeCommands.write('/b/-k')).toBe('sudo -n install -D -m 0600 -- /dev/stdin /b/-k');
    expect(nodeCommands.sha256('-x')).toBe('sudo -n sha256sum -- -x');
    expect(nodeCommands.mtime('-x')).toBe('sudo -n stat -c %Y -- -x');
    expect(nodeCommands.move('-a', '-b')).toBe('sudo -n mv -- -a -b');
    expect(nodeCommands.fsfreeze('freeze', '/d')).toBe('sudo -n fsfreeze -f -- /d');
    expect(nodeCommands.processAlive('kcn')).toBe('sudo -n pgrep -x -- kcn');
    // test(1) has no --: a relative path that starts with - is given as ./-…
    expect(nodeCommands.exists('-e')).toBe('sudo -n test -e ./-e');
    expect(nodeCommands.exists('/a b')).toBe("sudo -n test -e '/a b'");
  });
});
