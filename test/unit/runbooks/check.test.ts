import { describe, expect, it } from 'vitest';
import { checkRunbook, checkSteps } from '../../../src/runbooks/check.js';
import { failoverRunbook } from '../../../src/runbooks/failover.js';
import { standbyFailoverSteps } from '../../../src/runbooks/failover-standby.js';
import { rebuildStandbyRunbook, rebuildStandbySteps } from '../../../src/runbooks/rebuild-standby.js';
import { runReadinessCheck } from '../../../src/runbooks/readiness.js';
import type { RebuildParams } from '../../../src/runbooks/rebuild-target.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { backupNodekeySteps } from '../../../src/runbooks/backup-nodekey.js';
import { ReadinessCheckError } from '../../../src/errors.js';
import { runSteps } from '../../support/run-steps.js';
import { CN1_KEY, DATA_DIR, createStandbyCell, type StandbyCell } from '../../support/standby-cell.js';

const params = { cn: 'cn1' };

async function withRecordedBackup(cell: StandbyCell): Promise<void> {
  const result = await runSteps(backupNodekeySteps(), { params, config: cell.config, ports: cell.ports });
  expect(result.status).toBe('succeeded');
}

function check(cell: StandbyCell) {
  return runSteps(checkSteps(), { params, config: cell.config, ports: cell.ports, undoOnFailure: false });
}

describe('check', () => {
  it('passes on a ready cell with every step read-only', async () => {
    const cell = createStandbyCell();
    await withRecordedBackup(cell);
    const result = await check(cell);
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('succeeded');
    expect(result.skipped).toEqual(['image-fresh', 'replacement-host-key', 'pn-links']);
    for (const step of checkSteps()) {
      expect(step.readOnly).toBe(true);
      expect(step.destructive).toBe(false);
    }
    expect(result.text()).not.toContain(CN1_KEY);
  });

  it('fails when the standby runs the active CN key', async () => {
    const cell = createStandbyCell();
    await withRecordedBackup(cell);
    const cn1s = cell.sim.host('cn1s');
    cn1s.stopDaemon();
    cn1s.write(`${DATA_DIR}/klay/nodekey`, CN1_KEY, 0o600);
    const result = await check(cell);
    expect(result.failedStep).toBe('standby-own-key');
    expect(result.error).toBeInstanceOf(ReadinessCheckError);
    expect(String(result.error)).toMatch(/double-sign/);
  });

  it('fails when static-nodes.json does not list every PN, reading the legacy location first', async () => {
    const cell = createStandbyCell({
      files: {
        cn1s: {
          [`${DATA_DIR}/static-nodes.json`]: JSON.stringify(['kni://aa@10.0.3.11:32323']),
          // Complete, but shadowed by the file directly in DATA_DIR.
          [`${DATA_DIR}/klay/static-nodes.json`]: JSON.stringify([
            'kni://aa@10.0.3.11:32323',
            'kni://bb@10.0.3.12:32323',
          ]),
        },
      },
    });
    await withRecordedBackup(cell);
    const result = await check(cell);
    expect(result.failedStep).toBe('standby-static-nodes');
    expect(String(result.error)).toContain('does not list pn2 (10.0.3.12)');
  });

  it('fails when the standby lags', async () => {
    const cell = createStandbyCell();
    await withRecordedBackup(cell);
    cell.sim.host('cn1s').lagBlocks = 40;
    const result = await check(cell);
    expect(result.failedStep).toBe('standby-in-sync');
    expect(String(result.error)).toMatch(/40 blocks behind/);
  });

  it('fails when no backup is recorded, and when the backup changed since', async () => {
    const cell = createStandbyCell();
    const unrecorded = await check(cell);
    expect(unrecorded.failedStep).toBe('backup-matches');
    expect(String(unrecorded.error)).toMatch(/No backup of cn1 is recorded/);

    await withRecordedBackup(cell);
    cell.sim.host('cn1s').write('/var/cellops/backup/cn1.nodekey', `${CN1_KEY}\n`, 0o600);
    const changed = await check(cell);
    expect(changed.failedStep).toBe('backup-matches');
    expect(String(changed.error)).toMatch(/differs from the one recorded/);
  });
});

