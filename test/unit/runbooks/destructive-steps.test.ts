/**
 * Which steps of each runbook wait for an approval (docs/runbooks.md §How to read this page): the destructive
 * ones and the manual ones. The engine's tests use runbooks of their own, and the runbooks' tests call the
 * steps directly without the engine, so without this file a step made non-destructive by mistake (a standby
 * failover moving the VIP with nobody's approval) would pass every test. The lists are read from the
 * registry's runbooks, as the engine reads them.
 */
import { describe, expect, it } from 'vitest';
import type { CellopsConfig } from '../../../src/config/config.js';
import { createRunbooks } from '../../../src/runbooks/registry.js';
import { snapshotConfig } from '../../support/snapshot-fixture.js';
import { createStandbyCell } from '../../support/standby-cell.js';

/** The step ids of a registered runbook, as [all, destructive, manual]. */
function stepsOf(runbookId: string, params: unknown, config: CellopsConfig) {
  const runbook = createRunbooks().find((r) => r.id === runbookId);
  if (runbook === undefined) throw new Error(`no runbook ${runbookId} in the registry`);
  const steps = runbook.steps(runbook.params.parse(params), config);
  return {
    all: steps.map((s) => s.id),
    destructive: steps.filter((s) => s.destructive).map((s) => s.id),
    manual: steps.filter((s) => s.kind === 'manual').map((s) => s.id),
  };
}

describe('the steps that wait for an approval', () => {
  it('standby failover: every step that touches cn1, the standby, the nodekey or the VIP', () => {
    const steps = stepsOf('failover', { cn: 'cn1' }, createStandbyCell().config);

    expect(steps.destructive).toEqual([
      'fence-old-active',
      'confirm-old-active-off',
      'stop-standby',
      'replace-nodekey',
      'move-ip',
      'confirm-ip-moved',
      'start-standby',
    ]);
    expect(steps.manual).toEqual(['confirm-old-active-off', 'confirm-ip-moved']);
    expect(steps.all.filter((id) => !steps.destructive.includes(id))).toEqual([
      'preflight',
      'verify',
      'record-roles',
    ]);
  });

  it('standby failover with an Elastic IP: an approver confirms an unexpected holder before the move', () => {
    const config = createStandbyCell({
      ip: { method: 'eip', allocationId: 'eipalloc-0123456789abcdef0' },
    }).config;
    const steps = stepsOf('failover', { cn: 'cn1' }, config);

    expect(steps.destructive).toEqual([
      'fence-old-active',
      'confirm-old-active-off',
      'stop-standby',
      'replace-nodekey',
      'confirm-eip-holder',
      'move-ip',
      'confirm-ip-moved',
      'start-standby',
    ]);
    expect(steps.manual).toEqual(['confirm-old-active-off', 'confirm-eip-holder', 'confirm-ip-moved']);
  });

  it('snapshot failover: stopping the PN, preparing its data, fencing, installing the nodekey, the IP and starting the identity', () => {
    const steps = stepsOf('failover', { cn: 'cn2' }, snapshotConfig());

    expect(steps.destructive).toEqual([
      'stop-pn',
      'prepare-data',
      'fence-failed-cn',
      'install-nodekey',
      'confirm-eip-holder',
      'move-ip',
      'start-kcnd',
    ]);
    // Moving an Elastic IP that another instance holds needs a person to confirm it in so many words.
    expect(steps.manual).toEqual(['confirm-eip-holder']);
    expect(steps.all.filter((id) => !steps.destructive.includes(id))).toEqual([
      'preflight',
      'snapshot',
      'launch',
      'replacement-host-key',
      'attach-volume',
      'verify',
      'record',
    ]);
  });

  it('backup-nodekey: copying the key to the standby', () => {
    const steps = stepsOf('backup-nodekey', { cn: 'cn1' }, createStandbyCell().config);

    expect(steps.destructive).toEqual(['copy-key']);
    expect(steps.manual).toEqual([]);
    expect(steps.all).toEqual(['locate-key', 'copy-key', 'record-backup']);
  });

  it('image: none, it changes nothing on the CN', () => {
    const steps = stepsOf('image', { cn: 'cn2' }, snapshotConfig());

    expect(steps.destructive).toEqual([]);
    expect(steps.manual).toEqual([]);
    expect(steps.all).toEqual(['preflight', 'create-image', 'wait-available', 'record']);
  });

  it('check: none, it only reads', () => {
    const steps = stepsOf('check', { cn: 'cn1' }, createStandbyCell().config);

    expect(steps.destructive).toEqual([]);
    expect(steps.manual).toEqual([]);
  });
});
