/**
 * The set-roles runbook on a simulated cell: a claim is recorded only when it is true (the served-by
 * machine runs the CN's key, the standby one of its own), and only after its approval.
 */
import { describe, expect, it } from 'vitest';
import { setRolesRunbook, setRolesSteps, type SetRolesParams } from '../../../src/runbooks/set-roles.js';
import { SafetyGateError } from '../../../src/errors.js';
import { runSteps } from '../../support/run-steps.js';
import { CN1_KEY, DATA_DIR, createStandbyCell, type StandbyCell } from '../../support/standby-cell.js';

const BY = 'U0AAA';

/** A failover done by hand: cn1 stopped, cn1s started with cn1's key. */
function failOverByHand(cell: StandbyCell): void {
  cell.sim.host('cn1').stopDaemon();
  const cn1s = cell.sim.host('cn1s');
  cn1s.stopDaemon();
  cn1s.write(`${DATA_DIR}/klay/nodekey`, CN1_KEY, 0o600);
  cn1s.startDaemon();
}

function setRoles(cell: StandbyCell, params: Omit<SetRolesParams, 'by'>, approve = true) {
  return runSteps(setRolesSteps(), {
    params: { ...params, by: BY },
    config: cell.config,
    ports: cell.ports,
    runId: 'r-set1',
    approve: () => approve,
  });
}

describe('set-roles', () => {
  it('records a failover done by hand once cn1s is seen to run cn1 and cn1 its own key', async () => {
    const cell = createStandbyCell();
    failOverByHand(cell);
    // cn1 comes back with a fresh key of its own, as a rebuilt standby would.
    const cn1 = cell.sim.host('cn1');
    cn1.write(`${DATA_DIR}/klay/nodekey`, 'ab'.repeat(32), 0o600);
    cn1.startDaemon();
    const result = await setRoles(cell, { cn: 'cn1', servedBy: 'cn1s', standby: 'cn1' });
    expect(result.error).toBeUndefined();
    expect(result.approved).toEqual(['record-roles']);
    expect(await cell.state.roles('cn1')).toMatchObject({
      servedBy: 'cn1s',
      standby: 'cn1',
      formerServers: ['cn1'],
      runId: 'r-set1',
      by: BY,
      reason: 'set by hand',
    });
    expect(cell.sim.violations).toEqual([]);
  });

  it('refuses a served-by machine that does not run the CN key, and records nothing', async () => {
    const cell = createStandbyCell();
    const result = await setRoles(cell, { cn: 'cn1', servedBy: 'cn1s' });
    expect(result.failedStep).toBe('check-claim');
    expect(result.error).toBeInstanceOf(SafetyGateError);
    expect(String(result.error)).toMatch(/cn1s runs 0x[0-9a-f]+, not cn1's/);
    expect(await cell.state.rolesVersion()).toBe(0);
  });

  it('refuses a standby that runs the CN key too', async () => {
    const cell = createStandbyCell();
    const result = await setRoles(cell, { cn: 'cn1', servedBy: 'cn1', standby: 'cn1s' }).then(async (r) => {
      expect(r.status).toBe('succeeded');
      // Now claim cn1s stands by while it is made to run cn1's key behind our back.
      const cn1s = cell.sim.host('cn1s');
      cn1s.stopDaemon();
      cn1s.write(`${DATA_DIR}/klay/nodekey`, CN1_KEY, 0o600);
      cell.sim.host('cn1').stopDaemon();
      cn1s.startDaemon();
      cell.sim.host('cn1').startDaemon();
      return setRoles(cell, { cn: 'cn1', servedBy: 'cn1', standby: 'cn1s' });
    });
    expect(result.failedStep).toBe('check-claim');
    expect(String(result.error)).toMatch(/cn1s runs cn1's key .* double-sign/);
    expect(await cell.state.rolesVersion()).toBe(1);
  });

  it('refuses a standby that does not answer, and records nothing without the approval', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1s').stopDaemon();
    const down = await setRoles(cell, { cn: 'cn1', servedBy: 'cn1', standby: 'cn1s' });
    expect(String(down.error)).toMatch(/cn1s does not report its node address/);
    cell.sim.host('cn1s').startDaemon();
    const declined = await setRoles(cell, { cn: 'cn1', servedBy: 'cn1', standby: 'cn1s' }, false);
    expect(declined.status).toBe('aborted');
    expect(await cell.state.rolesVersion()).toBe(0);
  });

  it('refuses bad machines before any step runs', () => {
    expect(() =>
      setRolesRunbook.steps({ cn: 'cn1', servedBy: 'pn1', by: BY }, createStandbyCell().config),
    ).toThrow(/pn1 is a pn machine/);
    expect(() =>
      setRolesRunbook.steps(
        { cn: 'cn1', servedBy: 'cn1s', standby: 'cn1s', by: BY },
        createStandbyCell().config,
      ),
    ).toThrow(/the standby must be another machine/);
    expect(() =>
      setRolesRunbook.steps({ cn: 'cn1', servedBy: 'cn9', by: BY }, createStandbyCell().config),
    ).toThrow(/"cn9" is not a node/);
  });
});
