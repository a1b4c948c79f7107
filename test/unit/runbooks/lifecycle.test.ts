/**
 * The whole life of a standby-mode CN on simulated hosts: fail over, rebuild the standby on the old
 * machine, fail over back, rebuild again, switch over with both healthy — each run settled from the
 * recorded roles by its runbook's `prepare`, as the engine does.
 */
import { describe, expect, it } from 'vitest';
import { failoverRunbook } from '../../../src/runbooks/failover.js';
import { standbyFailoverSteps } from '../../../src/runbooks/failover-standby.js';
import { switchoverSteps } from '../../../src/runbooks/switchover.js';
import { countMissedBlocks } from '../../../src/runbooks/switchover-ops.js';
import { rebuildStandbyRunbook, rebuildStandbySteps } from '../../../src/runbooks/rebuild-standby.js';
import type { FailoverParams } from '../../../src/runbooks/failover-params.js';
import type { RebuildParams } from '../../../src/runbooks/rebuild-target.js';
import { InputError, SafetyGateError } from '../../../src/errors.js';
import { runSteps } from '../../support/run-steps.js';
import {
  CN1_ADDRESS,
  CN1_KEY,
  CN1S_ADDRESS,
  CN1S_KEY,
  DATA_DIR,
  VIP,
  createStandbyCell,
  type StandbyCell,
} from '../../support/standby-cell.js';

const KEY = `${DATA_DIR}/klay/nodekey`;

async function failover(cell: StandbyCell, runId: string, extra: Partial<FailoverParams> = {}) {
  const params = await failoverRunbook.prepare!({ cn: 'cn1', force: false, ...extra }, cell);
  const steps = params.switchover ? switchoverSteps() : standbyFailoverSteps();
  return runSteps(steps, { params, config: cell.config, ports: cell.ports, runId });
}

async function rebuild(cell: StandbyCell, runId: string, host?: string) {
  const params = await rebuildStandbyRunbook.prepare!({ cn: 'cn1', ...(host ? { host } : {}) }, cell);
  return runSteps<RebuildParams>(rebuildStandbySteps({ timings: { minFreeBytes: 1024 } }), {
    params,
    config: cell.config,
    ports: cell.ports,
    runId,
  });
}

/** Running hosts by the address they run, and the other checks every run must leave true. */
function expectSafe(cell: StandbyCell, servedBy: string): void {
  expect(cell.sim.violations).toEqual([]);
  expect(cell.sim.host(servedBy).loadedAddress()).toBe(CN1_ADDRESS);
  expect(cell.sim.host(servedBy).devices.get('eth0')?.has(VIP)).toBe(true);
  const running = ['cn1', 'cn1s'].map((h) => cell.sim.host(h).loadedAddress()).filter(Boolean);
  expect(new Set(running).size).toBe(running.length);
}

function expectNoKeyIn(cell: StandbyCell, text: string, keys: readonly string[]): void {
  for (const key of keys) {
    expect(text).not.toContain(key);
    for (const c of cell.sim.commands) expect(c.command).not.toContain(key);
  }
}

