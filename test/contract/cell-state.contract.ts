/**
 * The behaviour every CellState must show, run against the in-memory store and the Redis store (real
 * Redis): roles recorded with their history and former servers, the roles version, the older role /
 * setRole shape, and concurrent changes from two replicas losing nothing.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { currentRoles, type CellState, type RoleChange } from '../../src/ports/cell-state.js';

export interface CellStateHarness {
  readonly state: CellState;
  /** A second view of the same data, as another bot replica would have; may be `state` itself. */
  readonly other: CellState;
  close(): Promise<void>;
}

const T0 = 1_764_126_000_000;

function change(overrides: Partial<RoleChange> = {}): RoleChange {
  return {
    cn: 'cn1',
    servedBy: 'cn1s',
    at: T0,
    runId: 'run-1',
    by: 'U0ALICE',
    reason: 'failover',
    ...overrides,
  };
}

const layout = {
  nodes: {
    cn1: { role: 'cn', failover: { standby: 'cn1s' } },
    cn1s: { role: 'standby' },
  },
};

export function cellStateContract(name: string, make: () => Promise<CellStateHarness>): void {
  describe(`cell state contract (${name})`, () => {
    let h: CellStateHarness;
    beforeEach(async () => {
      h = await make();
    });
    afterEach(async () => {
      await h.close();
    });

    it('has no recorded roles at first, so the configuration layout holds', async () => {
      expect(await h.state.roles('cn1')).toBeUndefined();
      expect(await h.state.rolesVersion()).toBe(0);
      expect(await h.state.roleHistory('cn1', 10)).toEqual([]);
      expect(await currentRoles(h.state, layout, 'cn1')).toMatchObject({
        servedBy: 'cn1',
        standby: 'cn1s',
        runId: 'config',
      });
    });

    it('records roles with who, when, which run and why, and shows them to another replica', async () => {
      const recorded = await h.state.recordRoles(change());
      expect(recorded).toEqual({
        cn: 'cn1',
        servedBy: 'cn1s',
        formerServers: ['cn1'],
        since: T0,
        runId: 'run-1',
        by: 'U0ALICE',
        reason: 'failover',
        version: 1,
      });
      expect(await h.other.roles('cn1')).toEqual(recorded);
      expect(await h.other.rolesVersion()).toBe(1);
    });

    it('keeps the history newest first and the former servers most recent first', async () => {
      await h.state.recordRoles(change());
      await h.state.recordRoles(
        change({ standby: 'cn1', at: T0 + 1, runId: 'run-2', reason: 'rebuild-standby' }),
      );
      await h.other.recordRoles(
        change({ servedBy: 'cn1', standby: undefined, at: T0 + 2, runId: 'run-3', by: 'U0BOB' }),
      );
      const now = await h.state.roles('cn1');
      expect(now).toMatchObject({ servedBy: 'cn1', formerServers: ['cn1s'], runId: 'run-3', version: 3 });
      expect(now?.standby).toBeUndefined();
      const history = await h.state.roleHistory('cn1', 10);
      expect(history.map((r) => [r.runId, r.servedBy, r.standby ?? '-', r.by])).toEqual([
        ['run-3', 'cn1', '-', 'U0BOB'],
        ['run-2', 'cn1s', 'cn1', 'U0ALICE'],
        ['run-1', 'cn1s', '-', 'U0ALICE'],
      ]);
      expect(await h.state.roleHistory('cn1', 2)).toHaveLength(2);
      expect(await h.state.roleHistory('cn1', 0)).toEqual([]);
      expect(await h.state.roleHistory('cn2', 10)).toEqual([]);
    });

    it('counts one roles version for the whole cell', async () => {
      await h.state.recordRoles(change());
      await h.state.recordRoles(
        change({ cn: 'cn2', servedBy: 'i-0abc', instanceId: 'i-0abc', address: '10.0.9.9' }),
      );
      expect(await h.other.rolesVersion()).toBe(2);
      expect(await h.state.roles('cn2')).toMatchObject({
        instanceId: 'i-0abc',
        address: '10.0.9.9',
        version: 2,
      });
    });

    it('loses no change when two replicas record at once', async () => {
      await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          (i % 2 === 0 ? h.state : h.other).recordRoles(
            change({ servedBy: `m${i}`, runId: `run-${i}`, at: T0 + i }),
          ),
        ),
      );
      expect(await h.state.rolesVersion()).toBe(12);
      const history = await h.state.roleHistory('cn1', 50);
      expect(history).toHaveLength(12);
      expect(new Set(history.map((r) => r.version))).toEqual(
        new Set(Array.from({ length: 12 }, (_, i) => i + 1)),
      );
      const now = await h.state.roles('cn1');
      expect(now?.version).toBe(12);
      // Every machine that served before the current one is remembered (capped at ten).
      expect(now?.formerServers).toHaveLength(10);
      expect(now?.formerServers).not.toContain(now?.servedBy);
    });

    it('keeps the older role / setRole shape working: a failover uses up the standby', async () => {
      await h.state.recordRoles(change({ servedBy: 'cn1', standby: 'cn1s', runId: 'seed' }));
      await h.state.setRole({ role: 'cn1', servedBy: 'cn1s', since: T0 + 5, runId: 'run-9' });
      // No standby left, and the machine that served before is named (rebuild-standby's default host).
      expect(await h.state.role('cn1')).toEqual({
        role: 'cn1',
        servedBy: 'cn1s',
        previous: 'cn1',
        since: T0 + 5,
        runId: 'run-9',
      });
      expect(await h.state.roles('cn1')).toMatchObject({
        by: 'cellops',
        reason: 'failover',
        formerServers: ['cn1'],
      });
      // A replacement that is not the standby leaves the standby in place.
      await h.state.recordRoles(change({ servedBy: 'cn1', standby: 'cn1s', runId: 'back' }));
      await h.state.setRole({
        role: 'cn1',
        servedBy: 'i-0new',
        instanceId: 'i-0new',
        since: T0 + 6,
        runId: 'r',
      });
      expect(await h.state.role('cn1')).toMatchObject({ servedBy: 'i-0new', standby: 'cn1s' });
    });

    it('keeps backups and images beside the roles', async () => {
      const backup = {
        cn: 'cn1',
        host: 'cn1s',
        path: '/var/backup/cn1.nodekey',
        checksum: 'ab'.repeat(32),
        nodeAddress: '0x' + '1'.repeat(40),
        nodeId: 'c'.repeat(128),
        at: T0,
        runId: 'run-b',
      };
      await h.state.setNodekeyBackup(backup);
      await h.state.setImage({ cn: 'cn2', imageId: 'ami-0123', at: T0, runId: 'run-i' });
      expect(await h.other.nodekeyBackup('cn1')).toEqual(backup);
      expect(await h.other.image('cn2')).toEqual({ cn: 'cn2', imageId: 'ami-0123', at: T0, runId: 'run-i' });
      expect(await h.other.nodekeyBackup('cn2')).toBeUndefined();
      expect(await h.state.rolesVersion()).toBe(0);
    });
  });
}
