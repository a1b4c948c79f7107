import { describe, expect, it } from 'vitest';
import { createSimCell } from '../../../src/sandbox/sim-hosts.js';
import { CommandFailedError, createNodeOps } from '../../../src/runbooks/node-ops.js';
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
});
