import { describe, expect, it } from 'vitest';
import { standbyFailoverSteps } from '../../../src/runbooks/failover-standby.js';
import type { FailoverParams } from '../../../src/runbooks/failover-params.js';
import { SafetyGateError } from '../../../src/errors.js';
import { runSteps } from '../../support/run-steps.js';
import {
  BACKUP_PATH,
  CN1_ADDRESS,
  CN1_KEY,
  CN1S_ADDRESS,
  CN1S_KEY,
  DATA_DIR,
  VIP,
  createStandbyCell,
  runStandbyFailover,
  type StandbyCell,
} from '../../support/standby-cell.js';

const params: FailoverParams = { cn: 'cn1', force: false };
const KEY_PATH = `${DATA_DIR}/klay/nodekey`;

function expectNoKeyLeak(cell: StandbyCell, text: string): void {
  for (const key of [CN1_KEY, CN1S_KEY]) {
    expect(text).not.toContain(key);
    for (const c of cell.sim.commands) expect(c.command).not.toContain(key);
  }
}

describe('standby failover over simulated hosts', () => {
  it('ends with cn1s serving cn1 address, the VIP on cn1s and cn1 fenced', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();

    const result = await runStandbyFailover(cell);

    expect(result.error).toBeUndefined();
    expect(result.status).toBe('succeeded');
    const cn1s = cell.sim.host('cn1s');
    const cn1 = cell.sim.host('cn1');
    expect(cn1s.loadedAddress()).toBe(CN1_ADDRESS);
    expect(cn1s.read(KEY_PATH)).toBe(CN1_KEY);
    expect(cn1s.files.get(KEY_PATH)?.mode).toBe(0o600);
    expect(cn1s.read(`${KEY_PATH}.cellops-r1`)).toBe(CN1S_KEY);
    expect(cn1s.devices.get('eth0')?.has(VIP)).toBe(true);
    expect(cn1.devices.get('eth0')?.has(VIP)).toBe(false);
    expect(cn1.isRunning()).toBe(false);
    expect(cn1.read(KEY_PATH)).toBeUndefined();
    expect(cn1.read(`${KEY_PATH}.cellops-r1`)).toBe(CN1_KEY);
    expect(cell.sim.violations).toEqual([]);
    expect(await cell.state.role('cn1')).toMatchObject({ role: 'cn1', servedBy: 'cn1s', runId: 'r1' });
    expect(result.skipped).toEqual(['confirm-old-active-off', 'confirm-ip-moved']);
    expect(result.facts.failedAddress).toBe(CN1_ADDRESS);
    expect(typeof result.facts.timeToRecoverMs).toBe('number');
    expect(result.outputs.map((o) => o.line).join('\n')).toContain('among the committers');
    expectNoKeyLeak(cell, result.text());
  });

  it('shows approvers the exact commands and hosts', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();
    const result = await runStandbyFailover(cell);
    const text = (id: string) => result.descriptions.find((d) => d.stepId === id)?.text ?? '';
    expect(text('fence-old-active')).toContain('`sudo -n systemctl stop kcnd` on cn1 (10.0.1.11)');
    expect(text('stop-standby')).toContain('`sudo -n systemctl stop kcnd` on cn1s (10.0.1.12)');
    expect(text('replace-nodekey')).toContain(
      '`sudo -n install -D -m 0600 -- /dev/stdin /var/kcnd/data/klay/nodekey` on cn1s (10.0.1.12)',
    );
    expect(text('move-ip')).toContain('`sudo -n ip addr add 10.0.1.100/24 dev eth0` on cn1s (10.0.1.12)');
    expect(text('move-ip')).toContain('`sudo -n ip addr del 10.0.1.100/24 dev eth0` on cn1 (10.0.1.11)');
    expect(text('start-standby')).toContain(CN1_ADDRESS);
  });

  it('refuses to fail over a healthy active without --force, before anything changes', async () => {
    const cell = createStandbyCell();
    const result = await runStandbyFailover(cell);
    expect(result.status).toBe('failed');
    expect(result.failedStep).toBe('preflight');
    expect(result.error).toBeInstanceOf(SafetyGateError);
    expect(String(result.error)).toMatch(/looks healthy.*--force/);
    expect(cell.sim.commands.filter((c) => /systemctl (stop|start)|mv |install /.test(c.command))).toEqual(
      [],
    );
    expect(cell.sim.host('cn1').loadedAddress()).toBe(CN1_ADDRESS);
  });

  it('switches over a healthy active with --force without ever running both', async () => {
    const cell = createStandbyCell();
    const result = await runSteps(standbyFailoverSteps(), {
      params: { cn: 'cn1', force: true },
      config: cell.config,
      ports: cell.ports,
    });
    expect(result.status).toBe('succeeded');
    expect(cell.sim.host('cn1s').loadedAddress()).toBe(CN1_ADDRESS);
    expect(cell.sim.violations).toEqual([]);
  });

  it('needs an explicit confirmation when the old active cannot be reached', async () => {
    const cell = createStandbyCell();
    const cn1 = cell.sim.host('cn1');
    cn1.stopDaemon();
    cn1.reachable = false;
    const asked: string[] = [];

    const refused = await runStandbyFailover(cell, {
      approve: (step) => {
        asked.push(step.id);
        return step.id !== 'confirm-old-active-off';
      },
    });

    expect(refused.status).toBe('aborted');
    expect(refused.failedStep).toBe('confirm-old-active-off');
    expect(refused.facts.fenceSsh).toBe('unreachable');
    expect(refused.descriptions.find((d) => d.stepId === 'confirm-old-active-off')?.text).toMatch(
      /powered off or cut off from the network/,
    );
    // Nothing happened to the standby.
    expect(cell.sim.host('cn1s').loadedAddress()).toBe(CN1S_ADDRESS);

    const cell2 = createStandbyCell();
    cell2.sim.host('cn1').stopDaemon();
    cell2.sim.host('cn1').reachable = false;
    const confirmed = await runStandbyFailover(cell2);
    expect(confirmed.status).toBe('succeeded');
    expect(confirmed.ran).toContain('confirm-old-active-off');
    expect(cell2.sim.host('cn1s').loadedAddress()).toBe(CN1_ADDRESS);
    expect(cell2.sim.host('cn1s').devices.get('eth0')?.has(VIP)).toBe(true);
  });

  it('refuses a malformed backup before touching anything', async () => {
    const cell = createStandbyCell({ backup: `0x${CN1_KEY}` });
    cell.sim.host('cn1').stopDaemon();
    const result = await runStandbyFailover(cell);
    expect(result.failedStep).toBe('preflight');
    expect(String(result.error)).toMatch(/malformed.*0x/);
    expect(cell.sim.host('cn1s').loadedAddress()).toBe(CN1S_ADDRESS);
    expectNoKeyLeak(cell, `${result.text()}\n${String(result.error)}`);
  });

  it('refuses a missing backup', async () => {
    const cell = createStandbyCell({ backup: null });
    cell.sim.host('cn1').stopDaemon();
    const result = await runStandbyFailover(cell);
    expect(result.failedStep).toBe('preflight');
    expect(String(result.error)).toContain(`no nodekey backup of cn1 at cn1s:${BACKUP_PATH}`);
  });

  it('refuses a legacy nodekey on the standby that would shadow the installed key', async () => {
    const cell = createStandbyCell({ files: { cn1s: { [`${DATA_DIR}/nodekey`]: CN1S_KEY } } });
    cell.sim.host('cn1').stopDaemon();
    const result = await runStandbyFailover(cell);
    expect(result.failedStep).toBe('preflight');
    expect(String(result.error)).toMatch(/legacy location \/var\/kcnd\/data\/nodekey/);
  });

  it('refuses a legacy nodekey that appears after preflight and restarts the standby as itself', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();
    const result = await runStandbyFailover(cell, {
      approve: (step) => {
        if (step.id === 'replace-nodekey')
          cell.sim.host('cn1s').write(`${DATA_DIR}/nodekey`, CN1S_KEY, 0o600);
        return true;
      },
    });
    expect(result.failedStep).toBe('replace-nodekey');
    expect(result.error).toBeInstanceOf(SafetyGateError);
    expect(result.undone).toContain('stop-standby');
    expect(cell.sim.host('cn1s').loadedAddress()).toBe(CN1S_ADDRESS);
  });

  it('puts the standby key back when installing the new one fails', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();
    cell.sim
      .host('cn1s')
      .faults.push({ match: /sha256sum -- \/var\/kcnd\/data\/klay\/nodekey/, exitCode: 1 });
    const result = await runStandbyFailover(cell);
    expect(result.failedStep).toBe('replace-nodekey');
    const cn1s = cell.sim.host('cn1s');
    expect(cn1s.read(KEY_PATH)).toBe(CN1S_KEY);
    expect(cn1s.read(`${KEY_PATH}.cellops-r1`)).toBeUndefined();
    expect(cn1s.loadedAddress()).toBe(CN1S_ADDRESS);
    expect(cell.sim.violations).toEqual([]);
  });

  it('undoes a failover that fails after start: standby back on its own key, VIP back on cn1', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();
    const result = await runStandbyFailover(cell, {
      approve: (step) => {
        // The standby cannot keep up once it runs as cn1.
        if (step.id === 'start-standby') cell.sim.host('cn1s').lagBlocks = 1000;
        return true;
      },
    });
    expect(result.failedStep).toBe('verify');
    expect(String(result.error)).toMatch(/is not in sync after .*blocks behind the PNs/);
    expect(result.undone).toEqual(['start-standby', 'move-ip', 'replace-nodekey', 'stop-standby']);
    expect(result.undoErrors).toEqual([]);
    const cn1s = cell.sim.host('cn1s');
    expect(cn1s.read(KEY_PATH)).toBe(CN1S_KEY);
    expect(cn1s.loadedAddress()).toBe(CN1S_ADDRESS);
    expect(cn1s.devices.get('eth0')?.has(VIP)).toBe(false);
    expect(cell.sim.host('cn1').devices.get('eth0')?.has(VIP)).toBe(true);
    expectNoKeyLeak(cell, result.text());
  });

  it('does not stop a standby that fell behind', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();
    const result = await runStandbyFailover(cell, {
      approve: (step) => {
        if (step.id === 'fence-old-active') cell.sim.host('cn1s').lagBlocks = 50;
        return true;
      },
    });
    expect(result.failedStep).toBe('stop-standby');
    expect(String(result.error)).toMatch(/fell behind: \d+ blocks behind the PNs/);
    expect(cell.sim.host('cn1s').loadedAddress()).toBe(CN1S_ADDRESS);
  });

  it('stops before starting the standby when the old CN comes back with its key', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();
    const result = await runStandbyFailover(cell, {
      approve: (step) => {
        if (step.id === 'start-standby') {
          const cn1 = cell.sim.host('cn1');
          cn1.write(KEY_PATH, CN1_KEY, 0o600);
          cn1.startDaemon();
        }
        return true;
      },
    });
    expect(result.failedStep).toBe('start-standby');
    expect(String(result.error)).toMatch(/came back during the run/);
    expect(cell.sim.violations).toEqual([]);
    expect(cell.sim.host('cn1s').loadedAddress()).toBe(CN1S_ADDRESS);
  });

  it('copies the bls-nodekey that sits next to the backup', async () => {
    const bls = 'ab'.repeat(32);
    const cell = createStandbyCell({ files: { cn1s: { '/var/cellops/backup/cn1.bls-nodekey': bls } } });
    cell.sim.host('cn1').stopDaemon();
    const result = await runStandbyFailover(cell, { undoOnFailure: false });
    // cn1's registered BLS key is the derived one, so this bls-nodekey makes it miss its signatures.
    expect(cell.sim.host('cn1s').read(`${DATA_DIR}/klay/bls-nodekey`)).toBe(bls);
    expect(result.facts.blsSource).toBe('backup');
    expect(result.failedStep).toBe('verify');
    expect(String(result.error)).toMatch(/signed none/);
    expect(result.text()).not.toContain(bls);
  });

  it('says so and goes on when arping is not installed on the standby', async () => {
    const cell = createStandbyCell({ hosts: { cn1s: { arping: false } } });
    cell.sim.host('cn1').stopDaemon();
    const result = await runStandbyFailover(cell);
    expect(result.status).toBe('succeeded');
    expect(result.outputs.map((o) => o.line).join('\n')).toMatch(/arping is not installed on cn1s/);
  });
});

describe('verify after start', () => {
  it('stops the run when the standby reports an address other than the failed CN', async () => {
    const cell = createStandbyCell();
    const verify = standbyFailoverSteps().filter((s) => s.id === 'verify');
    const result = await runSteps(verify, {
      params,
      config: cell.config,
      ports: cell.ports,
      facts: { failedAddress: CN1_ADDRESS },
    });
    expect(result.error).toBeInstanceOf(SafetyGateError);
    expect(String(result.error)).toContain(
      `cn1s reports node address ${CN1S_ADDRESS}, not cn1's ${CN1_ADDRESS}`,
    );
  });
});
