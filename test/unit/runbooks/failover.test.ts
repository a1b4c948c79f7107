import { describe, expect, it } from 'vitest';
import { failoverRunbook } from '../../../src/runbooks/failover.js';
import { createRunbooks } from '../../../src/runbooks/registry.js';
import { CELL_LOCK } from '../../../src/runbooks/failover-params.js';
import { InputError } from '../../../src/errors.js';
import { createStandbyCell } from '../../support/standby-cell.js';

describe('the failover runbook', () => {
  const { config } = createStandbyCell();

  it('takes the standby steps for a CN configured in mode standby', () => {
    const steps = failoverRunbook.steps({ cn: 'cn1', force: false }, config);
    expect(steps.map((s) => s.id)).toEqual([
      'preflight',
      'fence-old-active',
      'confirm-old-active-off',
      'stop-standby',
      'replace-nodekey',
      'move-ip',
      'confirm-ip-moved',
      'start-standby',
      'verify',
      'record-roles',
    ]);
    expect(failoverRunbook.lockKey({ cn: 'cn1', force: false })).toBe(CELL_LOCK);
    expect(failoverRunbook.summary({ cn: 'cn1', force: false }, config)).toBe(
      'failover cn1 (standby → cn1s)',
    );
  });

  it('gates every destructive step and gives each a verify', () => {
    for (const step of failoverRunbook.steps({ cn: 'cn1', force: false }, config)) {
      expect(step.verify, step.id).toBeDefined();
      if (step.kind === 'manual') expect(step.destructive).toBe(true);
    }
  });

  it('refuses an unknown node, a non-CN and a mode mismatch, naming the known CNs', () => {
    expect(() => failoverRunbook.steps({ cn: 'cn9', force: false }, config)).toThrow(
      /Unknown CN "cn9". Known CNs: cn1/,
    );
    expect(() => failoverRunbook.steps({ cn: 'pn1', force: false }, config)).toThrow(InputError);
    expect(() => failoverRunbook.steps({ cn: 'cn1', mode: 'snapshot', force: false }, config)).toThrow(
      /configured for failover mode standby, not snapshot/,
    );
  });

  it('is registered with backup-nodekey, image, check, set-roles, cleanup and rebuild-standby', () => {
    expect(createRunbooks().map((r) => r.id)).toEqual([
      'failover',
      'backup-nodekey',
      'image',
      'check',
      'set-roles',
      'cleanup',
      'rebuild-standby',
    ]);
  });
});