describe('check, BLS key files', () => {
  it('fails when the standby has a legacy bls-nodekey that would shadow the installed one', async () => {
    const cell = createStandbyCell({ files: { cn1s: { [`${DATA_DIR}/bls-nodekey`]: 'cd'.repeat(32) } } });
    await withRecordedBackup(cell);
    const result = await check(cell);
    expect(result.failedStep).toBe('standby-own-key');
    expect(result.error).toBeInstanceOf(ReadinessCheckError);
    expect(String(result.error)).toContain(`legacy bls-nodekey at ${DATA_DIR}/bls-nodekey`);
  });

  it('fails when the bls-nodekey beside the backup is malformed, as a failover would refuse it', async () => {
    const cell = createStandbyCell();
    await withRecordedBackup(cell);
    cell.sim.host('cn1s').write('/var/cellops/backup/cn1.bls-nodekey', 'not a key', 0o600);
    const result = await runSteps(
      checkSteps().filter((s) => s.id === 'backup-matches'),
      { params, config: cell.config, ports: cell.ports },
    );
    expect(result.error).toBeInstanceOf(ReadinessCheckError);
    expect(String(result.error)).toMatch(/bls-nodekey backup .* is malformed/);
  });
});

/** The recorded roles after a failover and after a rebuild, as the real runbooks leave them. */
describe('check, following the recorded roles', () => {
  async function failedOver(): Promise<StandbyCell> {
    const cell = createStandbyCell();
    await withRecordedBackup(cell);
    cell.sim.host('cn1').stopDaemon();
    const params = await failoverRunbook.prepare!({ cn: 'cn1', force: false }, cell);
    const result = await runSteps(standbyFailoverSteps(), {
      params,
      config: cell.config,
      ports: cell.ports,
      runId: 'f1',
    });
    expect(result.status).toBe('succeeded');
    return cell;
  }

  async function rebuilt(): Promise<StandbyCell> {
    const cell = await failedOver();
    const params = await rebuildStandbyRunbook.prepare!({ cn: 'cn1' }, cell);
    const result = await runSteps<RebuildParams>(rebuildStandbySteps({ timings: { minFreeBytes: 1024 } }), {
      params,
      config: cell.config,
      ports: cell.ports,
      runId: 'r1',
    });
    expect(result.error).toBeUndefined();
    return cell;
  }

  /** The scheduled check (every step runs), on a clock whose timers the test holds still. */
  function scheduled(cell: StandbyCell) {
    return runReadinessCheck({
      runbook: checkRunbook,
      cn: 'cn1',
      config: cell.config,
      ports: { ...cell.ports, clock: new ManualClock(cell.clock.now()) },
      logger: new RecordingLogger(),
    });
  }

  /** The hosts the standby conditions sent commands to. */
  function standbyCommandHosts(cell: StandbyCell, from: number): string[] {
    return [
      ...new Set(
        cell.sim.commands
          .slice(from)
          .filter((c) => /nodekey|static-nodes|is-active/.test(c.command) && !c.command.includes('backup'))
          .map((c) => c.host),
      ),
    ];
  }

  it('after a failover says there is no standby and how to get one, and checks no other machine', async () => {
    const cell = await failedOver();
    const before = cell.sim.commands.length;
    const result = await scheduled(cell);
    expect(result.failed).toEqual(['standby-own-key']);
    expect(result.failures[0]).toContain('cn1 has no standby — run /cell rebuild-standby cn1');
    expect(result.failures[0]).toContain('served by cn1s since run f1');
    // cn1s serves cn1 now: judging it as a standby would be a false alarm.
    expect(result.passed).not.toContain('standby-static-nodes');
    expect(result.passed).not.toContain('standby-in-sync');
    expect(result.passed).toContain('backup-matches');
    expect(standbyCommandHosts(cell, before)).toEqual([]);

    const operator = await check(cell);
    expect(operator.failedStep).toBe('standby-own-key');
    expect(operator.error).toBeInstanceOf(ReadinessCheckError);
  });

  it('after a rebuild on the old machine checks that machine as the standby, and passes', async () => {
    const cell = await rebuilt();
    const before = cell.sim.commands.length;
    const result = await scheduled(cell);
    expect(result.failures).toEqual([]);
    expect(result.passed).toEqual(
      expect.arrayContaining([
        'standby-own-key',
        'standby-static-nodes',
        'standby-in-sync',
        'backup-matches',
      ]),
    );
    expect(standbyCommandHosts(cell, before)).toEqual(['cn1']);

    // A lagging cn1 (now the standby) is what fails, named; cn1s serving the CN is not judged as one.
    cell.sim.host('cn1').lagBlocks = 40;
    const lagging = await scheduled(cell);
    expect(lagging.failed).toEqual(['standby-in-sync']);
    expect(lagging.failures[0]).toMatch(/cn1 is 40 blocks behind/);
  });
});
