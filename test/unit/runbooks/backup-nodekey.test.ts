import { describe, expect, it } from 'vitest';
import { backupNodekeySteps, backupNodekeyRunbook } from '../../../src/runbooks/backup-nodekey.js';
import { nodekeyChecksum } from '../../../src/runbooks/nodekey.js';
import { InputError, SafetyGateError } from '../../../src/errors.js';
import { runSteps } from '../../support/run-steps.js';
import {
  BACKUP_PATH,
  CN1_ADDRESS,
  CN1_KEY,
  CN1S_KEY,
  DATA_DIR,
  createStandbyCell,
} from '../../support/standby-cell.js';

const params = { cn: 'cn1' };

describe('backup-nodekey', () => {
  it('copies the running key to the backup host with mode 0600 and records checksum and address only', async () => {
    const cell = createStandbyCell({ backup: null });
    const result = await runSteps(backupNodekeySteps(), { params, config: cell.config, ports: cell.ports });
    expect(result.error).toBeUndefined();
    const file = cell.sim.host('cn1s').files.get(BACKUP_PATH);
    expect(file?.content).toBe(CN1_KEY);
    expect(file?.mode).toBe(0o600);
    const record = await cell.state.nodekeyBackup('cn1');
    expect(record).toMatchObject({ cn: 'cn1', host: 'cn1s', path: BACKUP_PATH, nodeAddress: CN1_ADDRESS });
    expect(record?.checksum).toBe(nodekeyChecksum(CN1_KEY));
    expect(JSON.stringify(record)).not.toContain(CN1_KEY);
    expect(JSON.stringify(result.facts)).not.toContain(CN1_KEY);
    expect(result.text()).not.toContain(CN1_KEY);
    for (const c of cell.sim.commands) expect(c.command).not.toContain(CN1_KEY);
    // The node's bls-nodekey travels with it.
    expect(cell.sim.host('cn1s').read('/var/cellops/backup/cn1.bls-nodekey')).toBe(
      cell.sim.host('cn1').read(`${DATA_DIR}/klay/bls-nodekey`),
    );
  });

  it('backs up the legacy $DATA_DIR/nodekey, which kcnd loads first', async () => {
    const cell = createStandbyCell({ backup: null, files: { cn1: { [`${DATA_DIR}/nodekey`]: CN1_KEY } } });
    // Restart so the running node loaded the legacy file; the klay/ one is a different, stale key.
    cell.sim.host('cn1').write(`${DATA_DIR}/klay/nodekey`, CN1S_KEY, 0o600);
    const result = await runSteps(backupNodekeySteps(), { params, config: cell.config, ports: cell.ports });
    expect(result.error).toBeUndefined();
    expect(result.facts.sourcePath).toBe(`${DATA_DIR}/nodekey`);
    expect(cell.sim.host('cn1s').read(BACKUP_PATH)).toBe(CN1_KEY);
  });

  it("backs up the key kcnd.conf's ADDITIONAL names with --nodekey, outside DATA_DIR", async () => {
    const cell = createStandbyCell({ backup: null });
    const cn1 = cell.sim.host('cn1');
    cn1.write(
      '/etc/kcnd/conf/kcnd.conf',
      `DATA_DIR=${DATA_DIR}\nADDITIONAL="--nodekey /etc/kcnd/keys/cn1.key"\n`,
      0o644,
    );
    cn1.write('/etc/kcnd/keys/cn1.key', CN1_KEY, 0o600);
    // What DATA_DIR holds is a stale key kcn ignores; the node is restarted so it loaded the flagged file.
    cn1.write(`${DATA_DIR}/klay/nodekey`, CN1S_KEY, 0o600);
    cn1.stopDaemon();
    cn1.startDaemon();
    const result = await runSteps(backupNodekeySteps(), { params, config: cell.config, ports: cell.ports });
    expect(result.error).toBeUndefined();
    expect(result.facts.sourcePath).toBe('/etc/kcnd/keys/cn1.key');
    expect(cell.sim.host('cn1s').read(BACKUP_PATH)).toBe(CN1_KEY);
  });

  it('refuses a key file that is not the key the node runs', async () => {
    const cell = createStandbyCell({ backup: null });
    cell.sim.host('cn1').write(`${DATA_DIR}/klay/nodekey`, CN1S_KEY, 0o600);
    const result = await runSteps(backupNodekeySteps(), { params, config: cell.config, ports: cell.ports });
    expect(result.failedStep).toBe('locate-key');
    expect(result.error).toBeInstanceOf(SafetyGateError);
    expect(cell.sim.host('cn1s').read(BACKUP_PATH)).toBeUndefined();
  });

  it('keeps a different previous backup aside instead of overwriting it', async () => {
    const cell = createStandbyCell({ backup: CN1S_KEY });
    const steps = backupNodekeySteps();
    const result = await runSteps(steps, { params, config: cell.config, ports: cell.ports, runId: 'b1' });
    expect(result.status).toBe('succeeded');
    expect(cell.sim.host('cn1s').read(`${BACKUP_PATH}.cellops-b1`)).toBe(CN1S_KEY);
  });

  it('names the known CNs for an unknown one', () => {
    const cell = createStandbyCell();
    expect(() => backupNodekeyRunbook.steps({ cn: 'cn9' }, cell.config)).toThrow(InputError);
    expect(() => backupNodekeyRunbook.steps({ cn: 'cn9' }, cell.config)).toThrow(/Known CNs: cn1/);
  });
});

describe('backup-nodekey, bls-nodekey', () => {
  it('does not take the copy as done after a crash that left a stale bls-nodekey beside the new nodekey', async () => {
    const cell = createStandbyCell({ backup: null });
    const result = await runSteps(backupNodekeySteps(), { params, config: cell.config, ports: cell.ports });
    expect(result.status).toBe('succeeded');
    const copy = backupNodekeySteps().find((s) => s.id === 'copy-key');
    const facts = { ...result.facts };
    const ctx = {
      params,
      config: cell.config,
      ports: cell.ports,
      runId: 'r2',
      signal: new AbortController().signal,
      log: result.log,
      fact: <T>(key: string) => facts[key] as T | undefined,
      setFact: () => undefined,
      output: () => undefined,
      resumed: true,
    };
    expect(await copy?.verify?.(ctx)).toBe(true);
    cell.sim.host('cn1s').write('/var/cellops/backup/cn1.bls-nodekey', 'ef'.repeat(32), 0o600);
    expect(await copy?.verify?.(ctx)).toBe(false);
  });

  it('refuses to back up a bls-nodekey that is not one', async () => {
    const cell = createStandbyCell({ backup: null });
    cell.sim.host('cn1').write(`${DATA_DIR}/klay/bls-nodekey`, 'garbage', 0o600);
    const result = await runSteps(backupNodekeySteps(), { params, config: cell.config, ports: cell.ports });
    expect(result.failedStep).toBe('copy-key');
    expect(result.error).toBeInstanceOf(SafetyGateError);
    expect(cell.sim.host('cn1s').read('/var/cellops/backup/cn1.bls-nodekey')).toBeUndefined();
  });
});
