import { describe, expect, it } from 'vitest';
import { createSimCell } from '../../../src/sandbox/sim-hosts.js';
import { sh } from '../../../src/ports/shell-command.js';
import { createNodeOps, nodeCommands } from '../../../src/runbooks/node-ops.js';
import { nodeAddressFromKey } from '../../../src/runbooks/nodekey.js';
import { HostError } from '../../../src/errors.js';
import { resolveConfig } from '../../../src/config/config.js';
import { configSchema } from '../../../src/config/schema.js';
import { createJumpClock } from '../../support/run-steps.js';

const KEY = '4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318';
const OTHER = 'b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291';
const host = { name: 'n1', address: '10.9.0.1' };
const endpoint = {
  name: 'n1',
  host,
  metricsUrl: 'http://10.9.0.1:61001/metrics',
  rpcUrl: 'http://10.9.0.1:8551',
  dataDir: '/var/kcnd/data',
  binary: 'kcn' as const,
};
const config = resolveConfig(
  configSchema.parse({
    cell: 'c',
    slack: { channel: 'C0TEST', approvers: { users: ['U0AAA'] } },
    ssh: { user: 'ops', privateKey: '/k', knownHosts: '/h' },
    nodes: { n1: { role: 'pn', host: '10.9.0.1' } },
  }),
);

function cell(seed: Partial<Parameters<typeof createSimCell>[0]['hosts'][number]> = {}) {
  const clock = createJumpClock();
  const sim = createSimCell({
    clock,
    hosts: [{ name: 'n1', address: '10.9.0.1', kind: 'cn', nodekey: KEY, ...seed }],
  });
  return { sim, clock, ops: createNodeOps({ shell: sim.shell, config }) };
}

describe('simulated hosts', () => {
  it('answers a command form it does not know with exit status 127', async () => {
    const { sim } = cell();
    const result = await sim.shell.exec(host, sh`sudo -n chmod 600 /etc/passwd`);
    expect(result.exitCode).toBe(127);
    expect(result.stderr).toMatch(/not understood/);
    expect((await sim.shell.exec(host, sh`sudo -n cat /a; rm -rf /`)).exitCode).toBe(127);
  });

  it('requires sudo for privileged commands', async () => {
    const { sim } = cell();
    expect((await sim.shell.exec(host, sh`cat /var/kcnd/data/klay/nodekey`)).exitCode).toBe(1);
  });

  it('interprets every node-ops form, quoted paths included', async () => {
    const { sim, ops } = cell();
    const path = "/var/odd dir/it's.key";
    await ops.writeFile(host, path, 'secret');
    expect(await ops.exists(host, path)).toBe(true);
    expect(await ops.readFile(host, path)).toBe('secret');
    expect(sim.host('n1').files.get(path)?.mode).toBe(0o600);
    expect(await ops.sha256(host, path)).toMatch(/^[0-9a-f]{64}$/);
    expect(await ops.mtime(host, path)).toBeGreaterThan(0);
    await ops.move(host, path, `${path}.old`);
    expect(await ops.exists(host, path)).toBe(false);
    // Deleting is confined to plain paths strictly inside DATA_DIR: an odd path is refused, nothing run.
    await expect(ops.remove(host, `${path}.old`, '/var/odd dir')).rejects.toThrow(/refusing to delete/);
    expect(await ops.readFile(host, `${path}.old`)).toBe('secret');
    await ops.move(host, `${path}.old`, '/var/kcnd/data/klay/old.key');
    await ops.remove(host, '/var/kcnd/data/klay/old.key', '/var/kcnd/data');
    expect(await ops.readFile(host, '/var/kcnd/data/klay/old.key')).toBeUndefined();
    await ops.ipAdd(host, '10.9.0.100/24', 'eth0');
    expect(await ops.addresses(host, 'eth0')).toEqual(['10.9.0.1/24', '10.9.0.100/24']);
    expect((await ops.gratuitousArp(host, 'eth0', '10.9.0.100')).sent).toBe(true);
    await ops.ipDel(host, '10.9.0.100/24', 'eth0');
    expect(await ops.addresses(host, 'eth0')).toEqual(['10.9.0.1/24']);
    await ops.service(host, 'kcnd', 'stop');
    expect(await ops.isActive(host, 'kcnd')).toBe(false);
    await ops.service(host, 'kcnd', 'start');
    expect(await ops.isActive(host, 'kcnd')).toBe(true);
    // Only the probes answer "no": test -e for a missing file, is-active for a stopped unit.
    expect(
      sim.commands.filter((c) => c.exitCode !== 0).map((c) => c.command.split(' ').slice(0, 4).join(' ')),
    ).toEqual(['sudo -n test -e', 'sudo -n test -e', 'sudo -n systemctl is-active']);
    expect(nodeCommands.write(path)).toBe(
      `sudo -n install -D -m 0600 -- /dev/stdin '/var/odd dir/it'\\''s.key'`,
    );
  });

  it('loads the legacy nodekey first, as kcnd does', async () => {
    const { sim } = cell({ files: { '/var/kcnd/data/nodekey': OTHER } });
    expect(sim.host('n1').loadedAddress()).toBe(nodeAddressFromKey(OTHER));
  });

  it('generates and saves a fresh key from a malformed file', async () => {
    const { sim } = cell({ nodekey: `0x${KEY}` });
    const n1 = sim.host('n1');
    expect(n1.loadedAddress()).not.toBe(nodeAddressFromKey(KEY));
    expect(n1.read('/var/kcnd/data/klay/nodekey')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('follows the chain while running and freezes when stopped', async () => {
    const { sim, clock } = cell();
    const before = (await sim.rpc.health(endpoint, { timeoutMs: 1000 })).height;
    clock.advance(5_000);
    expect((await sim.rpc.health(endpoint, { timeoutMs: 1000 })).height).toBe(before + 5);
    sim.host('n1').stopDaemon();
    await expect(sim.rpc.health(endpoint, { timeoutMs: 1000 })).rejects.toThrow(/does not answer/);
    expect(sim.host('n1').height()).toBe(before + 5);
  });

  it('rejects commands to an unreachable host with a HostError naming it', async () => {
    const { sim } = cell();
    sim.host('n1').reachable = false;
    await expect(sim.shell.exec(host, nodeCommands.exists('/x'))).rejects.toThrow(HostError);
    await expect(sim.shell.exec(host, nodeCommands.exists('/x'))).rejects.toThrow(/n1 \(10\.9\.0\.1\)/);
  });

  it('records two running daemons with one key as a violation', () => {
    const clock = createJumpClock();
    const sim = createSimCell({
      clock,
      hosts: [
        { name: 'a', address: '10.9.0.1', kind: 'cn', nodekey: KEY },
        { name: 'b', address: '10.9.0.2', kind: 'cn', nodekey: KEY, running: false },
      ],
    });
    expect(sim.violations).toEqual([]);
    sim.host('b').startDaemon();
    expect(sim.violations).toHaveLength(1);
  });
});