describe('a standby-mode CN through failovers, rebuilds and a switchover', () => {
  it('fails over, rebuilds the old machine with a fresh key made there, and fails back to it', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();
    const first = await failover(cell, 'f1');
    expect(first.status).toBe('succeeded');
    expectSafe(cell, 'cn1s');
    expect(await cell.state.role('cn1')).toMatchObject({ servedBy: 'cn1s', previous: 'cn1' });
    expect((await cell.state.role('cn1'))?.standby).toBeUndefined();

    // No standby yet: the next failover is refused before anything runs, saying how to get one.
    await expect(failover(cell, 'x')).rejects.toThrow(
      /no standby ready.*rebuild-standby cn1 \(by default on cn1/,
    );

    const before = cell.sim.commands.length;
    const rebuilt = await rebuild(cell, 'r1');
    expect(rebuilt.error).toBeUndefined();
    const cn1 = cell.sim.host('cn1');
    const fresh = cn1.loadedAddress();
    expect(fresh).toBeDefined();
    expect([CN1_ADDRESS, CN1S_ADDRESS]).not.toContain(fresh);
    // The CN's key moved aside by the fence is accounted for and left where it is.
    expect(cn1.read(`${KEY}.cellops-f1`)).toBe(CN1_KEY);
    expect(rebuilt.outputs.map((o) => o.line).join('\n')).toContain(`${KEY}.cellops-f1: a copy of cn1's key`);
    // The fresh key was made on the host: never on a command line, never in stdin, never in an output.
    const freshKey = cn1.read(KEY) ?? '';
    expect(freshKey).toMatch(/^[0-9a-f]{64}\n$/);
    expect(cn1.files.get(KEY)?.mode).toBe(0o600);
    expectNoKeyIn(cell, rebuilt.text(), [freshKey.trim(), CN1_KEY]);
    expect(
      cell.sim.commands.slice(before).filter((c) => c.command.includes(KEY) && c.stdinBytes > 0),
    ).toEqual([]);
    expect(await cell.state.role('cn1')).toMatchObject({ servedBy: 'cn1s', standby: 'cn1', runId: 'r1' });
    expectSafe(cell, 'cn1s');

    cell.sim.host('cn1s').stopDaemon();
    const back = await failover(cell, 'f2');
    expect(back.error).toBeUndefined();
    expectSafe(cell, 'cn1');
    expect(cell.sim.host('cn1').read(`${KEY}.cellops-f2`)).toBe(freshKey);
    expect(await cell.state.role('cn1')).toMatchObject({ servedBy: 'cn1', previous: 'cn1s', runId: 'f2' });
  });

  it('rebuilds a former standby with its own key kept aside, then switches over with both healthy', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();
    expect((await failover(cell, 'f1')).status).toBe('succeeded');
    expect((await rebuild(cell, 'r1')).status).toBe('succeeded');
    cell.sim.host('cn1s').stopDaemon();
    expect((await failover(cell, 'f2')).status).toBe('succeeded');

    // cn1s holds its own key (kept aside by f1) and cn1's (moved aside by f2's fence): it gets its own back.
    const again = await rebuild(cell, 'r2');
    expect(again.error).toBeUndefined();
    const cn1s = cell.sim.host('cn1s');
    expect(cn1s.loadedAddress()).toBe(CN1S_ADDRESS);
    expect(cn1s.read(KEY)).toBe(CN1S_KEY);
    expect(cn1s.read(`${KEY}.cellops-f2`)).toBe(CN1_KEY);
    expect(await cell.state.role('cn1')).toMatchObject({ servedBy: 'cn1', standby: 'cn1s' });

    const switched = await failover(cell, 's1', { switchover: true });
    expect(switched.error).toBeUndefined();
    expect(switched.ran).toEqual(['preflight', 'stage-key', 'switch', 'verify', 'record-roles']);
    expectSafe(cell, 'cn1s');
    const cn1 = cell.sim.host('cn1');
    expect(cn1.isRunning()).toBe(false);
    expect(cn1.devices.get('eth0')?.has(VIP)).toBe(false);
    expect(cn1.read(`${KEY}.cellops-s1`)).toBe(CN1_KEY);
    expect(cn1s.read(`${KEY}.cellops-staged-s1`)).toBeUndefined();
    expect(typeof switched.facts.missedBlocks).toBe('number');
    expect(switched.outputs.map((o) => o.line).join('\n')).toMatch(/cn1 missed (at least )?\d+ blocks?/);
    expect(await cell.state.role('cn1')).toMatchObject({ servedBy: 'cn1s', previous: 'cn1', runId: 's1' });
    expectNoKeyIn(cell, switched.text(), [CN1_KEY, CN1S_KEY]);
  });

  it('puts the CN back on the active when the switch fails after the stop', async () => {
    const cell = createStandbyCell();
    // The standby's start fails: the undo must bring cn1 back on cn1 and cn1s back on its own key.
    cell.sim.host('cn1s').faults.push({ match: /systemctl start kcnd/, exitCode: 1, stderr: 'Job failed' });
    const result = await failover(cell, 's1', { switchover: true });
    expect(result.status).toBe('failed');
    expect(result.failedStep).toBe('switch');
    expect(result.undoErrors).toEqual([]);
    expectSafe(cell, 'cn1');
    expect(cell.sim.host('cn1').read(KEY)).toBe(CN1_KEY);
    expect(cell.sim.host('cn1s').loadedAddress()).toBe(CN1S_ADDRESS);
    expect(cell.sim.host('cn1s').devices.get('eth0')?.has(VIP)).toBe(false);
    expect(cell.sim.host('cn1s').read(`${KEY}.cellops-staged-s1`)).toBeUndefined();
    expect(await cell.state.role('cn1')).toBeUndefined();
  });

  it('refuses a switchover of a CN that is not healthy, changing nothing', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();
    const result = await failover(cell, 's1', { switchover: true });
    expect(result.status).toBe('failed');
    expect(result.failedStep).toBe('preflight');
    expect(String(result.error)).toContain('use /failover cn1 (without --switchover)');
    expect(cell.sim.host('cn1s').loadedAddress()).toBe(CN1S_ADDRESS);
  });
});

describe('rebuild-standby refuses bad input before anything runs', () => {
  it('refuses the machine that serves the CN', async () => {
    const cell = createStandbyCell();
    await expect(rebuild(cell, 'r1', 'cn1')).rejects.toThrow(InputError);
    await expect(rebuild(cell, 'r1', 'cn1')).rejects.toThrow(/cn1 serves cn1 now/);
    expect(cell.sim.commands).toEqual([]);
  });

  it('refuses a PN or an unknown node as the host', async () => {
    const cell = createStandbyCell();
    await expect(rebuild(cell, 'r1', 'pn1')).rejects.toThrow(/pn1 is a pn, not a machine that runs kcnd/);
    await expect(rebuild(cell, 'r1', 'cn9')).rejects.toThrow(/Unknown node "cn9"/);
    expect(cell.sim.commands).toEqual([]);
  });

  it("refuses a machine where kcnd runs, and one holding the CN's key where kcnd loads it", async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();
    expect((await failover(cell, 'f1')).status).toBe('succeeded');
    cell.sim.host('cn1').startDaemon();
    const running = await rebuild(cell, 'r1');
    expect(running.failedStep).toBe('preflight');
    expect(running.error).toBeInstanceOf(SafetyGateError);
    expect(String(running.error)).toContain('kcnd is running on cn1');

    cell.sim.host('cn1').stopDaemon();
    cell.sim.host('cn1').write(KEY, CN1_KEY, 0o600);
    const holding = await rebuild(cell, 'r2');
    expect(holding.failedStep).toBe('preflight');
    expect(String(holding.error)).toContain("cn1's key is at");
    expect(cell.sim.host('cn1').read(KEY)).toBe(CN1_KEY);
    expect(cell.sim.host('cn1').isRunning()).toBe(false);
  });
});

describe('countMissedBlocks', () => {
  const block = (number: number, committers: string[]) => ({ number, committers, committee: ['0xa', '0xb'] });
  const blocks = [
    block(1, ['0xa', '0xb']),
    block(2, ['0xb']),
    block(3, ['0xb']),
    block(4, ['0xa', '0xb']),
    block(5, ['0xa', '0xb']),
    block(6, ['0xa']),
    block(7, ['0xb']),
  ];
  it('counts the first gap after the stop, past the blocks still signed before it', () => {
    expect(countMissedBlocks(blocks, '0xa', 0)).toEqual({ count: 2, first: 2, last: 3, complete: true });
    expect(countMissedBlocks(blocks, '0xa', 1)).toEqual({ count: 2, first: 2, last: 3, complete: true });
  });
  it('counts nothing when the signatures went on without a gap, whatever gap came before the stop', () => {
    expect(countMissedBlocks(blocks.slice(0, 6), '0xa', 3)).toEqual({ count: 0, complete: true });
  });
  it('says the count is a floor when no signature after the gap is in the blocks read', () => {
    expect(countMissedBlocks(blocks, '0xa', 6)).toEqual({ count: 1, first: 7, last: 7, complete: false });
    expect(countMissedBlocks(blocks, '0xa', 7)).toEqual({ count: 0, complete: false });
  });
  it('does not count blocks whose committee does not hold the address', () => {
    const other = [block(1, ['0xa']), { number: 2, committers: [], committee: ['0xb'] }, block(3, ['0xa'])];
    expect(countMissedBlocks(other, '0xa', 0)).toEqual({ count: 0, complete: true });
  });
});
